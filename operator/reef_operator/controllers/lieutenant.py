"""kopf handlers for Lieutenant: a daemon per lieutenant runs its loop; the watch wakes it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import kopf

from reef_operator import metrics
from reef_operator.agent.session import SessionError
from reef_operator.constants import GROUP, VERSION
from reef_operator.controllers import runtime
from reef_operator.controllers.kopf_internals import without_finalizer
from reef_operator.controllers.vmnode import sleep_until
from reef_operator.lieutenants.delivery import DeliveryError
from reef_operator.lieutenants.runner import (
    InputError,
    LieutenantRunner,
    OwnershipError,
    StepOut,
)
from reef_operator.providers.vers.errors import VersError
from reef_operator.retry import backoff


@kopf.on.event(GROUP, VERSION, "lieutenants")
async def lieutenant_changed(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
    rt = runtime.current()
    key = (body.metadata.namespace or "", body.metadata.name or "")
    runner = rt.lieutenants.get(key)
    if event.get("type") == "DELETED" and runner is not None and \
            runner.body.get("metadata", {}).get("uid") == body.metadata.uid:
        runner.gone = True  # no finalizer holds it: the loop ends itself
    waker = rt.lieutenant_wakers.get(key)
    if waker is not None:
        waker.set()


@kopf.daemon(GROUP, VERSION, "lieutenants", cancellation_timeout=10.0)
async def lieutenant_loop(body: kopf.Body, stopped: kopf.DaemonStopped, logger: kopf.Logger,
                          **_: Any) -> None:
    rt = runtime.current()
    key = (body.metadata.namespace or "", body.metadata.name or "")
    waker = rt.lieutenant_wakers[key] = asyncio.Event()
    runner = LieutenantRunner(rt, body, waker, stopping=lambda: bool(stopped))
    rt.lieutenants[key] = runner
    failures = 0
    last_problem = ""
    wake_on_stop = asyncio.create_task(_wake_when_stopped(stopped, waker))
    try:
        while not stopped and not runner.gone:
            waker.clear()
            started = time.monotonic()
            runner.attached_at = None
            outcome = "success"
            try:
                delay = await runner.reconcile()
                failures = 0
            except StepOut as reason:
                logger.info("stepping out: %s", reason)
                failures = 0  # it was attached: later failures count afresh
                delay = 0.0
            except (InputError, OwnershipError) as error:
                outcome = "invalid"
                runner.fail("InvalidSpec" if isinstance(error, OwnershipError)
                            else "MissingInput", str(error))
                await runner.flush(force=True)
                if str(error) != last_problem:
                    runtime.post_event(body, "Warning", "InvalidSpec", str(error))
                last_problem = str(error)
                delay = 600.0
            except (VersError, SessionError, DeliveryError, OSError, TimeoutError) as error:
                outcome = "retry"
                failures += 1
                delay = backoff(failures, cap=60)
                message = f"cannot reach the agent ({error}); retrying in {delay:.0f}s"
                logger.warning(message)
                runner.retrying(message, failures)
                with contextlib.suppress(Exception):
                    await runner.flush(force=True)
                if str(error) != last_problem:
                    runtime.post_event(body, "Warning", "AgentUnreachable", message)
                last_problem = str(error)
            except Exception:
                outcome = "error"
                failures += 1
                delay = backoff(failures, cap=60)
                logger.exception("lieutenant loop failed; retrying in %.0fs", delay)
            # A pass that attached is timed until pi answered, not for the attachment.
            ended = runner.attached_at or time.monotonic()
            metrics.reconciled("Lieutenant", outcome, ended - started)
            rt.backing_off("Lieutenant", key, failures)
            if delay > 0:
                await sleep_until(waker, stopped, delay)
    finally:
        wake_on_stop.cancel()
        # A lieutenant re-created under the same name may already have its own loop.
        if rt.lieutenants.get(key) is runner:
            rt.lieutenant_wakers.pop(key, None)
            rt.lieutenants.pop(key, None)
            rt.backing_off("Lieutenant", key, 0)


# No finalizer for the loop: that is two writes per lieutenant (add, remove) for
# nothing here. The lieutenant's VMNode (which holds its own finalizer until the VM
# is released) goes with it by ownerReference, and the loop ends itself on the
# DELETED event.
without_finalizer(lieutenant_loop)


async def _wake_when_stopped(stopped: kopf.DaemonStopped, waker: asyncio.Event) -> None:
    """An attached loop notices a stop (deletion, shutdown) at once, not at its next event."""
    await stopped.wait()
    waker.set()
