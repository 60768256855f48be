"""Forks and checkpoints, the pure parts: what an annotation asks, where a fork starts,
what its node boots from, and what admission refuses."""

from __future__ import annotations

from typing import Any

from reef_operator.api.lieutenant import MAX_CHECKPOINTS
from reef_operator.lieutenants import checkpoints, forking
from reef_operator.lieutenants.forking import Ask, ForkPoint, Refusal, resolve
from reef_operator.lieutenants.ledger import Ledger
from reef_operator.lieutenants.node import node_spec

COMMIT = "0b4f3c1e-7a61-4d6c-9d0e-3f2b1a9c8d7e"


def _source(*, vm: bool = True, state: str = "Running", taken: list[dict[str, Any]] | None = None,
            annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "src", "annotations": annotations or {}},
            "spec": {"role": "r", "state": state, "profileRef": {"name": "golden"}},
            "status": {"vmId": "vm-1" if vm else None, "checkpoints": taken or []}}


def test_requests_are_read_oldest_first_and_bad_labels_are_refused_with_why() -> None:
    asked, problems = checkpoints.requests({
        "checkpoint.reef.vers.sh/later": "2026-01-01T00:00:02Z",
        "fork.reef.vers.sh/branch": "2026-01-01T00:00:01Z",
        "checkpoint.reef.vers.sh/Bad_Label": "2026-01-01T00:00:00Z",
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
    })
    assert [(r.label, r.fork) for r in asked] == [(None, "branch"), ("later", None)]
    assert len(problems) == 1 and "'Bad_Label' is not a DNS label" in problems[0]


def test_an_entry_records_label_or_fork_and_the_task_before_it() -> None:
    named = checkpoints.Request("checkpoint.reef.vers.sh/a", label="a")
    forked = checkpoints.Request("fork.reef.vers.sh/b", fork="b")
    assert checkpoints.entry(named, COMMIT, "T", "t2") == {
        "commitId": COMMIT, "takenAt": "T", "label": "a", "afterTask": "t2"}
    assert checkpoints.entry(forked, COMMIT, "T", None) == {
        "commitId": COMMIT, "takenAt": "T", "fork": "b"}
    taken = [checkpoints.entry(named, COMMIT, "T", None)]
    assert checkpoints.answered(named, taken) and not checkpoints.answered(forked, taken)
    assert checkpoints.full(taken) == ""
    assert "at most" in checkpoints.full(taken * MAX_CHECKPOINTS)


def test_a_fork_without_a_checkpoint_asks_its_source_once_then_takes_what_it_recorded() -> None:
    fork_from = {"lieutenant": "src"}
    first = resolve("branch", "team", fork_from, _source())
    assert first == Ask("src", "fork.reef.vers.sh/branch", False)
    asked = _source(annotations={"fork.reef.vers.sh/branch": "T"})
    assert resolve("branch", "team", fork_from, asked) == Ask("src", first.key, True)
    taken = _source(taken=[{"fork": "branch", "commitId": COMMIT}])
    assert resolve("branch", "team", fork_from, taken) == ForkPoint("src", COMMIT, None, "golden")


def test_a_fork_from_a_named_checkpoint_needs_no_vm_of_its_source() -> None:
    destroyed = _source(vm=False, state="Destroyed",
                        taken=[{"label": "before-3", "commitId": COMMIT}])
    point = resolve("early", "team", {"lieutenant": "src", "checkpoint": "before-3"}, destroyed)
    assert point == ForkPoint("src", COMMIT, "before-3", "golden")


