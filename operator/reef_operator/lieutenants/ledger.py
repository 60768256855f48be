"""The lieutenant's task ledger: what was asked, what was delivered, what came back.

Pure bookkeeping, fed by the spec's task list and pi's events, producing the
status fields `tasks`, `currentTask`, `history`, `taskCount` and `usage`.
Delivery order is the spec's order; each task is delivered once (the caller
proves delivery with the VM's sent-log, see lieutenants/delivery.py).

What the ledger keeps is bounded whatever the session's length (api/budget.py): every
task still in the spec (a finished one compactly: name, phase and a short note), a
window of the most recent FINISHED_WINDOW finished tasks no longer in the spec (so a
name pruned a moment ago is still known), and a history bounded by historyLimit and by
HISTORY_BUDGET bytes, oldest first. A finished task is never delivered again: one
still in the spec keeps its finished phase, and one whose name comes back (re-added
while the admission webhook failed open) is refused with REUSED_NOTE. Past the window
the VM's sent-log remembers every name delivered (`recover_sent`, delivery.py).

How a task maps to pi's events: every delivered message (prompt, steer,
follow-up) appears in the stream as a user message. Its task starts there and
ends where the next user message starts or the run settles; its response is
the last assistant text in between. Everything in between also goes to the task's
transcript, and an ended task waits in `finished` until its TaskRecord is written
(lieutenants/records.py).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reef_operator.agent.events import MessageUsage, assistant_text, message_usage
from reef_operator.api.budget import FINISHED_WINDOW, HISTORY_BUDGET, stored_bytes
from reef_operator.api.lieutenant import FINISHED_TASK_PHASES as FINISHED
from reef_operator.kube.conditions import now_iso
from reef_operator.lieutenants.records import FinishedTask, Transcript

RESPONSE_LIMIT = 16 * 1024       # characters of one response kept in history
OUTPUT_TAIL = 4 * 1024           # characters of live output kept in currentTask
NOTE_LIMIT = 1024
FINISHED_NOTE_LIMIT = 256        # a finished task's note: why it failed, in short
REUSED_NOTE = ("a task named {name} already ran; task names are never reused: append it "
               "under a new name")


@dataclass
class LedgerTask:
    name: str
    mode: str
    message: str
    phase: str = "Pending"
    sent_at: str | None = None
    completed_at: str | None = None
    note: str = ""
    command_id: str = ""
    delivered_as: str = ""           # prompt | steer | follow_up
    unsure: bool = False             # a delivery of it failed in a way that may have acted

    @property
    def finished(self) -> bool:
        return self.phase in FINISHED

    def status(self) -> dict[str, Any]:
        if self.finished:
            # Compact: a long session keeps hundreds of these.
            out = {"name": self.name, "phase": self.phase}
            if self.note:
                out["note"] = self.note[:FINISHED_NOTE_LIMIT]
            return out
        out = {"name": self.name, "mode": self.mode, "phase": self.phase}
        for key, value in (("sentAt", self.sent_at), ("completedAt", self.completed_at),
                           ("note", self.note[:NOTE_LIMIT]), ("commandId", self.command_id)):
            if value:
                out[key] = value
        return out


@dataclass
class Usage:
    """Tokens and cost summed from the usage pi reports with each assistant message
    (pi-ai's Usage: input, output, cacheRead, cacheWrite, cost.total, the cost priced by
    pi from its model table)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def add(self, usage: MessageUsage) -> None:
        self.input_tokens += usage.input
        self.output_tokens += usage.output
        self.cache_read_tokens += usage.cache_read
        self.cache_write_tokens += usage.cache_write
        self.cost += usage.cost

    @classmethod
    def load(cls, written: Mapping[str, Any]) -> Usage:
        """The totals as status.usage holds them."""
        return cls(int(written.get("inputTokens", 0)), int(written.get("outputTokens", 0)),
                   float(written.get("cost", 0)), int(written.get("cacheReadTokens", 0)),
                   int(written.get("cacheWriteTokens", 0)))

    def status(self) -> dict[str, Any]:
        return {"inputTokens": self.input_tokens, "outputTokens": self.output_tokens,
                "cacheReadTokens": self.cache_read_tokens,
                "cacheWriteTokens": self.cache_write_tokens, "cost": round(self.cost, 6)}


