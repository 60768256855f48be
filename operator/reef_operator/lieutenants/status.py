"""The lieutenant's status: kept in memory, written as few coalesced patches as it can.

A change marks the status dirty; `flush` writes it at most once per FLUSH_INTERVAL
while streaming, or at once when forced (an outcome, a phase a reader waits for).
A write that would change nothing a reader compares is skipped: times, the VM id
echoed from the VMNode and the stream offset only travel with the next real change
(re-reading events past the written offset after a restart changes nothing).

Every write is measured before it is sent and trimmed to STATUS_BUDGET (trimming.py
says in which order); should the apiserver still refuse it as too large, it is trimmed
to a quarter of that and sent once more, with one warning in the log: a write is
never retried in a loop.

What a write says happened is announced after it lands, never before: task Events
and the task and model-usage metrics, so a reader who sees an Event finds the status
that explains it, and a re-read of unwritten events cannot count twice.

The TaskRecords of ended tasks are created before the status write that says they
ended (and moves the stream offset past their end): a record is never lost to a crash
between the two (lieutenants/records.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from reef_operator import metrics
from reef_operator.agent.events import Compaction, MessageUsage
from reef_operator.api.budget import STATUS_BUDGET
from reef_operator.kube.api import is_not_found, is_too_large
from reef_operator.kube.conditions import (
    Condition,
    merge_conditions,
    now_iso,
    parse_time,
    without_transition_times,
)
from reef_operator.lieutenants.ledger import Ledger, LedgerTask
from reef_operator.lieutenants.records import RecordKeeper, Retention
from reef_operator.lieutenants.runtime import StatusHost
from reef_operator.lieutenants.trimming import fit

logger = logging.getLogger(__name__)

PLURAL = "lieutenants"
MARKS = ("expiredAt", "destroyedAt", "delegation")
FLUSH_INTERVAL = 1.0          # at most one status patch per second while streaming

# Event reasons for a task's life, posted on the Lieutenant once its status says so.
TASK_EVENTS = {"Succeeded": ("Normal", "TaskSucceeded"), "Failed": ("Warning", "TaskFailed"),
               "Aborted": ("Normal", "TaskAborted")}


class StatusWriter:
    def __init__(self, rt: StatusHost, body: Mapping[str, Any], ledger: Ledger,
                 deleting: Callable[[], bool]) -> None:
        self.rt = rt
        self.body = body                    # kopf's live view of the object
        self.ledger = ledger
        self.deleting = deleting            # a deleted object's status is not written
        meta = body.get("metadata", {})
        self.name = str(meta.get("name"))
        self.namespace = str(meta.get("namespace"))
        self.uid = str(meta.get("uid", ""))
        self._records: RecordKeeper | None = None
        status = body.get("status") or {}
        self.phase = str(status.get("phase") or "Starting")
        self.conditions: list[Condition] = []
        self.session: dict[str, Any] = dict(status.get("session") or {})
        self.offset = int(self.session.get("offset", 0))
        # When the lieutenant expired and when it became Destroyed (the clock of
        # ttlSecondsAfterDestroyed): kept in status so a restart keeps them.
        self.marks: dict[str, str] = {key: str(status[key]) for key in MARKS
                                      if status.get(key)}
        # Where a fork started (recorded before its VM is made) and the checkpoints taken
        # of this lieutenant's VM: written with every status, never trimmed.
        self.fork: dict[str, Any] | None = dict(status["forkedFrom"]) \
            if status.get("forkedFrom") else None
        self.checkpoints: list[dict[str, Any]] = [dict(c) for c in
                                                  status.get("checkpoints") or []]
        self.written: dict[str, Any] = {}
        self.dirty = False
        self.gone = False                   # a status write found the object deleted
        self.last_flush = 0.0
        # Snapshots are taken and written one at a time: two concurrent writes could
        # land out of order and leave an older snapshot in place.
        self._lock = asyncio.Lock()
        self._unwritten_usage: list[tuple[str, MessageUsage]] = []
        self._warned_too_large = False
        self._unwritten_compactions: list[Compaction] = []

    def set_phase(self, phase: str, conditions: list[Condition]) -> None:
        if phase != self.phase:
            self.dirty = True
        self.phase = phase
        self.conditions = conditions

    def usage_read(self, model: str, usage: MessageUsage) -> None:
        """Model usage read from pi's events, counted in the metrics once written."""
        self._unwritten_usage.append((model, usage))

    def compacted(self, compaction: Compaction) -> None:
        """pi compacted the conversation (counted in `status.session.compactions`), or
        failed to; its Event follows the write. The caller counts it together with the
        offset past its event, so a re-read after a restart does not count it twice."""
        if compaction.done:
            self.session["compactions"] = int(self.session.get("compactions", 0)) + 1
        if compaction.done or compaction.error:
            self._unwritten_compactions.append(compaction)
        self.dirty = True

    async def flush(self, force: bool = False) -> None:
        """Write status if it changed; while streaming at most once per FLUSH_INTERVAL."""
        if not force and time.monotonic() - self.last_flush < FLUSH_INTERVAL:
            return
        async with self._lock:
            await self._write()

    def snapshot(self) -> dict[str, Any]:
        """The status as it would be written now."""
        status_now = self.body.get("status") or {}
        generation = int(self.body.get("metadata", {}).get("generation", 0))
        node = self.rt.vmnode_bodies.get((self.namespace, self.name)) or {}
        status = {
            **self.ledger.status(),
            "observedGeneration": generation,
            "phase": self.phase,
            "vmNodeName": self.name,
            "vmId": (node.get("status") or {}).get("vmId"),
            "session": {**self.session, "offset": self.offset},
            # None removes a mark the object still has (a merge patch).
            **{key: self.marks.get(key) for key in MARKS
               if key in self.marks or status_now.get(key)},
        }
        # Copies: the written status is compared with the next one.
        if self.fork is not None:
            status["forkedFrom"] = dict(self.fork)
        if self.checkpoints:
            status["checkpoints"] = [dict(c) for c in self.checkpoints]
        status["conditions"] = merge_conditions(status_now.get("conditions"), self.conditions,
                                                generation, now_iso())
        return status

    async def _write(self) -> None:
        if self.gone or self.deleting():
            return
        if self._records is None:
            self._records = RecordKeeper(self.rt.kube, self.namespace, self.name, self.uid)
        await self._records.write(self.ledger.finished,
                                 Retention.from_spec(self.body.get("spec") or {}))
        status = self.snapshot()
        compared = comparable(status)
        if compared != self.written:
            try:
                await self._send(status)
            except Exception as error:
                if not is_not_found(error):
                    raise
                # Deleted between the watch event that started this pass and the write:
                # nothing is left to report on, and no error to log.
                self.gone = True
                return
            self.written = compared
            self.last_flush = time.monotonic()
        self.dirty = False
        self._announce()

    async def _send(self, status: dict[str, Any]) -> None:
        window = len(self.ledger.retired)
        fitted, trimmed = fit(status, STATUS_BUDGET, window)
        if trimmed:
            logger.info("status of lieutenant %s/%s over its %d-byte budget: trimmed %s",
                        self.namespace, self.name, STATUS_BUDGET, ", ".join(trimmed))
        try:
            await self.rt.kube.patch_status(PLURAL, self.namespace, self.name, fitted)
        except Exception as error:
            if not is_too_large(error):
                raise
            harder, trimmed = fit(status, STATUS_BUDGET // 4, window)
            if not self._warned_too_large:
                self._warned_too_large = True
                logger.warning(
                    "the apiserver refused the status of lieutenant %s/%s as too large: "
                    "written trimmed to %d bytes (%s); its metadata or spec may be near the "
                    "object's limit", self.namespace, self.name, STATUS_BUDGET // 4,
                    ", ".join(trimmed) or "nothing left to trim")
            await self.rt.kube.patch_status(PLURAL, self.namespace, self.name, harder)

    def _announce(self) -> None:
        """What the status just written says happened: task Events and metrics."""
        for model, usage in self._unwritten_usage:
            metrics.model_usage(self.namespace, model, {
                "input": usage.input, "output": usage.output,
                "cache_read": usage.cache_read, "cache_write": usage.cache_write}, usage.cost)
        self._unwritten_usage = []
        for compaction in self._unwritten_compactions:
            if compaction.done:
                self.rt.post_event(self.body, "Normal", "SessionCompacted",
                                   compaction_message(compaction))
            else:
                self.rt.post_event(self.body, "Warning", "CompactionFailed",
                                   f"pi could not compact the conversation: {compaction.error}")
        self._unwritten_compactions = []
        for change, task in self.ledger.drain():
            if change == "started":
                self.rt.post_event(self.body, "Normal", "TaskStarted",
                                   f"task {task.name} reached the agent ({task.mode})")
                continue
            seconds = seconds_between(task.sent_at, task.completed_at)
            metrics.task_ended(self.namespace, task.phase, seconds)
            kind, reason = TASK_EVENTS.get(task.phase, ("Normal", f"Task{task.phase}"))
            self.rt.post_event(self.body, kind, reason, task_message(task, seconds))


def comparable(status: Mapping[str, Any]) -> dict[str, Any]:
    """The status without the fields that never cause a write on their own."""
    compared = {k: v for k, v in status.items() if k not in ("lastActivityTime", "vmId")}
    compared["session"] = {k: v for k, v in status["session"].items() if k != "offset"}
    compared["conditions"] = without_transition_times(status["conditions"])
    return compared


def compaction_message(compaction: Compaction) -> str:
    why = {"threshold": "the context neared the model's window",
           "overflow": "the context overflowed the model's window",
           "manual": "asked to"}.get(compaction.reason, "")
    before = f" from {compaction.tokens_before:,} tokens" if compaction.tokens_before else ""
    because = f" ({why})" if why else ""
    return (f"pi compacted the conversation{before}{because}: older messages are replaced by "
            "a summary that the next task still carries")


def seconds_between(start: str | None, end: str | None) -> float | None:
    began, ended = parse_time(start), parse_time(end)
    return None if began is None or ended is None else (ended - began).total_seconds()


def task_message(task: LedgerTask, seconds: float | None) -> str:
    """An ended task's Event: its outcome, how long it took, and why when it did not succeed."""
    took = f" after {seconds:.0f}s" if seconds is not None else ""
    note = f": {task.note}" if task.phase != "Succeeded" and task.note else ""
    return f"task {task.name} {task.phase.lower()}{took}{note}"
