"""pi's event protocol as a lieutenant speaks it: events in; the task ledger, busy/idle
and the commands to send back out. No I/O: the runner feeds events and sends what
each step returns.

One attachment starts with a handshake (`get_state`): its answer says whether pi is
busy, and until it arrives the runner delivers nothing. A run's `agent_end` only
makes the session *settling* (auto-retry and compaction may start more runs, see
agent/events.py); a `get_state` asked at that moment settles it when pi confirms
nothing runs, and the running task ends there. A run whose end was missed (lost to a
re-attach) is un-stuck by the watchdog: after a quiet spell pi is asked where it
stands, and its answer counts only if no task was delivered after the question (pi
answers commands in order).

Compaction (pi summarising older messages when the context nears the model's window)
runs after a run's `agent_end` and keeps the session working until its
`compaction_end`, which the runner reports (a count in status, an Event).

A task is marked sent, and the session working, before its delivery is written: on
a fast model the whole run (agent_end included) can be read before the write
returns, and marking it afterwards would undo its settling for good.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from reef_operator.agent.events import (
    Activity,
    Compaction,
    compaction_of,
    confirms_idle,
    next_activity,
    text_delta,
)
from reef_operator.lieutenants import delivery
from reef_operator.lieutenants.ledger import Ledger, LedgerTask

WATCHDOG_QUIET = 60.0         # seconds without events while working before asking pi
SETTLE_QUIET = 10.0           # seconds settling without an answer before asking again
WAITING_NOTE = "the agent was working: queued until the current task finishes"


@dataclass(frozen=True)
class Reaction:
    """What one event asks of the runner."""

    send: tuple[dict[str, Any], ...] = ()   # commands for pi, in order
    ready: bool = False                      # the handshake was answered: deliveries may start
    settled: bool = False                    # busy/idle is newly known: the phase follows
    flush: bool = False                      # write status now (an outcome a reader waits for)
    answered: Mapping[str, Any] | None = None  # an assistant message (its usage, its model)
    compacted: Compaction | None = None      # pi compacted the conversation (or failed to)


@dataclass(frozen=True)
class Delivery:
    """A task marked sent, whose command the runner is to write into pi's input."""

    task: LedgerTask
    command_id: str
    command: dict[str, Any]
    was_working: bool
    activity_before: Activity


@dataclass(frozen=True)
class Wait:
    """The next task waits for the current one (`noted`: its note was just set)."""

    task: LedgerTask
    noted: bool


