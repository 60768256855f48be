"""What the admission webhook refuses of a lieutenant's tasks: the pure checks behind it."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import kopf
import pytest
from kubernetes.client.exceptions import ApiException

from reef_operator.api.budget import SPEC_TASKS_BUDGET
from reef_operator.constants import LABEL_LIEUTENANT, LABEL_TASK
from reef_operator.controllers import admission, runtime
from reef_operator.controllers.admission import (
    budget_problems,
    credentials_ref_to_check,
    lieutenant_tasks_are_kept,
    names_to_look_up,
    record_outcome,
    task_problems,
)


def _obj(tasks: list[dict[str, Any]], phases: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": "api"}, "spec": {"tasks": tasks},
            "status": {"tasks": [{"name": n, "phase": p} for n, p in phases.items()]}}


A = {"name": "a", "message": "one"}
B = {"name": "b", "message": "two"}
C = {"name": "c", "message": "three"}


def test_appending_and_editing_unsent_tasks_is_fine() -> None:
    old = _obj([A, B], {"a": "Succeeded", "b": "Pending"})
    assert task_problems(old, _obj([A, {**B, "message": "changed"}], {})) == []
    assert task_problems(old, _obj([A, B, C], {})) == []


def test_finished_tasks_can_be_removed() -> None:
    old = _obj([A, B, C], {"a": "Succeeded", "b": "Failed", "c": "Aborted"})
    assert task_problems(old, _obj([], {})) == []


def test_unfinished_tasks_cannot_be_removed() -> None:
    old = _obj([A, B, C], {"a": "Pending", "b": "Queued", "c": "Running"})
    assert task_problems(old, _obj([], {})) == [
        f"task {name!r} is {phase} and cannot be removed from spec.tasks: only a finished "
        "task (Succeeded, Failed or Aborted) can; wait until it ends, then remove it or run "
        "`kubectl reef prune api`"
        for name, phase in (("a", "Pending (not yet sent)"), ("b", "Queued"), ("c", "Running"))]
    # A task the operator has not seen yet is Pending too.
    assert task_problems(_obj([A], {}), _obj([], {}))[0].startswith(
        "task 'a' is Pending (not yet sent) and cannot be removed")


def test_a_task_the_status_no_longer_lists_can_be_removed_when_its_record_says_it_ran() -> None:
    old = _obj([A, B], {"b": "Running"})
    assert task_problems(old, _obj([B], {}), {"a": "Succeeded at 2026-01-01T00:00:00Z"}) == []


def test_sent_tasks_cannot_be_edited() -> None:
    old = _obj([A, B], {"a": "Succeeded", "b": "Running"})
    assert task_problems(old, _obj([{**A, "message": "other"}, {**B, "mode": "steer"}], {})) == [
        "task 'a' was already sent to the agent (Succeeded); its message cannot change: "
        "append a new task instead",
        "task 'b' was already sent to the agent (Running); its mode cannot change: append a "
        "new task instead"]


def test_a_name_that_already_ran_is_never_added_again() -> None:
    old = _obj([B], {"a": "Succeeded", "b": "Succeeded"})
    old["status"]["tasks"][0]["completedAt"] = "2026-12-02T01:00:00Z"
    assert task_problems(old, _obj([B, A], {})) == [
        "task 'a' already ran (Succeeded at 2026-12-02T01:00:00Z); task names are never "
        "reused: append it under a new name"]
    # Known only from its TaskRecord (the status keeps a window of finished tasks).
    assert task_problems(_obj([B], {"b": "Running"}), _obj([B, C], {}),
                         {"c": "Failed at 2026-12-01T00:00:00Z"}) == [
        "task 'c' already ran (Failed at 2026-12-01T00:00:00Z); task names are never reused: "
        "append it under a new name"]


def test_the_history_remembers_tasks_gone_from_the_status() -> None:
    old = _obj([B], {"b": "Running"})
    old["status"]["history"] = [
        {"task": "a", "stopReason": "stop", "completedAt": "2026-12-02T01:00:00Z"},
        {"task": "x", "stopReason": "error", "completedAt": "2026-12-02T01:05:00Z"}]
    assert task_problems(old, _obj([B, A, {"name": "x", "message": "again"}], {})) == [
        "task 'a' already ran (Succeeded at 2026-12-02T01:00:00Z); task names are never "
        "reused: append it under a new name",
        "task 'x' already ran (Failed at 2026-12-02T01:05:00Z); task names are never reused: "
        "append it under a new name"]
    # status.tasks says how it ended; the history when, if the status entry does not.
    old["status"]["tasks"].append({"name": "a", "phase": "Aborted"})
    assert task_problems(old, _obj([B, A], {}))[0].startswith(
        "task 'a' already ran (Aborted at 2026-12-02T01:00:00Z)")
    old["status"]["tasks"].pop()
    # A task still in the spec whose status entry is gone, but answered, keeps its message.
    old["spec"]["tasks"] = [A, B]
    assert task_problems(old, _obj([{**A, "message": "other"}, B], {})) == [
        "task 'a' was already sent to the agent (Succeeded at 2026-12-02T01:00:00Z); its "
        "message cannot change: append a new task instead"]
    # ... and can go.
    assert task_problems(old, _obj([B], {})) == []
    assert names_to_look_up(old, _obj([B, A], {})) == []


def test_records_are_asked_only_about_what_the_object_cannot_tell() -> None:
    old = _obj([A, B, C], {"a": "Succeeded", "b": "Running"})
    new = _obj([B, {"name": "d", "message": "x"}, {"name": "a2", "message": "y"}], {})
    assert names_to_look_up(old, new) == ["d", "a2", "c"]
    assert names_to_look_up(old, _obj([A, B, C], {})) == []
    # An edit of a task the status does not list: was it sent long ago?
    assert names_to_look_up(old, _obj([A, B, {**C, "mode": "steer"}], {})) == ["c"]
    assert names_to_look_up(old, _obj([{**A, "mode": "steer"}, B, C], {})) == []
    assert names_to_look_up({}, new) == []          # CREATE: no past to ask about


def _tasks_of(size: int, count: int) -> dict[str, Any]:
    return _obj([{"name": f"t{i}", "message": "x" * size} for i in range(count)], {})


def test_a_task_list_over_its_byte_budget_is_refused_unless_it_shrinks() -> None:
    under, over = _tasks_of(30000, 3), _tasks_of(30000, 4)
    assert budget_problems({}, under) == budget_problems(under, under) == []
    problems = budget_problems(under, over)
    assert problems == [f"spec.tasks would be 120109 bytes, over its budget of "
                        f"{SPEC_TASKS_BUDGET} bytes: prune finished tasks first (`kubectl "
                        "reef prune api`, or delete them from Git), then append"]
    assert budget_problems({}, over) == problems                      # CREATE
    # An object already over (an older operator let it) may still shrink or be edited.
    assert budget_problems(_tasks_of(30000, 5), over) == []
    assert budget_problems(over, over) == []


def test_a_records_outcome_names_its_phase_and_time() -> None:
    assert record_outcome({"spec": {"phase": "Aborted", "completedAt": "2026-12-02T01:00:00Z"}}
                          ) == "Aborted at 2026-12-02T01:00:00Z"
    assert record_outcome({"spec": {"phase": "Failed"}}) == "Failed"


def _lieutenant(secret: str | None) -> dict[str, Any]:
    return {"spec": {"credentialsSecretRef": {"name": secret}} if secret else {}}


def test_the_credentials_secret_is_checked_on_create_and_when_another_is_named() -> None:
    assert credentials_ref_to_check({}, _lieutenant("keys")) == "keys"
    assert credentials_ref_to_check(_lieutenant("keys"), _lieutenant("other")) == "other"
    assert credentials_ref_to_check(_lieutenant(None), _lieutenant("keys")) == "keys"


def test_an_unchanged_or_absent_credentials_secret_is_not_looked_up() -> None:
    # An unrelated edit (a deletion's metadata) is never refused for a label removed later.
    assert credentials_ref_to_check(_lieutenant("keys"), _lieutenant("keys")) is None
    assert credentials_ref_to_check({}, _lieutenant(None)) is None


class _Records:
    """The operator's client as the webhook uses it: the TaskRecords of some tasks."""

    def __init__(self, records: list[dict[str, Any]], error: Exception | None = None) -> None:
        self.records, self.error = records, error
        self.asked: list[tuple[str, str, list[str]]] = []

    async def list_task_records(self, namespace: str, lieutenant: str,
                                tasks: list[str]) -> list[dict[str, Any]]:
        self.asked.append((namespace, lieutenant, tasks))
        if self.error is not None:
            raise self.error
        return self.records


