"""One daemon loop for every kind: a pass, then sleep until woken or due.

A kopf daemon per object runs `run_passes`. A pass returns the seconds until the
next one is due; the watch handler sets the object's waker to bring it sooner.
A pass that raises is classified by the controller (`Passes.classify`):

- retry: a failure worth retrying (the platform, the agent): exponential backoff;
- invalid: the object cannot work as written: nothing happens until it changes;
- error: anything unforeseen: logged with its traceback, exponential backoff.

Retries and errors count the failures in a row (the metrics' "objects in
backoff"); a successful pass resets the count, an invalid one leaves it. Every
pass is counted in the metrics with its outcome and duration. The loop ends when
kopf stops the daemon or the controller says the object is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol

import kopf

from reef_operator import metrics
from reef_operator.retry import backoff

Failure = Literal["retry", "invalid", "error"]
Outcome = Literal["success", "retry", "invalid", "error"]

HELD = 600.0  # an invalid object waits this long (or until it changes) before the next pass


class Stopped(Protocol):
    """kopf's DaemonStopped, as far as the loop uses it."""

    def __bool__(self) -> bool: ...

    def wait(self) -> Awaitable[Any]: ...


class Passes:
    """One object's side of the loop: its pass, and what a failed pass means.

    Subclasses give `kind` (the metrics' label) and `run`, and override the rest
    where their kind differs.
    """

    kind: str
    backoff_cap = 300.0

    @property
    def gone(self) -> bool:
        """The object is gone and nothing holds it: the loop ends without waiting for kopf."""
        return False

    async def run(self) -> float:
        """One pass; returns the seconds until the next one is due."""
        raise NotImplementedError

    def finished_at(self) -> float | None:
        """When the last pass counts as finished (time.monotonic()); None: when it returned."""
        return None

    def classify(self, error: Exception) -> Failure:
        """What a failed pass means; unforeseen errors are "error"."""
        return "error"

    async def report(self, error: Exception, failure: Failure, failures: int,
                     delay: float) -> None:
        """Say why a pass failed as "retry" or "invalid" (status, Events, log)."""


def after_failure(failure: Failure, failures: int, cap: float) -> tuple[int, float]:
    """The failures in a row and the delay before the next pass, after a failed one."""
    if failure == "invalid":
        return failures, HELD
    return failures + 1, backoff(failures + 1, cap=cap)


async def run_passes(passes: Passes, *, waker: asyncio.Event, stopped: Stopped,
                     logger: kopf.Logger, backing_off: Callable[[int], None]) -> None:
    """Run passes until stopped or gone; `backing_off` hears the failures in a row."""
    failures = 0
    while not stopped and not passes.gone:
        waker.clear()
        started = time.monotonic()
        outcome: Outcome
        try:
            delay = await passes.run()
            outcome, failures = "success", 0
        except Exception as error:
            outcome = passes.classify(error)
            failures, delay = after_failure(outcome, failures, passes.backoff_cap)
            if outcome == "error":
                logger.exception("%s pass failed; retrying in %.1fs", passes.kind, delay)
            else:
                await passes.report(error, outcome, failures, delay)
        metrics.reconciled(passes.kind, outcome,
                           (passes.finished_at() or time.monotonic()) - started)
        backing_off(failures)
        if delay > 0:
            await sleep_until(waker, stopped, delay)


async def run_keyed(wakers: dict[tuple[str, str], asyncio.Event], key: tuple[str, str],
                    make_passes: Callable[[asyncio.Event], Passes], *, stopped: Stopped,
                    logger: kopf.Logger,
                    backing_off: Callable[[str, tuple[str, str], int], None]) -> None:
    """The loop of an object others wake by its key (`wakers[key]`, set by event handlers):
    its passes until stopped or gone; then its waker goes, unless a loop of an object
    re-created under the same name already holds another."""
    waker = wakers.setdefault(key, asyncio.Event())
    passes = make_passes(waker)
    try:
        await run_passes(passes, waker=waker, stopped=stopped, logger=logger,
                         backing_off=functools.partial(backing_off, passes.kind, key))
    finally:
        if wakers.get(key) is waker:
            wakers.pop(key, None)
        backing_off(passes.kind, key, 0)


async def sleep_until(waker: asyncio.Event, stopped: Stopped, delay: float) -> None:
    """Sleep `delay` seconds, or less when the waker is set or the daemon stopped."""
    wake = asyncio.ensure_future(waker.wait())
    stop = asyncio.ensure_future(stopped.wait())
    try:
        await asyncio.wait({wake, stop}, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (wake, stop):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
