"""One condition vocabulary: conditions are made only from the catalogue
(api/conditions.py), the lieutenant's phases use it as documented, and one helper
finds a condition on an object."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from reef_operator.api import KINDS
from reef_operator.api.conditions import BY_KIND, LIEUTENANT, VMNODE, UnknownCondition
from reef_operator.kube.conditions import Condition, find_condition, summary
from reef_operator.lieutenants import phases


@pytest.mark.parametrize(("kind", "type_", "status", "reason"), [
    ("Lieutenant", "Ready", True, "SessionReady"),
    ("Lieutenant", "Ready", True, "Stopped"),
    ("Lieutenant", "Working", False, "Stopped"),
    ("Lieutenant", "Working", False, "MissingInput"),      # any Stalled reason
    ("Lieutenant", "Paused", True, "Paused"),
    ("VMNode", "Alive", False, "HeartbeatStale"),
    ("VMNode", "Ready", False, "DeletionBlocked"),
    ("BootProfile", "Valid", False, "Invalid"),
])
def test_documented_conditions_can_be_made(kind: str, type_: str, status: bool,
                                           reason: str) -> None:
    assert Condition(kind, type_, status, reason).reason == reason


@pytest.mark.parametrize(("kind", "type_", "status", "reason"), [
    ("Lieutenant", "Ready", True, "Whatever"),             # no such reason
    ("Lieutenant", "Ready", False, "SessionReady"),         # not with that status
    ("Lieutenant", "Booted", True, "BootScriptSucceeded"),  # a VMNode type
    ("Lieutenant", "Paused", True, "Running"),
    ("Lieutenant", "Working", True, "MissingInput"),
    ("VMNode", "Reconciling", False, "DeletionBlocked"),   # the row leaves Reconciling
    ("BootProfile", "Reconciling", False, "Validated"),    # BootProfile has none
    ("Pod", "Ready", True, "Running"),                      # no catalogue at all
])
def test_undocumented_conditions_cannot_be_made(kind: str, type_: str, status: bool,
                                                reason: str) -> None:
    with pytest.raises(UnknownCondition):
        Condition(kind, type_, status, reason)


def test_a_summary_writes_the_kinds_summary_types_with_one_reason() -> None:
    written = summary("Lieutenant", "AgentUnreachable", "no answer", stalled=True)
    assert [(c.type, c.status, c.reason, c.message) for c in written] == [
        ("Ready", False, "AgentUnreachable", "no answer"),
        ("Reconciling", False, "AgentUnreachable", ""),
        ("Stalled", True, "AgentUnreachable", "no answer"),
        ("Degraded", True, "AgentUnreachable", "no answer")]
    assert [c.type for c in summary("VMNode", "Running", "up", ready=True)] == [
        "Ready", "Reconciling", "Stalled"]
    assert [c.type for c in summary("BootProfile", "Validated", "", ready=True)] == [
        "Ready", "Stalled"]


def test_a_summary_must_be_one_row_of_the_catalogue() -> None:
    # Each flag alone is documented for this reason, the pair is not.
    with pytest.raises(UnknownCondition):
        summary("Lieutenant", "AgentUnreachable", "x", reconciling=True, stalled=True)
    with pytest.raises(UnknownCondition):
        summary("VMNode", "Running", "x")                  # Running is ready


def test_every_vmnode_stall_has_a_lieutenant_reason() -> None:
    """A lieutenant whose VMNode is Stalled says so with the VMNode's reason."""
    for row in VMNODE.summaries:
        if row.stalled:
            assert any(r.stalled for r in LIEUTENANT.rows(row.reason)), row.reason


# Every situation the runner writes, with the phase it writes (None: unchanged).
SITUATIONS: list[tuple[str, Callable[[], tuple[str | None, list[Condition]]]]] = [
    ("paused", phases.paused),
    ("pausing the VM", lambda: (None, phases.pausing_vm())),
    ("waiting for the VM", lambda: phases.waiting_for_vm("api")),
    ("stopped", phases.stopped),
    ("destroying", lambda: phases.destroyed(False, "api")),
    ("destroyed", lambda: phases.destroyed(True, "api")),
    ("failed", lambda: phases.failed("MissingInput", "no Secret")),
    ("node stalled", lambda: phases.failed("HeartbeatStale", "VMNode api: no answer")),
    ("unreachable", lambda: phases.unreachable("no answer", 1)),
    ("unreachable for good", lambda: phases.unreachable(
        "no answer", phases.UNREACHABLE_BEFORE_STALLED)),
    *((f"attached, working={w}, state={s}", lambda w=w, s=s: phases.attached(w, s))
      for w in (False, True) for s in ("Running", "Paused", "Destroyed")),
]


@pytest.mark.parametrize(("situation", "make"), SITUATIONS, ids=[s for s, _ in SITUATIONS])
def test_each_lieutenant_phase_is_a_documented_row(
        situation: str, make: Callable[[], tuple[str | None, list[Condition]]]) -> None:
    phase, conditions = make()
    by_type = {c.type: c for c in conditions}
    assert {"Ready", "Reconciling", "Stalled", "Degraded", "Working"} <= set(by_type)
    ready = by_type["Ready"]
    rows = [row for row in LIEUTENANT.rows(ready.reason)
            if (row.ready, row.reconciling, row.stalled) ==
            (ready.status, by_type["Reconciling"].status, by_type["Stalled"].status)]
    assert rows, (situation, ready)
    if phase is not None:
        assert any(phase in row.phase for row in rows), (situation, phase, rows)
    else:
        assert any(row.phase == "as before" for row in rows), (situation, rows)
    assert by_type["Degraded"].status == by_type["Stalled"].status


def test_working_is_true_only_while_the_agent_works() -> None:
    assert phases.attached(True, "Running")[0] == "Working"
    _, idle = phases.attached(False, "Running")
    assert [(c.status, c.reason) for c in idle if c.type == "Working"] == [(False, "Idle")]
    _, waiting = phases.attached(True, "Paused")
    assert [c.reason for c in waiting if c.type == "Paused"] == ["WaitingForTaskToFinish"]


def test_find_condition_finds_by_type_on_an_object() -> None:
    obj = {"status": {"conditions": [{"type": "Ready", "status": "True"},
                                     {"type": "Stalled", "status": "False"}]}}
    found = find_condition(obj, "Stalled")
    assert found == {"type": "Stalled", "status": "False"}
    found["status"] = "True"                                  # a copy
    assert find_condition(obj, "Stalled")["status"] == "False"
    assert find_condition(obj, "Paused") == {}
    assert find_condition({}, "Ready") == find_condition(None, "Ready") == {}
    assert find_condition({"status": {"conditions": None}}, "Ready") == {}


def test_every_kind_with_conditions_has_a_catalogue() -> None:
    assert set(BY_KIND) == {k.kind for k in KINDS if k.status is not None}