def test_bad_fork_points_are_refused_with_a_reason_and_what_to_do() -> None:
    missing = resolve("branch", "team", {"lieutenant": "nobody"}, None)
    assert isinstance(missing, Refusal) and missing.reason == "ForkSourceNotFound"
    assert "no lieutenant 'nobody' in namespace 'team'" in missing.message
    itself = resolve("src", "team", {"lieutenant": "src"}, _source())
    assert isinstance(itself, Refusal) and itself.reason == "ForkSourceNotFound"
    early = resolve("branch", "team", {"lieutenant": "src"}, _source(vm=False))
    assert isinstance(early, Refusal) and early.reason == "ForkSourceHasNoVM"
    assert "has no VM yet" in early.message
    gone = resolve("branch", "team", {"lieutenant": "src"}, _source(state="Destroyed"))
    assert isinstance(gone, Refusal) and "is destroyed" in gone.message
    unknown = resolve("branch", "team", {"lieutenant": "src", "checkpoint": "nope"},
                      _source(taken=[{"label": "a", "commitId": COMMIT}]))
    assert isinstance(unknown, Refusal) and unknown.reason == "CheckpointNotFound"
    assert "its checkpoints: a" in unknown.message and "kubectl reef checkpoint" in unknown.message
    lost = resolve("branch", "team", {"lieutenant": "src", "checkpoint": "nope"},
                   _source(vm=False, state="Destroyed"))
    assert isinstance(lost, Refusal) and "it is destroyed" in lost.message


def test_the_fork_point_round_trips_through_status_and_marks_the_history() -> None:
    point = ForkPoint("src", COMMIT, "before-3", "golden")
    status = point.status("2026-01-01T00:00:00Z")
    assert ForkPoint.load({"forkedFrom": status}) == point
    assert ForkPoint.load({}) is None
    marker = forking.marker(point, "2026-01-01T00:00:00Z")
    assert marker["task"] == forking.MARKER_TASK
    assert marker["forkedFrom"] == {"lieutenant": "src", "checkpoint": "before-3",
                                    "commitId": COMMIT}


def test_a_forks_node_boots_from_the_commit_under_its_source_while_that_node_exists() -> None:
    point = ForkPoint("src", COMMIT, None, "golden")
    spec = {"role": "r"}
    assert node_spec(spec, "Running", point, fork_parent=True) == {
        "state": "Running", "category": "Lieutenant", "profileRef": {"name": "golden"},
        "source": {"commitId": COMMIT}, "parentRef": {"name": "src"}}
    alone = node_spec({**spec, "profileRef": {"name": "mine"}}, "Running", point)
    assert alone["profileRef"] == {"name": "mine"} and "parentRef" not in alone


def test_fork_from_cannot_change_or_be_added_later() -> None:
    before = {"spec": {"forkFrom": {"lieutenant": "src"}}}
    assert forking.fork_from_problems({}, before) == []          # a create
    assert forking.fork_from_problems(before, before) == []
    changed = forking.fork_from_problems(before, {"spec": {"forkFrom": {"lieutenant": "x"}}})
    assert "cannot change once set" in changed[0]
    added = forking.fork_from_problems({"spec": {}}, before)
    assert "cannot be added to an existing lieutenant" in added[0]


def test_the_ledger_says_when_a_task_is_in_flight_and_which_finished_last() -> None:
    ledger = Ledger.load({"tasks": [{"name": "t1", "message": "a"}, {"name": "t2",
                                                                      "message": "b"}]},
                         {"tasks": [{"name": "t1", "phase": "Succeeded"},
                                    {"name": "t2", "phase": "Queued"}]})
    assert ledger.in_flight() and ledger.last_finished() == "t1"
    idle = Ledger.load({"tasks": [{"name": "t1", "message": "a"}]},
                       {"tasks": [{"name": "t1", "phase": "Succeeded"}]})
    assert not idle.in_flight() and idle.last_finished() == "t1"


def test_the_nodes_annotation_gains_every_checkpoints_commit_and_loses_none() -> None:
    taken = [{"label": "a", "commitId": "c2"}, {"fork": "b", "commitId": "c1"}]
    assert checkpoints.commits_to_keep(taken, None) == "c1,c2"
    assert checkpoints.commits_to_keep(taken, "c1,c2") is None          # nothing to write
    assert checkpoints.commits_to_keep(taken, "c0") == "c0,c1,c2"       # none dropped
    assert checkpoints.commits_to_keep([], None) is None
    assert checkpoints.kept_commits("c2,,c1,c2") == ["c1", "c2"]
    assert checkpoints.kept_commits(None) == []
