"""TaskRecords: one per finished task, written exactly once, kept within the lieutenant's
retention.

What a record holds comes from pi's events during the task's run: a `Transcript` is fed
every event between the task's user message and its end (the text of each assistant
message, narration between tool calls included, and each tool call's start and end),
bounded as it grows since the VM writes those events.

Exactly once, across crashes: a record's name is a function of (lieutenant, task), so
creating it twice answers AlreadyExists, which means it is written. The status writer
creates a finished task's record *before* the status write that moves
`status.session.offset` past the task's end (lieutenants/status.py): a crash before the
create leaves the offset before the end, the events are read again and the task ends
again; a crash after it re-creates the same name.

Nothing read before a crash is lost: a restarted operator resumes reading at
`status.session.offset`, which may be past the start of the running task. On attach the
runner first replays pi's event log from `status.currentTask.eventOffset` (where the
task's user message begins) up to that offset (`Ledger.replay`): the text, the tool
calls and the task's usage come back, while the session's usage, Events and metrics,
written or announced with the offset, are not counted twice.

Retention (`spec.taskRecords`) is kept without a list per task: the keeper lists the
lieutenant's records once, then remembers what it creates, and deletes the oldest
beyond `maxRecords` or older than `maxAgeDays` when it writes a new one.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from reef_operator.agent.events import assistant_text
from reef_operator.api.taskrecord import (
    ANSWER_LIMIT,
    MAX_TOOL_CALLS,
    MESSAGE_LIMIT,
    TOOL_ARGUMENTS_LIMIT,
    record_name,
)
from reef_operator.constants import (
    API_VERSION,
    LABEL_COMPLETED_DAY,
    LABEL_LIEUTENANT,
    LABEL_TASK,
)
from reef_operator.kube.conditions import parse_time

PLURAL = "taskrecords"
DEFAULT_MAX_RECORDS = 1000
TOOL_NAME_LIMIT = 128


def clean(text: str) -> str:
    """Text from the VM as UTF-8 can carry it: a lone surrogate (valid in JSON's escapes,
    not in UTF-8) becomes "?" instead of failing the record's write."""
    return text.encode(errors="replace").decode()


def cut_utf8(text: str, limit: int) -> tuple[str, bool]:
    """`text` cut to at most `limit` bytes of UTF-8, never inside a character."""
    encoded = text.encode(errors="replace")
    if len(encoded) <= limit:
        return text, False
    return encoded[:limit].decode(errors="ignore"), True


