"""The runner's side of the holds: the verdict kept between passes, and saying so.

holds.py decides, pure. This room gives it what the operator knows (the ledger's usage
and activity, the status writer's marks, the object, the namespace's ReefPolicy), keeps
the verdict and when it may change, and does what follows from it in memory: the sticky
`expiredAt` mark, the notes on tasks a hold keeps back, one Event (and metric) per hold
the status shows, the `Resumed` Event when an idle pause lifts, the object's deletion
time after it is Destroyed, and the namespace's limits checked before the lieutenant
makes its VMNode (maxLieutenants, allowed model providers).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from reef_operator import metrics
from reef_operator.api import reefpolicy
from reef_operator.kube.conditions import find_condition, now_iso, parse_time
from reef_operator.lieutenants import holds, inputs
from reef_operator.lieutenants.holds import Hold
from reef_operator.lieutenants.ledger import Ledger
from reef_operator.lieutenants.runtime import LieutenantRuntime
from reef_operator.lieutenants.status import StatusWriter

UNTIL_CHANGED = 600.0         # a settled pass waits this long unless a change wakes it
# The holds announced with an Event when the status first shows them, and its type.
ANNOUNCED = {"BudgetExhausted": "Warning", "Expired": "Normal", "IdlePaused": "Normal"}


class Holding:
    def __init__(self, rt: LieutenantRuntime, body: Mapping[str, Any], ledger: Ledger,
                 writer: StatusWriter) -> None:
        self.rt, self.body, self.ledger, self.writer = rt, body, ledger, writer
        meta = body.get("metadata", {})
        self.namespace, self.name = str(meta.get("namespace")), str(meta.get("name"))
        # What the operator holds the lieutenant to, and in how many seconds that verdict
        # may change with nothing written.
        self.hold: Hold | None = None
        self.recheck: float | None = None
        # The hold whose Event was posted (the Ready reason as written, after a restart):
        # each hold is announced once, when the status first shows it.
        ready_reason = find_condition(body, "Ready").get("reason")
        self.announced: str | None = ready_reason if ready_reason in ANNOUNCED else None

    @property
    def spec(self) -> Mapping[str, Any]:
        return self.body.get("spec") or {}

    @property
    def spec_state(self) -> str:
        return str(self.spec.get("state", "Running"))

    def held(self) -> Hold | None:
        """The hold, when it is what drives the lieutenant (the spec asks for less)."""
        if self.hold is None or holds.STRENGTH[self.hold.state] <= \
                holds.STRENGTH.get(self.spec_state, 0):
            return None
        return self.hold

    def desired(self) -> str:
        """The state to drive to: the spec's, or a stronger one the operator holds it to."""
        return holds.desired_state(self.spec_state, self.held())

    def refresh(self) -> None:
        """Decide again, from what memory holds now."""
        ledger = self.ledger
        busy = ledger.running is not None or any(
            t.phase in ("Pending", "Queued", "Running") for t in ledger.tasks)
        # The usage and the marks in memory are newer than the written status: a task
        # that spent the budget holds back the next one before its status is written.
        status = {**(self.body.get("status") or {}), **self.writer.marks,
                  "usage": ledger.usage.status()}
        self.hold, self.recheck = holds.decide(holds.Situation(
            spec=self.spec, status=status, now=datetime.now(UTC),
            busy=busy, last_activity=self.last_activity(),
            policy=self.rt.policy(self.namespace),
            created=parse_time(self.body.get("metadata", {}).get("creationTimestamp"))))
        held = self.held()
        if held is not None and held.reason == "Expired":
            self.writer.marks.setdefault("expiredAt", now_iso())   # final from here on
        # A task waits with a note while a hold keeps it back, or while the spec pauses
        # the lieutenant (a person paused it; only a person resumes it).
        note = holds.waiting_note(held) if held else \
            holds.PAUSED_BY_SPEC_NOTE if self.spec_state == "Paused" else ""
        if ledger.note_waiting(note, holds.is_waiting_note):
            self.writer.dirty = True

    def expiry_unwritten(self) -> bool:
        """Expired in memory, not yet in the written status (write it before releasing)."""
        return bool(self.writer.marks.get("expiredAt")) and \
            not (self.body.get("status") or {}).get("expiredAt")

    def last_activity(self) -> datetime | None:
        """The agent's last activity, or the last attach (a start, a resume, an operator
        restart) or the object's creation if later: the idle clock starts from there."""
        seen = [parse_time(value) for value in (
            self.ledger.last_activity, self.writer.session.get("attachedAt"),
            self.body.get("metadata", {}).get("creationTimestamp"))]
        return max((t for t in seen if t is not None), default=None)

    def until_changed(self) -> float:
        """How long a settled pass waits: until a change wakes it, or a hold may change."""
        return UNTIL_CHANGED if self.recheck is None else \
            max(0.0, min(UNTIL_CHANGED, self.recheck))

    def delete_in(self) -> float | None:
        """Seconds until a Destroyed lieutenant's object is deleted (None: kept)."""
        return holds.delete_in(self.spec, self.rt.policy(self.namespace),
                               parse_time(self.writer.marks.get("destroyedAt")),
                               datetime.now(UTC))

    # -- saying so ------------------------------------------------------------------------
    def announce(self, hold: Hold | None) -> None:
        """The Event (and metric) of a hold the status now shows, once per hold."""
        reason = hold.reason if hold is not None else None
        if reason == self.announced:
            return
        self.announced = reason
        if hold is None or hold.reason not in ANNOUNCED:
            return
        if hold.reason == "BudgetExhausted":
            metrics.budget_exhausted(self.namespace, hold.limit)
        self.rt.post_event(self.body, ANNOUNCED[hold.reason], hold.reason, hold.message)

    def lift_if_running(self, desired: str) -> None:
        """The announced hold no longer holds: the next one is announced again, and a
        lieutenant paused for idleness says why it wakes."""
        if desired != "Running" or self.announced is None:
            return
        lifted, self.announced = self.announced, None
        if lifted != "IdlePaused":
            return
        pending = self.ledger.next_pending()
        why = f"task {pending.name} arrived" if pending is not None else \
            "the idle policy no longer holds it"
        self.rt.post_event(self.body, "Normal", "Resumed",
                           f"{why}: resuming the VM paused for idleness; the conversation "
                           "is kept")

    # -- the namespace's limits -----------------------------------------------------------
    def crowded(self, desired: str) -> str:
        """Why the lieutenant may not make its VMNode yet ("" when it may): the namespace's
        ReefPolicy maxLieutenants, counted among the lieutenants created before it. Admission
        refuses a create over the limit; this catches the ones that raced it (two creates
        in one moment) or came while the webhook was down. One that has its node keeps it.
        A model provider the policy does not allow (any more) is an InputError: Stalled."""
        policy = self.rt.policy(self.namespace)
        if desired == "Destroyed" or (self.namespace, self.name) in self.rt.vmnode_bodies or \
                policy is None:
            return ""
        refused = reefpolicy.model_provider_problem(
            policy, inputs.model(self.spec, self.rt.config)[0])
        if refused:
            raise inputs.ModelProviderNotAllowed(refused)
        if reefpolicy.limits(policy).get("maxLieutenants") is None:
            return ""
        return reefpolicy.lieutenants_problem(
            policy, self.rt.older_lieutenants(self.namespace, self.name))
