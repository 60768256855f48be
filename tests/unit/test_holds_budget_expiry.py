"""The budget and expiry holds (lieutenants/holds.py): which limit is spent, the figures and
the remedy in the message, the namespace's daily limit, expiry's clock and its finality,
ttlSecondsAfterDestroyed, and the notes on the tasks a hold keeps back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from reef_operator.lieutenants import holds, phases
from reef_operator.lieutenants.holds import Situation
from reef_operator.lieutenants.ledger import Ledger

NOW = datetime(2026, 12, 2, 22, 0, 0, tzinfo=UTC)


def _usage(input_tokens: int = 0, output: int = 0, cache_read: int = 0, cache_write: int = 0,
           cost: float = 0.0) -> dict[str, Any]:
    return {"inputTokens": input_tokens, "outputTokens": output,
            "cacheReadTokens": cache_read, "cacheWriteTokens": cache_write, "cost": cost}


def _policy(defaults: dict[str, Any] | None = None, per_day: float | None = None,
            day: str = "2026-12-02", spent: float = 0.0) -> dict[str, Any]:
    limits = {} if per_day is None else {"costPerDayUSD": per_day}
    return {"metadata": {"name": "team"},
            "spec": {"defaults": defaults or {}, "limits": limits},
            "status": {"used": {"day": day, "costTodayUSD": spent}}}


def _situation(spec: dict[str, Any], usage: dict[str, Any] | None = None,
               policy: dict[str, Any] | None = None, **status: Any) -> Situation:
    return Situation(spec=spec, status={"usage": usage or _usage(), **status}, now=NOW,
                     policy=policy)


# -- budgets ---------------------------------------------------------------------------------
def test_tokens_count_input_output_and_cache_reads_and_writes() -> None:
    spec = {"budget": {"maxTokens": 100}}
    assert holds.budget_spent(_situation(spec, _usage(20, 20, 20, 39))) == (None, None)
    hold, recheck = holds.budget_spent(_situation(spec, _usage(20, 20, 20, 40)))
    assert hold is not None and recheck is None
    assert (hold.state, hold.reason, hold.limit) == ("Paused", "BudgetExhausted", "maxTokens")
    assert "100 tokens used of spec.budget.maxTokens 100" in hold.message
    assert "raise spec.budget.maxTokens (or remove it) to resume" in hold.message


def test_cost_budget_names_the_dollars() -> None:
    spec = {"budget": {"maxCostUSD": 0.5, "maxTokens": 10_000}}
    assert holds.budget_spent(_situation(spec, _usage(10, cost=0.49)))[0] is None
    hold, _ = holds.budget_spent(_situation(spec, _usage(10, cost=0.5)))
    assert hold is not None and hold.limit == "maxCostUSD"
    assert "$0.5000 spent of spec.budget.maxCostUSD $0.5000" in hold.message
    assert "raise spec.budget.maxCostUSD" in hold.message


def test_no_budget_no_hold_and_a_zero_budget_holds_at_once() -> None:
    assert holds.budget_spent(_situation({}, _usage(10**9, cost=10**6))) == (None, None)
    assert holds.budget_spent(_situation({"budget": {}}, _usage(10**9)))[0] is None
    assert holds.budget_spent(_situation({"budget": {"maxTokens": 0}}))[0] is not None


def test_the_policy_default_budget_applies_unless_the_spec_has_its_own() -> None:
    policy = _policy(defaults={"budget": {"maxTokens": 50}})
    hold, _ = holds.budget_spent(_situation({}, _usage(60), policy))
    assert hold is not None
    assert "ReefPolicy team spec.defaults.budget.maxTokens" in hold.message
    assert holds.budget_spent(_situation({"budget": {"maxTokens": 1000}}, _usage(60),
                                         policy))[0] is None


def test_the_namespace_daily_limit_holds_until_the_next_utc_day() -> None:
    policy = _policy(per_day=10.0, spent=10.25)
    hold, recheck = holds.budget_spent(_situation({}, policy=policy))
    assert hold is not None and hold.limit == "costPerDayUSD"
    assert "$10.2500 today (UTC) of ReefPolicy team limits.costPerDayUSD $10.0000" in \
        hold.message
    assert "wait for the next UTC day" in hold.message
    assert recheck == 2 * 3600       # midnight UTC, when the day's figure no longer counts
    below = _policy(per_day=10.0, spent=9.99)
    assert holds.budget_spent(_situation({}, policy=below)) == (None, None)
    yesterday = _policy(per_day=10.0, day="2026-12-01", spent=50.0)
    assert holds.budget_spent(_situation({}, policy=yesterday)) == (None, None)


def test_a_spent_budget_pauses_through_decide_and_desired_state() -> None:
    hold, _ = holds.decide(_situation({"budget": {"maxTokens": 1}}, _usage(5)))
    assert hold is not None and hold.reason == "BudgetExhausted"
    assert holds.desired_state("Running", hold) == "Paused"
    assert holds.desired_state("Destroyed", hold) == "Destroyed"


# -- expiry ----------------------------------------------------------------------------------
def _expiry(busy: bool = False, last: datetime | None = None, created: datetime | None = None,
            **status: Any) -> Situation:
    if last is not None:
        status["lastActivityTime"] = last.isoformat().replace("+00:00", "Z")
    return Situation(spec={"idlePolicy": {"destroyAfter": "15m"}}, status=status, now=NOW,
                     busy=busy, created=created)


def test_expiry_counts_from_the_last_activity_else_the_creation() -> None:
    assert holds.expired(_expiry(last=NOW - timedelta(minutes=10),
                                 created=NOW - timedelta(days=1))) == (None, 300.0)
    assert holds.expired(_expiry(created=NOW - timedelta(minutes=14))) == (None, 60.0)
    hold, recheck = holds.expired(_expiry(last=NOW - timedelta(minutes=15)))
    assert hold is not None and recheck is None
    assert (hold.state, hold.reason) == ("Destroyed", "Expired")
    assert "history and TaskRecords are kept" in hold.message


def test_expiry_waits_while_a_task_is_running_queued_or_pending() -> None:
    assert holds.expired(_expiry(busy=True, last=NOW - timedelta(days=3))) == (None, None)


def test_expiry_is_final_once_written() -> None:
    # A task appended later (busy), or the destroyAfter removed: still expired.
    sticky = Situation(spec={}, status={"expiredAt": "2026-12-02T21:00:00Z"}, now=NOW,
                       busy=True)
    assert holds.expired(sticky) == (holds.EXPIRED, None)
    assert holds.decide(sticky)[0] == holds.EXPIRED
    assert holds.desired_state("Running", holds.EXPIRED) == "Destroyed"


def test_no_destroy_after_no_expiry() -> None:
    situation = Situation(spec={}, status={}, now=NOW, created=NOW - timedelta(days=300))
    assert holds.expired(situation) == (None, None)


def test_the_policy_default_destroy_after_applies() -> None:
    situation = Situation(spec={}, status={}, now=NOW, created=NOW - timedelta(hours=2),
                          policy=_policy(defaults={"idlePolicy": {"destroyAfter": "1h"}}))
    assert holds.expired(situation)[0] == holds.EXPIRED


def test_expiry_is_stronger_than_a_spent_budget() -> None:
    situation = Situation(spec={"budget": {"maxTokens": 1}}, now=NOW,
                          status={"usage": _usage(10), "expiredAt": "2026-12-02T21:00:00Z"})
    assert holds.decide(situation)[0] == holds.EXPIRED


# -- ttlSecondsAfterDestroyed ---------------------------------------------------------------
def test_delete_in_counts_from_destroyed_at() -> None:
    destroyed = NOW - timedelta(seconds=3)
    assert holds.delete_in({"ttlSecondsAfterDestroyed": 5}, None, destroyed, NOW) == 2.0
    assert holds.delete_in({"ttlSecondsAfterDestroyed": 0}, None, destroyed, NOW) == -3.0
    assert holds.delete_in({}, None, destroyed, NOW) is None
    assert holds.delete_in({}, _policy(defaults={"ttlSecondsAfterDestroyed": 60}),
                           destroyed, NOW) == 57.0
    assert holds.delete_in({"ttlSecondsAfterDestroyed": 5}, None, None, NOW) is None


# -- the notes on tasks held back, and the phases -----------------------------------------
def test_waiting_notes_say_why_and_what_to_do() -> None:
    spent, _ = holds.budget_spent(_situation({"budget": {"maxTokens": 1}}, _usage(5)))
    assert spent is not None
    budget_note = holds.waiting_note(spent)
    assert budget_note.startswith("waiting for the budget: ")
    assert "spec.budget.maxTokens" in budget_note and "to resume" in budget_note
    expired_note = holds.waiting_note(holds.EXPIRED)
    assert expired_note.startswith("not delivered: the lieutenant expired")
    assert "new lieutenant" in expired_note
    assert holds.is_waiting_note(budget_note) and holds.is_waiting_note(expired_note)
    assert not holds.is_waiting_note("the agent was working: queued until the current task "
                                     "finishes")


def test_a_hold_notes_pending_tasks_and_its_end_lifts_only_its_own_notes() -> None:
    ledger = Ledger.load({"tasks": [{"name": "a", "message": "A"}, {"name": "b", "message": "B"},
                                    {"name": "c", "message": "C"}]},
                         {"tasks": [{"name": "a", "phase": "Succeeded"},
                                    {"name": "c", "phase": "Pending",
                                     "note": "something else"}]})
    note = holds.waiting_note(holds.EXPIRED)
    assert ledger.note_waiting(note, holds.is_waiting_note)
    assert [t.note for t in ledger.tasks] == ["", note, note]
    assert not ledger.note_waiting(note, holds.is_waiting_note)        # nothing new to write
    ledger.tasks[2].note = "something else"
    assert ledger.note_waiting("", holds.is_waiting_note)
    assert [t.note for t in ledger.tasks] == ["", "", "something else"]


def test_the_phases_of_a_spent_budget() -> None:
    spent, _ = holds.budget_spent(_situation({"budget": {"maxTokens": 1}}, _usage(5)))
    assert spent is not None
    # The last task finishing: Working, Pausing, and the message names the budget.
    phase, conditions = phases.attached(True, "Paused", spent)
    by_type = {c.type: c for c in conditions}
    assert phase == "Working"
    assert by_type["Ready"].reason == "Pausing"
    assert "spec.budget.maxTokens" in by_type["Ready"].message
    assert by_type["Paused"].reason == "WaitingForTaskToFinish"
    assert "spec.budget.maxTokens" in by_type["Paused"].message
    # Then paused: Ready=False BudgetExhausted, Paused=True BudgetExhausted.
    phase, conditions = phases.held(spent)
    by_type = {c.type: c for c in conditions}
    assert phase == "Paused"
    assert (by_type["Ready"].status, by_type["Ready"].reason) == (False, "BudgetExhausted")
    assert (by_type["Paused"].status, by_type["Paused"].reason) == (True, "BudgetExhausted")


def test_the_phase_of_an_expired_lieutenant() -> None:
    phase, conditions = phases.destroyed(True, "api", holds.EXPIRED)
    ready = next(c for c in conditions if c.type == "Ready")
    assert phase == "Destroyed"
    assert (ready.status, ready.reason) == (False, "Expired")
