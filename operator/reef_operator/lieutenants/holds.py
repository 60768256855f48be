"""Why the operator holds back a lieutenant whose spec wants it Running.

Pure: `decide()` reads a Situation (the spec, what the ledger and status say, the
namespace's ReefPolicy, the clock) and says whether the lieutenant is held, in which
state (Paused keeps the agent's memory; Destroyed releases the VM) and for which reason
of the catalogue, and when the verdict may change without any write waking the loop.
`spec.state` is never changed, so GitOps tools stay in sync while the operator holds.

The holds, strongest first:
- Expired: `idlePolicy.destroyAfter` without tasks; Destroyed, for good.
- BudgetExhausted: `spec.budget`, or the namespace's daily cost limit, is spent; Paused
  once the running task has finished (the runner delivers nothing more meanwhile).
- IdlePaused: `idlePolicy.pauseAfter` without work; Paused until a task arrives.
What the lieutenant's spec leaves out, the ReefPolicy's `defaults` fill (`effective`).
A spec that asks for more than a hold (Paused, Destroyed) keeps its own reason.

Expiry is final: once the operator has written `status.expiredAt`, the rule holds the
lieutenant Destroyed whatever comes later (a task, an operator restart, a longer
destroyAfter). Tasks held back carry a note (`waiting_note`) saying why and what to do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from reef_operator.api.common import duration_seconds
from reef_operator.kube.conditions import parse_time

STRENGTH = {"Running": 0, "Paused": 1, "Destroyed": 2}


@dataclass(frozen=True)
class Hold:
    state: str      # "Paused" or "Destroyed"
    reason: str     # the catalogue's summary reason: IdlePaused, BudgetExhausted, Expired
    message: str
    limit: str = ""  # the limit a BudgetExhausted hold is for (maxTokens, maxCostUSD,
    #                  costPerDayUSD): the label of its metric


@dataclass(frozen=True)
class Situation:
    """What a decision reads; every field is something the operator already holds."""

    spec: Mapping[str, Any]
    # The lieutenant's status as the operator knows it: as last written, with what its
    # memory holds newer (the session's usage, expiredAt).
    status: Mapping[str, Any]
    now: datetime
    busy: bool = False                        # a task running, queued or waiting to be sent
    last_activity: datetime | None = None     # the agent's, or the last attach or resume
    policy: Mapping[str, Any] | None = None   # the namespace's ReefPolicy, if any
    created: datetime | None = None           # the object's creationTimestamp


Verdict = tuple[Hold | None, float | None]    # the hold, seconds until it may change


def effective(spec: Mapping[str, Any], policy: Mapping[str, Any] | None) -> dict[str, Any]:
    """idlePolicy, budget and ttlSecondsAfterDestroyed: the spec's, else the policy's."""
    defaults = ((policy or {}).get("spec") or {}).get("defaults") or {}
    return {key: spec[key] if key in spec else defaults.get(key)
            for key in ("idlePolicy", "budget", "ttlSecondsAfterDestroyed")}


def expired(situation: Situation) -> Verdict:
    """idlePolicy.destroyAfter without tasks: Destroyed for good (reason Expired).

    The clock runs from the agent's last activity (tasks are its only activity), else the
    object's creation; a task running, queued or waiting stops it. Expired once, expired
    for good: `status.expiredAt` is the proof."""
    status = situation.status
    if status.get("expiredAt"):
        return EXPIRED, None
    after = (effective(situation.spec, situation.policy)["idlePolicy"] or {}).get("destroyAfter")
    if not after or situation.busy:
        return None, None
    since = [t for t in (parse_time(status.get("lastActivityTime")), situation.created)
             if t is not None]
    if not since:
        return None, None
    left = (max(since) + timedelta(seconds=duration_seconds(after)) - situation.now
            ).total_seconds()
    return (None, left) if left > 0 else (EXPIRED, None)


EXPIRED = Hold("Destroyed", "Expired",
               "expired after idlePolicy.destroyAfter without tasks: the VM is released, "
               "history and TaskRecords are kept; expiry is final, a new lieutenant takes "
               "further tasks")


def budget_spent(situation: Situation) -> Verdict:
    """spec.budget or the namespace's costPerDayUSD reached: Paused (BudgetExhausted).

    The session's usage (status.usage, as pi reports it) against the budget, the spec's or
    else the ReefPolicy's default; then the namespace's spending of the UTC day (the
    ReefPolicy's status.used, written by its controller) against its limits.costPerDayUSD,
    which the next UTC day lifts by itself."""
    budget = effective(situation.spec, situation.policy)["budget"] or {}
    where = "spec.budget" if "budget" in situation.spec else \
        f"ReefPolicy {_policy_name(situation.policy)} spec.defaults.budget"
    usage = situation.status.get("usage") or {}
    tokens = budget_tokens(usage)
    cost = float(usage.get("cost") or 0)
    if budget.get("maxTokens") is not None and tokens >= int(budget["maxTokens"]):
        return _spent("maxTokens", f"{tokens:,} tokens used of {where}.maxTokens "
                      f"{int(budget['maxTokens']):,}",
                      f"raise {where}.maxTokens (or remove it) to resume"), None
    if budget.get("maxCostUSD") is not None and cost >= float(budget["maxCostUSD"]):
        return _spent("maxCostUSD", f"${cost:.4f} spent of {where}.maxCostUSD "
                      f"${float(budget['maxCostUSD']):.4f}",
                      f"raise {where}.maxCostUSD (or remove it) to resume"), None
    policy = situation.policy or {}
    per_day = ((policy.get("spec") or {}).get("limits") or {}).get("costPerDayUSD")
    used = (policy.get("status") or {}).get("used") or {}
    today = situation.now.date()
    if per_day is None or used.get("day") != today.isoformat():
        return None, None
    spent_today = float(used.get("costTodayUSD") or 0)
    if spent_today < float(per_day):
        return None, None
    midnight = datetime.combine(today + timedelta(days=1), datetime.min.time(),
                                situation.now.tzinfo)
    name = _policy_name(policy)
    return _spent("costPerDayUSD", f"the namespace spent ${spent_today:.4f} today (UTC) of "
                  f"ReefPolicy {name} limits.costPerDayUSD ${float(per_day):.4f}",
                  "raise (or remove) the ReefPolicy's limits.costPerDayUSD to resume, or wait "
                  "for the next UTC day"), (midnight - situation.now).total_seconds()


SPENT = "the budget is spent: "
TOKEN_FIELDS = ("inputTokens", "outputTokens", "cacheReadTokens", "cacheWriteTokens")


def budget_tokens(usage: Mapping[str, Any]) -> int:
    """The tokens budget.maxTokens counts in status.usage: input, output, cache reads and
    writes."""
    return sum(int(usage.get(key) or 0) for key in TOKEN_FIELDS)


def _spent(limit: str, figures: str, remedy: str) -> Hold:
    return Hold("Paused", "BudgetExhausted",
                f"{SPENT}{figures}; no further task is delivered and the VM is "
                f"paused with the agent's memory; {remedy}", limit)


def _policy_name(policy: Mapping[str, Any] | None) -> str:
    return str(((policy or {}).get("metadata") or {}).get("name", ""))


def idle(situation: Situation) -> Verdict:
    """idlePolicy.pauseAfter without work: Paused (IdlePaused) until a task arrives.

    Work is a task running, queued or waiting to be sent: while there is any, the rule
    holds nothing and its clock waits for the next activity (no recheck: the task's end
    is a status write that wakes the loop). Idle since `last_activity`, the hold applies
    once pauseAfter has passed; until then the recheck is the time left."""
    pause_after = (effective(situation.spec, situation.policy)["idlePolicy"] or {}) \
        .get("pauseAfter")
    if not pause_after or situation.busy or situation.last_activity is None:
        return None, None
    limit = duration_seconds(str(pause_after))
    left = limit - (situation.now - situation.last_activity).total_seconds()
    if left > 0:
        return None, left
    return Hold("Paused", "IdlePaused",
                f"no task and no agent activity for {pause_after} (idlePolicy.pauseAfter): "
                "the VM is paused with the agent's memory; the next task resumes it"), None


RULES: tuple[Callable[[Situation], Verdict], ...] = (expired, budget_spent, idle)


def decide(situation: Situation) -> Verdict:
    """The strongest hold that applies, and the soonest any rule's verdict may change."""
    recheck: float | None = None
    for rule in RULES:
        hold, when = rule(situation)
        if when is not None:
            recheck = when if recheck is None else min(recheck, when)
        if hold is not None:
            return hold, recheck
    return None, recheck


def delete_in(spec: Mapping[str, Any], policy: Mapping[str, Any] | None,
              destroyed_at: datetime | None, now: datetime) -> float | None:
    """Seconds until a Destroyed lieutenant's object is to be deleted
    (ttlSecondsAfterDestroyed, the spec's or the policy's default), None if it is kept."""
    ttl = effective(spec, policy)["ttlSecondsAfterDestroyed"]
    if ttl is None or destroyed_at is None:
        return None
    return (destroyed_at + timedelta(seconds=int(ttl)) - now).total_seconds()


def waiting_note(hold: Hold) -> str:
    """The note on a task the hold keeps from being delivered ("" when it says none)."""
    if hold.reason == "Expired":
        return (f"not delivered: the lieutenant {hold.message}; append this task to a new "
                "lieutenant (or delete this one and create it again)")
    if hold.reason == "BudgetExhausted":
        return f"waiting for the budget: {hold.message.removeprefix(SPENT)}"
    return ""


# On the pending tasks of a lieutenant its spec pauses: a task resumes a lieutenant the
# operator paused for idleness, never one a person paused.
PAUSED_BY_SPEC_NOTE = ("waits for spec.state Running: the lieutenant is paused by its "
                       "spec, and a task does not resume it (set spec.state: Running, or "
                       "kubectl reef resume)")


def is_waiting_note(note: str) -> bool:
    """Whether a task's note is one `waiting_note` wrote, or the pause by the spec's: each
    goes when its hold (or the pause) is lifted."""
    return note.startswith(("not delivered: the lieutenant expired",
                            "waiting for the budget: ", "waits for spec.state Running"))


def desired_state(spec_state: str, hold: Hold | None) -> str:
    """The state the operator drives to: the spec's, unless a hold asks for more."""
    if hold is not None and STRENGTH[hold.state] > STRENGTH.get(spec_state, 0):
        return hold.state
    return spec_state