@dataclass
class Transcript:
    """Everything the agent said and did in one task's run, bounded as it is fed."""

    parts: list[str] = field(default_factory=list)
    size: int = 0                                   # bytes of UTF-8 held in parts
    truncated: bool = False
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    tool_calls_dropped: bool = False
    open_calls: dict[str, int] = field(default_factory=dict)  # toolCallId → index

    def feed(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        if kind == "message_end":
            message = event.get("message") or {}
            if isinstance(message, Mapping) and message.get("role") == "assistant":
                self._text(clean(assistant_text(message).strip()))
        elif kind == "tool_execution_start":
            self._tool_start(event)
        elif kind == "tool_execution_end":
            index = self.open_calls.pop(str(event.get("toolCallId", "")), None)
            if index is not None:
                self.tool_calls[index]["ok"] = not bool(event.get("isError"))

    def _text(self, text: str) -> None:
        if not text:
            return
        piece = f"\n\n{text}" if self.parts else text
        room = ANSWER_LIMIT - self.size
        kept, cut = cut_utf8(piece, room)
        if kept:
            self.parts.append(kept)
            self.size += len(kept.encode())
        self.truncated = self.truncated or cut

    def _tool_start(self, event: Mapping[str, Any]) -> None:
        if len(self.tool_calls) >= MAX_TOOL_CALLS:
            self.tool_calls_dropped = True
            return
        try:
            arguments = json.dumps(event.get("args"), ensure_ascii=False, sort_keys=True)
        except (TypeError, ValueError):
            arguments = "(not JSON)"
        if len(arguments) > TOOL_ARGUMENTS_LIMIT:
            arguments = arguments[:TOOL_ARGUMENTS_LIMIT] + "…"
        call = {"name": clean(str(event.get("toolName", ""))[:TOOL_NAME_LIMIT]) or "(unnamed)",
                "arguments": clean(arguments)}
        self.tool_calls.append(call)
        self.open_calls[str(event.get("toolCallId", ""))] = len(self.tool_calls) - 1

    @property
    def answer(self) -> str:
        return "".join(self.parts)


@dataclass(frozen=True)
class FinishedTask:
    """A task that ended, as its record will say (the ledger makes one per ending)."""

    task: str
    mode: str
    message: str
    phase: str
    sent_at: str | None
    started_at: str | None
    completed_at: str | None
    stop_reason: str
    note: str
    usage: Mapping[str, Any]
    transcript: Transcript


def record_object(namespace: str, lieutenant: str, lieutenant_uid: str,
                  finished: FinishedTask) -> dict[str, Any]:
    """The TaskRecord for a finished task, owned by its lieutenant."""
    spec: dict[str, Any] = {
        "lieutenant": lieutenant, "task": finished.task, "mode": finished.mode,
        "message": finished.message[:MESSAGE_LIMIT], "phase": finished.phase,
        "stopReason": finished.stop_reason[:64], "note": finished.note[:4096],
        "usage": dict(finished.usage), "answer": finished.transcript.answer,
        "truncated": finished.transcript.truncated,
        "toolCalls": finished.transcript.tool_calls,
        "toolCallsDropped": finished.transcript.tool_calls_dropped,
    }
    for key, value in (("sentAt", finished.sent_at), ("startedAt", finished.started_at),
                       ("completedAt", finished.completed_at)):
        if value:
            spec[key] = value
    return {
        "apiVersion": API_VERSION, "kind": "TaskRecord",
        "metadata": {
            "name": record_name(lieutenant, finished.task), "namespace": namespace,
            "labels": {LABEL_LIEUTENANT: lieutenant, LABEL_TASK: finished.task,
                       **({LABEL_COMPLETED_DAY: finished.completed_at[:10]}
                          if finished.completed_at else {})},
            "ownerReferences": [{"apiVersion": API_VERSION, "kind": "Lieutenant",
                                 "name": lieutenant, "uid": lieutenant_uid}],
        },
        "spec": {k: v for k, v in spec.items() if v != ""},
    }


class RecordApi(Protocol):
    async def create_object(self, plural: str, namespace: str, body: dict[str, Any]) -> bool:
        """Create; False when an object of that name already exists."""
        ...

    async def list_objects(self, plural: str, namespace: str, label_selector: str
                           ) -> list[dict[str, Any]]: ...

    async def delete_object(self, plural: str, namespace: str, name: str) -> None:
        """Delete; nothing when it is already gone."""
        ...


@dataclass(frozen=True)
class Retention:
    max_records: int = DEFAULT_MAX_RECORDS
    max_age_days: int | None = None

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Retention:
        wanted = spec.get("taskRecords") or {}
        age = wanted.get("maxAgeDays")
        return cls(int(wanted.get("maxRecords", DEFAULT_MAX_RECORDS)),
                   int(age) if age is not None else None)

    def expired(self, kept: list[tuple[str, str]], now: datetime.datetime) -> list[str]:
        """Of records (completedAt, name) sorted oldest first, the names to delete."""
        over = max(0, len(kept) - self.max_records)
        doomed = [name for _, name in kept[:over]]
        if self.max_age_days is not None:
            cutoff = now - datetime.timedelta(days=self.max_age_days)
            for completed, name in kept[over:]:
                moment = parse_time(completed)
                if moment is None or moment >= cutoff:
                    break
                doomed.append(name)
        return doomed


class RecordKeeper:
    """One lieutenant's records: creates them and keeps the retention."""

    def __init__(self, api: RecordApi, namespace: str, lieutenant: str, uid: str) -> None:
        self.api = api
        self.namespace = namespace
        self.lieutenant = lieutenant
        self.uid = uid
        self.kept: list[tuple[str, str]] | None = None   # (completedAt, name), oldest first

    async def write(self, pending: list[FinishedTask], retention: Retention) -> None:
        """Create the pending records (each taken off the list once it exists), then
        delete what retention no longer keeps."""
        if not pending:
            return
        if self.kept is None:
            listed = await self.api.list_objects(PLURAL, self.namespace,
                                                 f"{LABEL_LIEUTENANT}={self.lieutenant}")
            self.kept = sorted((str((r.get("spec") or {}).get("completedAt") or ""),
                                str(r["metadata"]["name"])) for r in listed)
        while pending:
            finished = pending[0]
            body = record_object(self.namespace, self.lieutenant, self.uid, finished)
            name = body["metadata"]["name"]
            if await self.api.create_object(PLURAL, self.namespace, body) and \
                    all(n != name for _, n in self.kept):
                self.kept.append((finished.completed_at or "", name))
            pending.pop(0)
        self.kept.sort()
        doomed = retention.expired(self.kept, datetime.datetime.now(datetime.UTC))
        for name in doomed:
            await self.api.delete_object(PLURAL, self.namespace, name)
        gone = set(doomed)
        self.kept = [(c, n) for c, n in self.kept if n not in gone]
