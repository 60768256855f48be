"""The idle rule of lieutenants/holds.py: when a lieutenant without work is paused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from reef_operator.lieutenants import holds
from reef_operator.lieutenants.holds import Situation

NOW = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)


def situation(spec: dict[str, Any], idle_for: float | None, busy: bool = False,
              policy: dict[str, Any] | None = None) -> Situation:
    return Situation(spec=spec, status={}, now=NOW, busy=busy, policy=policy,
                     last_activity=None if idle_for is None else
                     NOW - timedelta(seconds=idle_for))


PAUSE_20S = {"idlePolicy": {"pauseAfter": "20s"}}


def test_no_idle_policy_never_holds_nor_rechecks() -> None:
    assert holds.idle(situation({}, idle_for=10 ** 6)) == (None, None)


def test_before_pause_after_the_recheck_is_the_time_left() -> None:
    assert holds.idle(situation(PAUSE_20S, idle_for=5)) == (None, 15)


def test_at_pause_after_the_lieutenant_is_held_paused_with_the_duration_named() -> None:
    hold, recheck = holds.idle(situation(PAUSE_20S, idle_for=20))
    assert hold is not None and recheck is None
    assert (hold.state, hold.reason) == ("Paused", "IdlePaused")
    assert "20s" in hold.message and "pauseAfter" in hold.message
    assert holds.idle(situation(PAUSE_20S, idle_for=19.5))[0] is None


def test_work_wins_over_idleness() -> None:
    assert holds.idle(situation(PAUSE_20S, idle_for=3600, busy=True)) == (None, None)


def test_the_namespace_policy_default_applies_when_the_spec_has_none() -> None:
    policy = {"spec": {"defaults": {"idlePolicy": {"pauseAfter": "15m"}}}}
    assert holds.idle(situation({}, idle_for=60, policy=policy)) == (None, 840)
    hold, _ = holds.idle(situation({}, idle_for=900, policy=policy))
    assert hold is not None and "15m" in hold.message


def test_the_spec_overrides_the_policy_default() -> None:
    policy = {"spec": {"defaults": {"idlePolicy": {"pauseAfter": "1m"}}}}
    assert holds.idle(situation({"idlePolicy": {"pauseAfter": "1h"}}, idle_for=120,
                                policy=policy)) == (None, 3480)
    # An idlePolicy of its own without pauseAfter turns the default off.
    assert holds.idle(situation({"idlePolicy": {"destroyAfter": "7d"}}, idle_for=120,
                                policy=policy)) == (None, None)


def test_decide_returns_the_idle_hold_and_desired_state_pauses_a_running_spec() -> None:
    hold, _ = holds.decide(situation({**PAUSE_20S, "state": "Running"}, idle_for=30))
    assert hold is not None
    assert holds.desired_state("Running", hold) == "Paused"
    assert holds.desired_state("Destroyed", hold) == "Destroyed"


def test_the_note_of_a_pause_by_the_spec_is_a_waiting_note_lifted_with_the_pause() -> None:
    assert holds.is_waiting_note(holds.PAUSED_BY_SPEC_NOTE)
    assert "spec.state Running" in holds.PAUSED_BY_SPEC_NOTE
    assert holds.waiting_note(holds.Hold("Paused", "IdlePaused", "idle")) == ""
