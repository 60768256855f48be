"""`kubectl reef wait --for=…`: the text parsed into a typed target, and what meets it."""

from __future__ import annotations

from typing import Any

import pytest

from reef_operator.cli.plugin.wait_target import ConditionTarget, PhaseTarget, parse


@pytest.mark.parametrize(("text", "target"), [
    ("condition=Ready", ConditionTarget("Ready", "True")),
    ("condition=Ready=", ConditionTarget("Ready", "True")),
    ("condition=Ready=true", ConditionTarget("Ready", "True")),
    ("condition=Paused=false", ConditionTarget("Paused", "False")),
    ("condition=Stalled=FALSE", ConditionTarget("Stalled", "False")),
    ("condition=Ready=unknown", ConditionTarget("Ready", "Unknown")),
    ("phase=Idle", PhaseTarget("Idle")),
    ("phase=Destroyed", PhaseTarget("Destroyed")),
])
def test_good_targets(text: str, target: ConditionTarget | PhaseTarget) -> None:
    assert parse(text) == target


@pytest.mark.parametrize(("text", "says"), [
    ("ready", "expected condition=TYPE[=STATUS] or phase=PHASE"),
    ("Ready=True", "expected condition=TYPE[=STATUS] or phase=PHASE"),
    ("condition", "expected condition=TYPE[=STATUS] or phase=PHASE"),
    ("condition=", "expected condition=TYPE[=STATUS] or phase=PHASE"),
    ("condition==True", "expected condition=TYPE[=STATUS] or phase=PHASE"),
    ("phase=", "expected condition=TYPE[=STATUS] or phase=PHASE"),
    ("phase=idle", "a lieutenant's phase is one of Starting, Idle, Working"),
    ("phase=Running", "a lieutenant's phase is one of"),
    ("condition=Ready=yes", "a condition's status is one of True, False, Unknown"),
])
def test_bad_targets_say_what_is_expected(text: str, says: str) -> None:
    with pytest.raises(ValueError) as error:
        parse(text)
    assert str(error.value).startswith(f"{text!r}: ") and says in str(error.value)


def test_targets_read_as_the_user_wrote_them() -> None:
    assert str(parse("condition=Ready=false")) == "Ready=False"
    assert str(parse("phase=Idle")) == "phase=Idle"


def _obj(generation: int, *conditions: dict[str, Any], observed: int | None = None,
         phase: str = "Idle") -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "conditions": list(conditions)}
    if observed is not None:
        status["observedGeneration"] = observed
    return {"metadata": {"generation": generation}, "status": status}


def test_a_condition_counts_only_for_the_current_generation() -> None:
    ready = ConditionTarget("Ready")
    assert ready.met_by(_obj(2, {"type": "Ready", "status": "True", "observedGeneration": 2}))
    assert not ready.met_by(_obj(3, {"type": "Ready", "status": "True",
                                     "observedGeneration": 2}))
    # Without a per-condition generation the status' own observedGeneration decides.
    assert not ready.met_by(_obj(3, {"type": "Ready", "status": "True"}, observed=2))
    assert ready.met_by(_obj(3, {"type": "Ready", "status": "True"}))


def test_a_condition_status_matches_whatever_its_case() -> None:
    not_ready = _obj(1, {"type": "Ready", "status": "false"})
    assert ConditionTarget("Ready", "False").met_by(not_ready)
    assert not ConditionTarget("Ready").met_by(not_ready)
    assert not ConditionTarget("Ready", "False").met_by(_obj(1))     # absent is not False


def test_a_phase_is_matched_exactly() -> None:
    assert PhaseTarget("Idle").met_by(_obj(1, phase="Idle"))
    assert not PhaseTarget("Idle").met_by(_obj(1, phase="Working"))
    assert not PhaseTarget("Idle").met_by({"metadata": {}})


def test_how_an_object_stands_when_the_wait_gives_up() -> None:
    paused = _obj(1, {"type": "Ready", "status": "False", "reason": "Paused",
                      "message": "the VM is paused"}, phase="Paused")
    assert ConditionTarget("Ready").describe(paused) == "False Paused: the VM is paused"
    assert ConditionTarget("Stalled").describe(paused) == "no Stalled condition; phase Paused"
    assert PhaseTarget("Idle").describe(paused) == "phase Paused"
