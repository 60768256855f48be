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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

STRENGTH = {"Running": 0, "Paused": 1, "Destroyed": 2}


@dataclass(frozen=True)
class Hold:
    state: str      # "Paused" or "Destroyed"
    reason: str     # the catalogue's summary reason: IdlePaused, BudgetExhausted, Expired
    message: str


@dataclass(frozen=True)
class Situation:
    """What a decision reads; every field is something the operator already holds."""

    spec: Mapping[str, Any]
    status: Mapping[str, Any]                 # the lieutenant's status as last written
    now: datetime
    busy: bool = False                        # a task running, queued or waiting to be sent
    last_activity: datetime | None = None     # the agent's, or the last attach or resume
    policy: Mapping[str, Any] | None = None   # the namespace's ReefPolicy, if any


Verdict = tuple[Hold | None, float | None]    # the hold, seconds until it may change


def effective(spec: Mapping[str, Any], policy: Mapping[str, Any] | None) -> dict[str, Any]:
    """idlePolicy, budget and ttlSecondsAfterDestroyed: the spec's, else the policy's."""
    defaults = ((policy or {}).get("spec") or {}).get("defaults") or {}
    return {key: spec[key] if key in spec else defaults.get(key)
            for key in ("idlePolicy", "budget", "ttlSecondsAfterDestroyed")}


def expired(situation: Situation) -> Verdict:
    """idlePolicy.destroyAfter without tasks: Destroyed for good (reason Expired)."""
    return None, None


def budget_spent(situation: Situation) -> Verdict:
    """spec.budget or the namespace's costPerDayUSD reached: Paused (BudgetExhausted)."""
    return None, None


def idle(situation: Situation) -> Verdict:
    """idlePolicy.pauseAfter without work: Paused (IdlePaused) until a task arrives."""
    return None, None


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


def desired_state(spec_state: str, hold: Hold | None) -> str:
    """The state the operator drives to: the spec's, unless a hold asks for more."""
    if hold is not None and STRENGTH[hold.state] > STRENGTH.get(spec_state, 0):
        return hold.state
    return spec_state
