"""kopf handlers for Lieutenant: a daemon per lieutenant runs its loop; the watch wakes it."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import Any

import kopf

from reef_operator import fairshare
from reef_operator.agent.session import SessionError
from reef_operator.api import reefpolicy
from reef_operator.constants import GROUP, VERSION
from reef_operator.controllers import daemon, runtime
from reef_operator.controllers.kopf_internals import without_finalizer
from reef_operator.lieutenants.delivery import DeliveryError
from reef_operator.lieutenants.runner import (
    InputError,
    LieutenantRunner,
    OwnershipError,
    StepOut,
)
from reef_operator.providers.errors import ProviderError

# The agent cannot be reached now: the VM's shell failed (any provider error), pi's
# session could not be started or its input written, a local pipe broke, or pi did
# not answer in time. The loop retries with backoff and says AgentUnreachable.
AGENT_UNREACHABLE = (ProviderError, SessionError, DeliveryError, OSError, TimeoutError)


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
    rt.wake_policies(key[0])   # its count, or its tasks' cost, may have changed
    rt.wake_forks_of(key)      # a fork waiting for its checkpoint, or for it to appear


@kopf.daemon(GROUP, VERSION, "lieutenants", cancellation_timeout=10.0)
async def lieutenant_loop(body: kopf.Body, stopped: kopf.DaemonStopped, logger: kopf.Logger,
                          **_: Any) -> None:
    rt = runtime.current()
    key = (body.metadata.namespace or "", body.metadata.name or "")
    waker = rt.lieutenant_wakers[key] = asyncio.Event()
    runner = LieutenantRunner(rt, body, waker, stopping=lambda: bool(stopped))
    rt.lieutenants[key] = runner
    wake_on_stop = asyncio.create_task(_wake_when_stopped(stopped, waker))
    try:
        with fairshare.acting_for(key[0]):
            await daemon.run_passes(_LieutenantPasses(runner, body, logger), waker=waker,
                                    stopped=stopped, logger=logger,
                                    backing_off=functools.partial(rt.backing_off, "Lieutenant",
                                                                  key))
    finally:
        wake_on_stop.cancel()
        # A lieutenant re-created under the same name may already have its own loop.
        if rt.lieutenants.get(key) is runner:
            rt.watch_fork_source(key[0], key[1], None)
            rt.lieutenant_wakers.pop(key, None)
            rt.lieutenants.pop(key, None)
            rt.backing_off("Lieutenant", key, 0)
            if reefpolicy.limits(rt.policy(key[0])).get("maxLieutenants") is not None:
                rt.wake_lieutenants(key[0])  # one waiting for room may start now


class _LieutenantPasses(daemon.Passes):
    """A lieutenant's passes: its runner's, with the agent's failures said once each."""

    kind = "Lieutenant"
    backoff_cap = 60.0

    def __init__(self, runner: LieutenantRunner, body: kopf.Body, logger: kopf.Logger) -> None:
        self.runner, self.body, self.logger = runner, body, logger
        self.last_problem = ""  # an Event only when the problem changes

    @property
    def gone(self) -> bool:
        return self.runner.gone

    async def run(self) -> float:
        self.runner.attached_at = None
        try:
            return await self.runner.reconcile()
        except StepOut as reason:
            self.logger.info("stepping out: %s", reason)
            # A success: it was attached, so later failures count afresh; next pass at once.
            return 0.0

    def finished_at(self) -> float | None:
        # A pass that attached is timed until pi answered, not for the attachment.
        return self.runner.attached_at

    def classify(self, error: Exception) -> daemon.Failure:
        if isinstance(error, InputError | OwnershipError):
            return "invalid"
        if isinstance(error, AGENT_UNREACHABLE):
            return "retry"
        return "error"

    async def report(self, error: Exception, failure: daemon.Failure, failures: int,
                     delay: float) -> None:
        if failure == "invalid":
            self.runner.fail(error.reason if isinstance(error, InputError) else "InvalidSpec",
                             str(error))
            await self.runner.flush(force=True)
            if str(error) != self.last_problem:
                runtime.post_event(self.body, "Warning", "InvalidSpec", str(error))
        else:
            message = f"cannot reach the agent ({error}); retrying in {delay:.0f}s"
            self.logger.warning(message)
            self.runner.retrying(message, failures)
            with contextlib.suppress(Exception):
                await self.runner.flush(force=True)
            if str(error) != self.last_problem:
                runtime.post_event(self.body, "Warning", "AgentUnreachable", message)
        self.last_problem = str(error)


# No finalizer for the loop: that is two writes per lieutenant (add, remove) for
# nothing here. The lieutenant's VMNode (which holds its own finalizer until the VM
# is released) goes with it by ownerReference, and the loop ends itself on the
# DELETED event.
without_finalizer(lieutenant_loop)


async def _wake_when_stopped(stopped: kopf.DaemonStopped, waker: asyncio.Event) -> None:
    """An attached loop notices a stop (deletion, shutdown) at once, not at its next event."""
    await stopped.wait()
    waker.set()