def _with_records(monkeypatch: pytest.MonkeyPatch, records: _Records) -> None:
    monkeypatch.setattr(runtime, "current", lambda: SimpleNamespace(kube=records))


def _named(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "metadata": {"name": "api", "namespace": "team"}}


async def test_a_name_known_only_from_its_task_record_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    record = {"metadata": {"labels": {LABEL_LIEUTENANT: "api", LABEL_TASK: "a"}},
              "spec": {"phase": "Succeeded", "completedAt": "2026-12-02T01:00:00Z"}}
    records = _Records([record])
    _with_records(monkeypatch, records)
    old, new = _named(_obj([B], {"b": "Running"})), _named(_obj([B, A, C], {}))
    with pytest.raises(kopf.AdmissionError) as refused:
        await lieutenant_tasks_are_kept(kopf.Body(cast(Any, new)), old=old, new=new)
    assert str(refused.value) == (
        "task 'a' already ran (Succeeded at 2026-12-02T01:00:00Z); task names are never "
        "reused: append it under a new name")
    assert records.asked == [("team", "api", ["a", "c"])]


async def test_a_failed_or_slow_record_lookup_lets_the_update_through(
        monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = _named(_obj([B], {"b": "Running"})), _named(_obj([B, A], {}))
    not_installed = _Records([], ApiException(status=404, reason="Not Found"))
    _with_records(monkeypatch, not_installed)
    await lieutenant_tasks_are_kept(kopf.Body(cast(Any, new)), old=old, new=new)
    assert not_installed.asked

    class Hung(_Records):
        async def list_task_records(self, namespace: str, lieutenant: str,
                                    tasks: list[str]) -> list[dict[str, Any]]:
            await asyncio.Event().wait()
            return []

    monkeypatch.setattr(admission, "LOOKUP_BUDGET", 0.01)
    _with_records(monkeypatch, Hung([]))
    await lieutenant_tasks_are_kept(kopf.Body(cast(Any, new)), old=old, new=new)