def _short_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class SessionProtocol:
    """One lieutenant's side of pi's protocol, for the runner's life (one attachment at
    a time); the ledger it feeds is the runner's."""

    ledger: Ledger
    new_id: Callable[[str], str] = _short_id
    activity: Activity = "idle"             # kept across attachments, settled by the handshake
    ready: bool = False
    handshake_id: str = ""
    pending_settle: set[str] = field(default_factory=set)
    # Watchdog questions by id → deliveries made before them: an answer speaks for those
    # only if no task was delivered after it.
    pokes: dict[str, int] = field(default_factory=dict)
    deliveries: int = 0

    @property
    def working(self) -> bool:
        return self.activity != "idle" or self.ledger.running is not None

    def attach(self) -> dict[str, Any]:
        """A new attachment: its handshake, to send once pi's sent-log is read."""
        self.ready = False
        self.pending_settle.clear()
        self.pokes.clear()
        self.deliveries = 0
        self.handshake_id = self.new_id("hs")
        return {"id": self.handshake_id, "type": "get_state"}

    def feed(self, event: Mapping[str, Any], offset: int | None = None) -> Reaction:
        """One event, read at `offset` in pi's event log (when known)."""
        kind = event.get("type")
        previous = self.activity
        self.activity = next_activity(self.activity, event)
        reaction = Reaction()
        self.ledger.observe(event)
        if kind == "response":
            reaction = self._response(event)
        elif kind == "message_end":
            message = event.get("message") or {}
            if message.get("role") == "user":
                self.ledger.user_message(_text(message), offset)
            elif message.get("role") == "assistant":
                self.ledger.assistant_message(message)
                reaction = Reaction(answered=message)
        elif kind == "message_update":
            delta = text_delta(event)
            if delta:
                self.ledger.text(delta)
        elif kind == "auto_retry_end" and not event.get("success"):
            self.ledger.last_error = str(event.get("finalError") or self.ledger.last_error)
        elif kind == "compaction_end":
            # The run that pushed the context over pi's threshold ended before this (pi
            # compacts after agent_end); its task settles only once pi confirms it is
            # idle, so the summary is in place before the next task is delivered.
            reaction = Reaction(compacted=compaction_of(event))
        if self.activity == "settling" and previous != "settling":
            settle = self.new_id("settle")
            self.pending_settle.add(settle)
            reaction = replace(reaction, send=(*reaction.send,
                                               {"id": settle, "type": "get_state"}))
        return reaction

    def _response(self, event: Mapping[str, Any]) -> Reaction:
        command = str(event.get("id") or "")
        if command == self.handshake_id:
            self.activity = "idle" if confirms_idle(event.get("data") or {}) else "working"
            if self.activity == "idle":
                self.ledger.settle()
            self.ready = True
            # The phase goes with the session's details in one write.
            return Reaction(ready=True, settled=True)
        if command in self.pending_settle or command in self.pokes:
            self.pending_settle.discard(command)
            current = self.pokes.pop(command, self.deliveries) == self.deliveries
            # A settle answers "settling"; a watchdog poke also un-sticks a "working"
            # whose end was missed, provided nothing was delivered after the poke.
            unstick = self.activity == "working" and command.startswith("watch-")
            if (self.activity == "settling" or unstick) and current and \
                    confirms_idle(event.get("data") or {}):
                self.activity = "idle"
                self.ledger.settle()
                # The outcome and the Idle phase in one write: a reader that sees the
                # task finished also sees the lieutenant ready for the next one.
                return Reaction(settled=True, flush=True)
            return Reaction()
        if command.startswith("task-") and not event.get("success", True):
            self.ledger.fail_queued(command, str(event.get("error") or "refused by pi"))
            return Reaction(flush=True)
        return Reaction()

    def next_delivery(self) -> Delivery | Wait | None:
        """The next pending task, marked sent; Wait while it must not interrupt; None
        when nothing is pending."""
        task = self.ledger.next_pending()
        if task is None:
            return None
        working = self.working
        planned = delivery.task_command(task.message, task.mode, working)
        if planned is None:
            noted = not task.note
            if noted:
                task.note = WAITING_NOTE
            return Wait(task, noted)
        command, behaviour, note = planned
        identifier = delivery.command_id(task.name)
        self.ledger.mark_sent(task, behaviour, identifier, note or task.note)
        before = self.activity
        if not working:
            self.activity = "working"
        self.deliveries += 1
        return Delivery(task, identifier, command, working, before)

    def undelivered(self, sent: Delivery) -> None:
        """The write failed: the task is pending again and busy/idle as it was. Whether
        the line reached pi is unknown (the connection may have been cut after the
        command acted): the next attempt asks the VM's sent-log."""
        self.ledger.unsend(sent.task)
        if self.activity == "working" and not sent.was_working:
            self.activity = sent.activity_before

    def already_delivered(self, sent: Delivery) -> None:
        """The VM's sent-log already holds the task's id. After an attempt of ours whose
        outcome was unknown, that attempt went through: the task is on its way.
        Otherwise the name ran long ago, left the window and came back: it is refused,
        never delivered twice."""
        if sent.task.unsure:
            sent.task.unsure = False
            return
        self.ledger.refuse_reused(sent.task)
        if self.activity == "working" and not sent.was_working:
            self.activity = sent.activity_before

    def watchdog(self, quiet: float) -> dict[str, Any] | None:
        """After `quiet` seconds without events: a question for pi, if one is due."""
        if not ((self.activity == "working" and quiet > WATCHDOG_QUIET) or
                (self.activity == "settling" and quiet > SETTLE_QUIET)):
            return None
        poke = self.new_id("watch")
        self.pokes[poke] = self.deliveries
        return {"id": poke, "type": "get_state"}


def _text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    return "".join(str(b.get("text", "")) for b in content or []
                   if isinstance(b, Mapping) and b.get("type") == "text")
