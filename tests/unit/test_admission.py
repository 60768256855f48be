"""Sent tasks are append-only: the pure check behind the admission webhook."""

from __future__ import annotations

from typing import Any

from reef_operator.controllers.admission import credentials_ref_to_check, sent_task_problems


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
