"""The split of api/budget.py holds against the real apiserver: a spec.tasks at its share,
written with client-side `kubectl apply` (the last-applied annotation copies it, and
managedFields grow a key per task), plus the largest status the writer sends, stay under
the object's 512 KiB as the apiserver stores them."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from reef_operator.api.budget import (
    FINISHED_WINDOW,
    OBJECT_BUDGET,
    SPEC_TASKS_BUDGET,
    STATUS_BUDGET,
    spec_tasks_bytes,
    stored_bytes,
)
from reef_operator.constants import GROUP, VERSION
from reef_operator.lieutenants.trimming import fit
from tests.conftest import Kube

pytestmark = pytest.mark.controlplane


def _tasks_at_budget(name_width: int, message: str) -> list[dict[str, str]]:
    """As many tasks as fit SPEC_TASKS_BUDGET (as stored, the default mode included)."""
    tasks: list[dict[str, str]] = []
    while len(tasks) < 1000:
        task = {"name": f"t{len(tasks):04d}".ljust(name_width, "x"), "message": message,
                "mode": "prompt"}
        if spec_tasks_bytes({"tasks": [*tasks, task]}) > SPEC_TASKS_BUDGET:
            break
        tasks.append(task)
    return tasks


def _largest_status(tasks: list[dict[str, str]]) -> dict[str, Any]:
    """Every task finished, a full window of pruned ones, a full history of long multi-byte
    answers: fitted to STATUS_BUDGET as the status writer does."""
    window = [{"name": f"gone{i:04d}".ljust(63, "y"), "phase": "Succeeded",
               "note": "é" * 256} for i in range(FINISHED_WINDOW)]
    status = {
        "phase": "Idle",
        "tasks": window + [{"name": t["name"], "phase": "Succeeded"} for t in tasks],
        "history": [{"task": t["name"], "completedAt": "2026-01-01T00:00:00Z",
                     "stopReason": "stop", "response": "語<&>" * 512, "truncated": False}
                    for t in tasks[-100:]],
        "taskCount": len(tasks) + FINISHED_WINDOW,
    }
    fitted, _ = fit(status, STATUS_BUDGET, FINISHED_WINDOW)
    assert STATUS_BUDGET - 12 * 1024 < stored_bytes(fitted) <= STATUS_BUDGET
    return fitted


@pytest.mark.parametrize(("name_width", "message"), [
    (63, "x"),             # the most tasks: managedFields grow most
    (8, '"' * 2000),       # quotes: the last-applied copy escapes each once more
], ids=["many-long-names", "quoted-messages"])
def test_spec_tasks_at_its_share_and_the_largest_status_fit_the_object_budget(
        admin: Kube, namespace: str, name_width: int, message: str) -> None:
    tasks = _tasks_at_budget(name_width, message)
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Lieutenant",
            "metadata": {"name": "full", "namespace": namespace},
            "spec": {"role": "r", "tasks": tasks}}
    admin.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body))
    admin.custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "lieutenants", "full", {"status": _largest_status(tasks)})

    response: Any = admin.custom.get_namespaced_custom_object(
        GROUP, VERSION, namespace, "lieutenants", "full", _preload_content=False)
    raw: bytes = response.data
    stored = yaml.safe_load(raw)
    assert spec_tasks_bytes(stored["spec"]) <= SPEC_TASKS_BUDGET
    assert "kubectl.kubernetes.io/last-applied-configuration" in stored["metadata"]["annotations"]
    print(f"{len(tasks)} tasks: object {len(raw)} bytes; spec.tasks "
          f"{spec_tasks_bytes(stored['spec'])}, status {stored_bytes(stored['status'])}, "
          f"metadata {stored_bytes(stored['metadata'])}")
    assert len(raw) < OBJECT_BUDGET
