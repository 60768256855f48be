"""Sent tasks are append-only: the pure check behind the admission webhook."""

from __future__ import annotations

from typing import Any

from reef_operator.controllers.admission import sent_task_problems


def _obj(tasks: list[dict[str, Any]], phases: dict[str, str]) -> dict[str, Any]:
    return {"spec": {"tasks": tasks},
            "status": {"tasks": [{"name": n, "phase": p} for n, p in phases.items()]}}


A = {"name": "a", "message": "one"}
B = {"name": "b", "message": "two"}


def test_appending_and_editing_unsent_tasks_is_fine() -> None:
    old = _obj([A, B], {"a": "Succeeded", "b": "Pending"})
    assert sent_task_problems(old, _obj([A, {**B, "message": "changed"}], {})) == []
    assert sent_task_problems(old, _obj([A], {})) == []  # b was never sent
    assert sent_task_problems(old, _obj([A, B, {"name": "c", "message": "x"}], {})) == []


def test_sent_tasks_cannot_be_removed_or_edited() -> None:
    old = _obj([A, B], {"a": "Succeeded", "b": "Running"})
    assert sent_task_problems(old, _obj([B], {})) == [
        "task 'a' was already sent to the agent (Succeeded) and cannot be removed; tasks are "
        "append-only"]
    edited = sent_task_problems(old, _obj([A, {**B, "mode": "steer"}], {}))
    assert edited == ["task 'b' was already sent to the agent (Running); its mode cannot "
                      "change: append a new task instead"]
