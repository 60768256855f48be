"""A long session's Lieutenant object stays within its 512 KiB budget, as the apiserver
stores it (metadata, managedFields and kubectl's last-applied annotation included),
while tasks with large multi-byte answers keep coming; the last one is still answered."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from reef_devkit.operator_process import OperatorProcess
from reef_operator.api.budget import OBJECT_BUDGET
from reef_operator.constants import GROUP, VERSION
from tests.conftest import Kube
from tests.e2e.conftest import wait_for

pytestmark = pytest.mark.controlplane

TASKS = 40


def _answer(i: int) -> str:
    # ~16 KB of UTF-8: 3-byte characters, and characters the apiserver stores escaped.
    return f"Answer {i:02d}. " + ("語 <ok> & ü " * 1350)


SCRIPT = yaml.safe_dump({"tasks": [
    {"match": f"Question {i:02d}.", "steps": [{"text": _answer(i), "chunks": 4}]}
    for i in range(TASKS)]})


def _apply(admin: Kube, namespace: str, tasks: list[dict[str, str]]) -> None:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Lieutenant",
            "metadata": {"name": "long"},
            "spec": {"role": "Answer questions at length", "profileRef": {"name": "local"},
                     "model": {"provider": "scripted", "id": "scripted-1"},
                     "providersConfigMapRef": {"name": "scripted-models"},
                     "historyLimit": 100, "tasks": tasks}}
    admin.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(body))


def _stored(admin: Kube, namespace: str) -> tuple[int, dict[str, Any]]:
    """The object's size as the apiserver serves it, and the object."""
    response: Any = admin.custom.get_namespaced_custom_object(
        GROUP, VERSION, namespace, "lieutenants", "long", _preload_content=False)
    raw: bytes = response.data
    return len(raw), json.loads(raw)


def test_the_object_stays_within_its_budget_after_every_task_of_a_long_session(
        admin: Kube, scripted: str, operator: OperatorProcess) -> None:
    namespace = scripted
    tasks: list[dict[str, str]] = []
    sizes: list[int] = []
    answered = 0
    for i in range(TASKS):
        name = f"question-{i:02d}"
        tasks.append({"name": name, "message": f"Question {i:02d}. Tell me everything."})
        _apply(admin, namespace, tasks)   # kubectl apply: the last-applied annotation grows

        def finished(name: str = name) -> dict[str, Any] | None:
            status = _stored(admin, namespace)[1].get("status") or {}
            phases = {t.get("name"): t.get("phase") for t in status.get("tasks") or []}
            return status if phases.get(name) == "Succeeded" and \
                status.get("phase") == "Idle" else None

        status = wait_for(finished, 120, f"{name} answered", operator)
        answered += len(_answer(i).encode())
        size, _ = _stored(admin, namespace)
        sizes.append(size)
        assert size < OBJECT_BUDGET, (i, size, operator.log_tail(40))
        assert status["history"][-1]["task"] == name

    # Unbounded, the answers alone would have passed the budget.
    assert answered > OBJECT_BUDGET
    last = status["history"][-1]
    assert last["response"] == _answer(TASKS - 1).strip() and not last.get("truncated")
    assert [t["phase"] for t in status["tasks"]] == ["Succeeded"] * TASKS
    assert status["taskCount"] == TASKS
    print(f"object size after each task: first {sizes[0]}, max {max(sizes)}, "
          f"last {sizes[-1]} bytes (budget {OBJECT_BUDGET})")