@dataclass
class Ledger:
    tasks: list[LedgerTask] = field(default_factory=list)
    # Finished tasks no longer in the spec, oldest first: the most recent FINISHED_WINDOW.
    retired: list[LedgerTask] = field(default_factory=list)
    delivered: int = 0                          # tasks ever delivered (status.taskCount)
    history: list[dict[str, Any]] = field(default_factory=list)
    history_limit: int = 20
    running: str | None = None                  # name of the task being worked on
    started_at: str | None = None
    event_offset: int | None = None             # where the running task's events begin
    output: str = ""                            # live text of the current task
    last_text: str = ""                         # last complete assistant text of it
    last_stop: str = ""
    last_error: str = ""
    task_usage: Usage = field(default_factory=Usage)
    usage: Usage = field(default_factory=Usage)
    last_activity: str | None = None
    transcript: Transcript = field(default_factory=Transcript)   # of the running task
    # Whether the transcript was fed from the task's start (false when loaded from an
    # object with a task running: the runner replays its events first).
    transcript_whole: bool = False
    # Ended tasks whose TaskRecord is not written yet (the status writer writes them).
    finished: list[FinishedTask] = field(default_factory=list)
    # Tasks that started or ended since the last `drain()`: the runner announces them
    # (Events, metrics) once the status saying so is written.
    transitions: list[tuple[str, LedgerTask]] = field(default_factory=list)

    # -- from the object ------------------------------------------------------------------
    @classmethod
    def load(cls, spec: Mapping[str, Any], status: Mapping[str, Any]) -> Ledger:
        """The ledger as the written status left it. A task in the spec takes the phase
        status.tasks gives its name (so a finished one, re-added or not, stays finished);
        a finished entry whose name left the spec joins the window."""
        written = [t for t in status.get("tasks") or [] if isinstance(t, Mapping)]
        known = {t.get("name"): t for t in written}
        in_spec = {str(t["name"]) for t in spec.get("tasks") or []}
        history_limit = int(spec.get("historyLimit", 20))
        ledger = cls(history=trim_history(list(status.get("history") or []), history_limit),
                     history_limit=history_limit)
        for seen in written:
            if seen.get("name") not in in_spec and seen.get("phase") in FINISHED:
                ledger.retired.append(LedgerTask(str(seen["name"]), "prompt", "",
                                                 str(seen["phase"]),
                                                 note=str(seen.get("note", ""))))
        ledger.retired = ledger.retired[-FINISHED_WINDOW:]
        for task in spec.get("tasks") or []:
            record = LedgerTask(str(task["name"]), str(task.get("mode", "prompt")),
                                str(task.get("message", "")))
            seen = known.get(record.name) or {}
            record.phase = str(seen.get("phase", "Pending"))
            record.sent_at = seen.get("sentAt")
            record.completed_at = seen.get("completedAt")
            record.note = str(seen.get("note", ""))
            record.command_id = str(seen.get("commandId", ""))
            ledger.tasks.append(record)
        sent = sum(1 for t in ledger.tasks if t.phase != "Pending") + len(ledger.retired)
        ledger.delivered = max(int(status.get("taskCount") or 0), sent)
        current = status.get("currentTask") or {}
        ledger.running = current.get("name")
        ledger.started_at = current.get("startedAt")
        ledger.event_offset = current.get("eventOffset")
        ledger.output = str(current.get("output", ""))
        ledger.usage = Usage.load(status.get("usage") or {})
        ledger.last_activity = status.get("lastActivityTime")
        return ledger

    def sync_spec(self, spec: Mapping[str, Any]) -> None:
        """Follow the spec: tasks appended since the ledger was loaded join at the end (one
        whose name already ran is refused, not delivered); finished tasks pruned from it
        move to the window; a pending one removed before it was sent is dropped; one sent
        but not finished stays until it finishes."""
        in_spec = {str(t["name"]) for t in spec.get("tasks") or []}
        retired = {t.name: t for t in self.retired}
        names = {t.name for t in self.tasks}
        for task in spec.get("tasks") or []:
            if task["name"] in names:
                continue
            record = LedgerTask(str(task["name"]), str(task.get("mode", "prompt")),
                                str(task.get("message", "")))
            if record.name in retired:
                self.retired.remove(retired[record.name])
                self.refuse_reused(record)
            self.tasks.append(record)
        kept = []
        for task in self.tasks:
            if task.name in in_spec or task.phase in ("Queued", "Running"):
                kept.append(task)
            elif task.finished:
                self.retired.append(task)
        self.tasks = kept
        self.retired = self.retired[-FINISHED_WINDOW:]
        self.history_limit = int(spec.get("historyLimit", 20))

    def refuse_reused(self, task: LedgerTask) -> None:
        """`task` has the name of one that already ran: it fails, with why."""
        if task.phase != "Pending":
            self.delivered -= 1
        task.phase = "Failed"
        task.completed_at = now_iso()
        task.note = REUSED_NOTE.format(name=task.name)
        self.transitions.append(("ended", task))

    def recover_sent(self, sent_ids: Sequence[str], command_id: Callable[[str], str]) -> None:
        """The VM's sent-log, in delivery order, read when the operator (re)attaches: a
        pending task whose id is there was delivered. After the last delivery the written
        status knows of, that is a delivery the status had not recorded yet (a crash
        between the two): the task is on its way. Before it, the name ran long ago and
        came back after leaving the window: refused, never delivered again."""
        known = {command_id(t.name) for t in self.tasks if t.phase != "Pending"} | \
            {command_id(t.name) for t in self.retired}
        last_known = max((i for i, sent in enumerate(sent_ids) if sent in known), default=-1)
        pending = {command_id(t.name): t for t in self.tasks if t.phase == "Pending"}
        for i, sent in enumerate(sent_ids):
            task = pending.pop(sent, None)
            if task is None:
                continue
            if i < last_known:
                self.refuse_reused(task)
            else:
                self.mark_sent(task, "unknown", sent)

    # -- delivery -------------------------------------------------------------------------
    def next_pending(self) -> LedgerTask | None:
        return next((t for t in self.tasks if t.phase == "Pending"), None)

    def in_flight(self) -> bool:
        """A task is with the agent (written into pi's input, not finished)."""
        return self.running is not None or any(t.phase in ("Queued", "Running")
                                               for t in self.tasks)

    def last_finished(self) -> str | None:
        """The name of the last finished task (tasks run in order), if any."""
        ended = [t for t in (*self.retired, *self.tasks) if t.finished]
        return ended[-1].name if ended else None

    def any_finished(self) -> bool:
        return bool(self.retired) or any(t.finished for t in self.tasks)

    def get(self, name: str) -> LedgerTask | None:
        return next((t for t in self.tasks if t.name == name), None)

    def mark_sent(self, task: LedgerTask, delivered_as: str, command_id: str, note: str = ""
                  ) -> None:
        if task.phase == "Pending":
            self.delivered += 1
        task.phase = "Queued"
        task.sent_at = task.sent_at or now_iso()
        task.command_id = command_id
        task.delivered_as = delivered_as
        if note:
            task.note = note

    def unsend(self, task: LedgerTask) -> None:
        """Writing `task` to pi failed: pending again, and not known to be undelivered."""
        if task.phase == "Queued":
            self.delivered -= 1
        task.phase, task.sent_at, task.unsure = "Pending", None, True

    @property
    def task_count(self) -> int:
        return self.delivered

    # -- events ---------------------------------------------------------------------------
    def user_message(self, text: str, offset: int | None = None) -> None:
        """A delivered message reached the agent: its task starts, the previous one ends.
        `offset` is where the message's event begins in pi's event log: a reader who
        follows the task from there misses none of it."""
        task = next((t for t in self.tasks if t.phase == "Queued" and t.message == text), None)
        if task is None:
            task = next((t for t in self.tasks if t.phase == "Queued"), None)
        if task is None:
            return  # a message we did not send (e.g. typed into the VM by hand)
        if self.running and self.running != task.name:
            self._finish(self.running, self.last_stop or "stop", "")
        task.phase = "Running"
        self.transitions.append(("started", task))
        self.running = task.name
        self.started_at = now_iso()
        self.event_offset = offset
        self.output = ""
        self.last_text = ""
        self.last_error = ""
        self.task_usage = Usage()
        self.transcript = Transcript()
        self.transcript_whole = True
        self.touch()

    def replay(self, event: Mapping[str, Any]) -> None:
        """An event of the running task read again after a restart (it lies before the
        written stream offset): what only memory held comes back, the transcript and the
        task's own usage; the session's usage, written with the offset, already has it."""
        self.transcript.feed(event)
        message = event.get("message") if event.get("type") == "message_end" else None
        if isinstance(message, Mapping) and message.get("role") == "assistant":
            self.task_usage.add(message_usage(message))

    def observe(self, event: Mapping[str, Any]) -> None:
        """An event read while a task runs: its text and tool calls go to the transcript."""
        if self.running:
            self.transcript.feed(event)

    def text(self, delta: str) -> None:
        self.output = (self.output + delta)[-OUTPUT_TAIL:]
        self.touch()

    def assistant_message(self, message: Mapping[str, Any]) -> None:
        text = assistant_text(message).strip()
        if text:
            self.last_text = text
        self.last_stop = str(message.get("stopReason", "") or "")
        self.last_error = str(message.get("errorMessage", "") or "")
        usage = message_usage(message)
        self.task_usage.add(usage)
        self.usage.add(usage)
        if usage.dropped:
            self.note(usage.note())
        self.touch()

    def note(self, text: str) -> None:
        """Something the operator refused to read from pi's events (an oversized or
        malformed record, usage out of bounds): said on the task it belongs to, the
        running one, else the one last delivered; kept nowhere when no task runs."""
        task = self.get(self.running) if self.running else next(
            (t for t in reversed(self.tasks) if t.phase == "Queued"), None)
        if task is not None:
            task.note = text
            self.touch()

    def note_waiting(self, note: str, lifted: Callable[[str], bool]) -> bool:
        """Why the pending tasks wait (a hold keeps them from pi), said on each; with no
        `note`, the notes for which `lifted` is true go (the hold is over). Whether any
        note changed."""
        changed = False
        for task in self.tasks:
            if task.phase != "Pending" or task.note == note:
                continue
            if note or lifted(task.note):
                task.note = note
                changed = True
        return changed

    def settle(self, final_error: str = "") -> None:
        """The run is over and nothing follows: the running task ends."""
        if self.running:
            self._finish(self.running, self.last_stop or "stop", final_error or self.last_error)

    def abandon(self, why: str) -> None:
        """The agent was stopped for good while it worked (the lieutenant destroyed): the
        running task ends Aborted, says why, and keeps what it answered so far in its
        history entry and record like any other."""
        task = self.get(self.running) if self.running else None
        if task is not None:
            task.note = why
            self._finish(task.name, "aborted", "")
        self.running = None

    def fail_queued(self, command_id: str, error: str) -> None:
        """pi refused a command (e.g. no credentials): its task fails with pi's message."""
        task = next((t for t in self.tasks if t.command_id == command_id), None)
        if task is not None and task.phase in ("Queued", "Running"):
            task.phase = "Failed"
            task.completed_at = now_iso()
            task.note = error
            self.transitions.append(("ended", task))
            running = self.running == task.name
            self._record(task, "error", running)
            if running:
                self.running = None

    def _finish(self, name: str, stop_reason: str, error: str) -> None:
        task = self.get(name)
        if task is None:
            return
        failed = stop_reason == "error" or bool(error)
        task.phase = ("Aborted" if stop_reason == "aborted"
                      else "Failed" if failed else "Succeeded")
        task.completed_at = now_iso()
        if error:
            task.note = error
        self.transitions.append(("ended", task))
        response = self.last_text or (error and f"error: {error}") or ""
        entry: dict[str, Any] = {
            "task": name, "completedAt": task.completed_at, "stopReason": stop_reason,
            "response": response[:RESPONSE_LIMIT], "truncated": len(response) > RESPONSE_LIMIT,
            "usage": self.task_usage.status(),
        }
        self.history = trim_history([*self.history, entry], self.history_limit)
        self._record(task, stop_reason, True)
        self.running = None
        self.output = ""
        self.last_text = ""
        self.touch()

    def _record(self, task: LedgerTask, stop_reason: str, ran: bool) -> None:
        """The ended task's record, to be written (`ran`: it was the running task, whose
        transcript, usage and start time these are)."""
        self.finished.append(FinishedTask(
            task=task.name, mode=task.mode, message=task.message, phase=task.phase,
            sent_at=task.sent_at, started_at=self.started_at if ran else None,
            completed_at=task.completed_at, stop_reason=stop_reason, note=task.note,
            usage=(self.task_usage if ran else Usage()).status(),
            transcript=self.transcript if ran else Transcript()))
        if ran:
            self.transcript = Transcript()

    def touch(self) -> None:
        self.last_activity = now_iso()

    def drain(self) -> list[tuple[str, LedgerTask]]:
        """The task transitions since the last call ("started" or "ended", the task)."""
        drained, self.transitions = self.transitions, []
        return drained

    # -- to the object --------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "tasks": [t.status() for t in (*self.retired, *self.tasks)],
            "history": self.history,
            "taskCount": self.task_count,
            "usage": self.usage.status(),
            "currentTask": None,
        }
        if self.running:
            task = self.get(self.running)
            current: dict[str, Any] = {"name": self.running,
                                       "mode": task.mode if task else "prompt"}
            if self.started_at:
                current["startedAt"] = self.started_at
            if self.event_offset is not None:
                current["eventOffset"] = self.event_offset
            if self.output:
                current["output"] = self.output
            status["currentTask"] = current
        if self.last_activity:
            status["lastActivityTime"] = self.last_activity
        return status


def trim_history(history: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The newest `limit` entries that fit HISTORY_BUDGET bytes together, and always the
    newest one (RESPONSE_LIMIT characters of it may take more in the worst case, which
    the status writer trims, see trimming.py)."""
    kept = history[-limit:] if limit > 0 else []
    sizes = [stored_bytes(entry) + 1 for entry in kept]    # each with its comma
    total, first = sum(sizes) + 1, 0
    while len(kept) - first > 1 and total > HISTORY_BUDGET:
        total -= sizes[first]
        first += 1
    return kept[first:]


def age_seconds(timestamp: str | None) -> float:
    if not timestamp:
        return float("inf")
    moment = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return (datetime.datetime.now(datetime.UTC) - moment).total_seconds()
