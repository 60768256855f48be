"""The lieutenant's phase and conditions for each situation its runner meets.

Pure: each function returns `status.phase` and the conditions to write with it, built
from the Lieutenant catalogue (api/conditions.py), so every reason is a documented one.
`status.phase` is for people and the printer column; the conditions are authoritative.
"""

from __future__ import annotations

from reef_operator.kube.conditions import Condition, summary
from reef_operator.lieutenants.holds import Hold

KIND = "Lieutenant"
UNREACHABLE_BEFORE_STALLED = 5  # failed attempts to reach the agent before Stalled=True

Phase = tuple[str, list[Condition]]


def _condition(type_: str, status: bool, reason: str, message: str = "") -> Condition:
    return Condition(KIND, type_, status, reason, message)


def paused() -> Phase:
    return "Paused", [*summary(KIND, "Paused", "the VM is paused"),
                      _condition("Paused", True, "Paused", "frozen, memory kept"),
                      _condition("Working", False, "Paused")]


def held(hold: Hold) -> Phase:
    """Paused by the operator itself (idleness, a spent budget): memory kept."""
    paused_reason = "Idle" if hold.reason == "IdlePaused" else hold.reason
    return "Paused", [*summary(KIND, hold.reason, hold.message,
                               ready=hold.reason == "IdlePaused"),
                      _condition("Paused", True, paused_reason, hold.message),
                      _condition("Working", False, hold.reason)]


def pausing_vm() -> list[Condition]:
    """The VM is being frozen (the phase stays as it was)."""
    return [*summary(KIND, "Pausing", "freezing the VM", reconciling=True),
            _condition("Working", False, "Pausing")]


def waiting_for_vm(node: str) -> Phase:
    # One message for the whole wait (the VMNode's own status tells its steps): each
    # step repeated here would be one more write per lieutenant.
    return "Starting", [*summary(KIND, "WaitingForVM", f"waiting for VMNode {node} to be Ready",
                                 reconciling=True),
                        _condition("Working", False, "WaitingForVM")]


def waiting_for_checkpoint(source: str) -> Phase:
    """A fork waits for its source to checkpoint its VM (between two of its tasks)."""
    return "Starting", [*summary(KIND, "WaitingForCheckpoint",
                                 f"waiting for lieutenant {source} to checkpoint its VM (taken "
                                 "when its agent is between two tasks)", reconciling=True),
                        _condition("Working", False, "WaitingForCheckpoint")]


def quota_exceeded(message: str) -> Phase:
    """The namespace's ReefPolicy has no room for the lieutenant's VM (or for the
    lieutenant itself) now: it starts when there is."""
    return "Starting", [*summary(KIND, "QuotaExceeded", message, reconciling=True),
                        _condition("Working", False, "QuotaExceeded")]


def stopped() -> Phase:
    """StopWhenDone after the last task: pi is stopped, the VM and the session file kept."""
    return "Stopped", [*summary(KIND, "Stopped", "the agent stopped after its tasks "
                                "(postTaskDisposition StopWhenDone); a new task starts it again",
                                ready=True),
                       _condition("Working", False, "Stopped")]


def destroyed(released: bool, node: str, hold: Hold | None = None) -> Phase:
    """spec.state Destroyed, or expired (`hold`): done once the VMNode has released the VM."""
    done = (summary(KIND, hold.reason, hold.message) if hold is not None else
            summary(KIND, "Destroyed", "the agent was stopped and the VM released; "
                    "history is kept"))
    conditions = (done if released else
                  summary(KIND, "Destroying", f"waiting for VMNode {node} to release the VM",
                          reconciling=True))
    return "Destroyed", [*conditions, _condition("Working", False, "Destroyed"),
                         _condition("Paused", False, "Destroyed")]


def attached(working: bool, state: str, hold: Hold | None = None) -> Phase:
    """pi answers: Idle or Working, with a requested pause or destroy still to do.

    Working on tasks is the lieutenant doing its job, not the operator catching up with
    the spec: Reconciling stays False (tasks can run for hours; sync waves and `kstatus`
    waits should not hang on them). A requested pause is still to be done; one the
    operator holds the lieutenant to (`hold`, e.g. a spent budget) says why.
    """
    conditions = [_condition("Working", working, "Working" if working else "Idle")]
    if state in ("Paused", "Destroyed"):
        destroying = state == "Destroyed"
        message = ("the pause waits for the current task to finish" if working
                   else "destroying the VM" if destroying else "pausing the VM")
        if hold is not None:
            message = f"{message}: {hold.message}"
        conditions += summary(KIND, "Destroying" if destroying else "Pausing", message,
                              ready=not destroying, reconciling=True)
        if working:
            conditions.append(_condition("Paused", False, "WaitingForTaskToFinish", message))
    else:
        conditions += [*summary(KIND, "SessionReady", "pi answers and takes tasks", ready=True),
                       _condition("Paused", False, "Running")]
    return ("Working" if working else "Idle"), conditions


def failed(reason: str, message: str) -> Phase:
    """Something only a person can fix (a missing Secret, a stalled VMNode)."""
    return "Error", [*summary(KIND, reason, message, stalled=True),
                     _condition("Working", False, reason)]


def unreachable(message: str, failures: int) -> Phase:
    """The agent could not be reached; Stalled once it has failed often enough."""
    stalled = failures >= UNREACHABLE_BEFORE_STALLED
    return ("Error" if stalled else "Starting"), [
        *summary(KIND, "AgentUnreachable", message, reconciling=not stalled, stalled=stalled),
        _condition("Working", False, "AgentUnreachable")]
