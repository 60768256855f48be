"""The daemon loop both controllers run: failures in a row, backoff, outcomes, its end."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

import pytest
from prometheus_client import REGISTRY

from reef_operator.controllers.daemon import HELD, Failure, Passes, after_failure, run_passes


class Stopped:
    """kopf's DaemonStopped, as the loop sees it."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def __bool__(self) -> bool:
        return self.event.is_set()

    def wait(self) -> Awaitable[Any]:
        return self.event.wait()


class Retry(Exception):
    """A failure the scripted controller retries."""


class Invalid(Exception):
    """The scripted object cannot work as written."""


class Scripted(Passes):
    """Passes that return or raise what the script says, then stop the daemon.

    Each pass sets the waker, as a watch event during the pass would: the loop's
    sleep after it returns at once, so no test waits for a backoff delay.
    """

    kind = "ScriptedKind"
    backoff_cap = 8.0

    def __init__(self, script: list[float | Exception], waker: asyncio.Event,
                 stopped: Stopped) -> None:
        self.script, self.waker, self.stopped = script, waker, stopped
        self.reports: list[tuple[str, int, float]] = []
        self.passes = 0

    async def run(self) -> float:
        self.passes += 1
        step = self.script.pop(0)
        self.waker.set()
        if not self.script:
            self.stopped.event.set()
        if isinstance(step, Exception):
            raise step
        return step

    def classify(self, error: Exception) -> Failure:
        if isinstance(error, Retry):
            return "retry"
        return "invalid" if isinstance(error, Invalid) else "error"

    async def report(self, error: Exception, failure: Failure, failures: int,
                     delay: float) -> None:
        self.reports.append((failure, failures, delay))


async def _run(script: list[float | Exception]) -> tuple[Scripted, list[int]]:
    waker, stopped, heard = asyncio.Event(), Stopped(), list[int]()
    passes = Scripted(script, waker, stopped)
    await run_passes(passes, waker=waker, stopped=stopped, logger=logging.getLogger("test"),
                     backing_off=heard.append)
    return passes, heard


def _count(outcome: str) -> float:
    value = REGISTRY.get_sample_value("reef_reconcile_total",
                                      {"kind": "ScriptedKind", "outcome": outcome})
    return value or 0.0


async def test_failures_in_a_row_back_off_and_a_success_resets_them() -> None:
    passes, heard = await _run([Retry("platform down"), Retry("still down"), 0.0,
                                Retry("down again")])
    assert heard == [1, 2, 0, 1]
    assert [(failure, failures) for failure, failures, _ in passes.reports] == [
        ("retry", 1), ("retry", 2), ("retry", 1)]
    first, second, again = (delay for _, _, delay in passes.reports)
    assert 1.0 <= first <= 2.0 and 2.0 <= second <= 4.0 and 1.0 <= again <= 2.0


async def test_an_invalid_object_waits_for_a_change_and_keeps_the_count() -> None:
    passes, heard = await _run([Retry("down"), Invalid("no such Secret"), Invalid("still"),
                                5.0])
    assert heard == [1, 1, 1, 0]
    assert passes.reports[1:] == [("invalid", 1, HELD), ("invalid", 1, HELD)]


async def test_an_unforeseen_error_is_logged_with_its_traceback_and_backs_off(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="test"):
        passes, heard = await _run([RuntimeError("bug"), 1.0])
    assert heard == [1, 0]
    assert passes.reports == []  # nothing to say on the object: it is not its fault
    [record] = caplog.records
    assert record.getMessage().startswith("ScriptedKind pass failed; retrying in ")
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)


async def test_every_pass_is_counted_with_its_outcome() -> None:
    before = {o: _count(o) for o in ("success", "retry", "invalid", "error")}
    await _run([Retry("down"), Invalid("bad"), RuntimeError("bug"), 0.0, 0.0])
    after = {o: _count(o) for o in before}
    assert {o: after[o] - before[o] for o in before} == {
        "success": 2, "retry": 1, "invalid": 1, "error": 1}


async def test_the_loop_ends_when_the_object_is_gone_without_a_stop() -> None:
    class Gone(Scripted):
        @property
        def gone(self) -> bool:
            return self.passes >= 2

    waker, stopped = asyncio.Event(), Stopped()
    passes = Gone([0.0, 0.0, 0.0, 0.0], waker, stopped)
    await run_passes(passes, waker=waker, stopped=stopped, logger=logging.getLogger("test"),
                     backing_off=lambda failures: None)
    assert passes.passes == 2 and not stopped


async def test_a_stopped_daemon_runs_no_pass() -> None:
    waker, stopped = asyncio.Event(), Stopped()
    stopped.event.set()
    passes = Scripted([0.0], waker, stopped)
    await run_passes(passes, waker=waker, stopped=stopped, logger=logging.getLogger("test"),
                     backing_off=lambda failures: None)
    assert passes.passes == 0


def test_after_a_failure_the_delay_grows_to_the_cap() -> None:
    assert after_failure("invalid", 3, cap=60.0) == (3, HELD)
    failures, delay = after_failure("retry", 0, cap=60.0)
    assert failures == 1 and 1.0 <= delay <= 2.0
    failures, delay = after_failure("error", 20, cap=60.0)
    assert failures == 21 and 30.0 <= delay <= 60.0
