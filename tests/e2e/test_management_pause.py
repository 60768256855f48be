"""The management pause (`reef.vers.sh/paused`) stops a lieutenant's reconciliation as it
stops a VMNode's: tasks appended meanwhile wait, and are delivered once it goes. Real pi on
Local VMs and the scripted model; a second lieutenant without the annotation shows the
operator was acting meanwhile, so nothing here waits on a clock."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from kubernetes import client

from reef_devkit.operator_process import OperatorProcess
from reef_devkit.scripted_model.harness import ScriptedModel
from reef_operator.constants import ANNOTATION_PAUSED, GROUP, VERSION
from tests.conftest import Kube
from tests.e2e.conftest import wait_for

pytestmark = pytest.mark.controlplane

SCRIPT = """
tasks:
  - match: "Quick task"
    steps:
      - text: "Done quickly."
"""


def test_annotated_lieutenant_holds_its_tasks_until_the_annotation_goes(
        admin: Kube, namespace: str, operator: OperatorProcess, model: ScriptedModel) -> None:
    admin.core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="scripted-models"),
        data={"models.json": model.models_json()}))

    def get(name: str) -> dict[str, Any]:
        return admin.get("lieutenants", name, namespace)

    def patch(name: str, body: dict[str, Any]) -> None:
        admin.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "lieutenants",
                                                    name, body)

    def answered(name: str, task: str) -> bool:
        return task in [h["task"] for h in (get(name).get("status") or {}).get("history", [])]

    def task_phase(name: str, task: str) -> str:
        tasks = (get(name).get("status") or {}).get("tasks") or []
        return next((t.get("phase", "") for t in tasks if t.get("name") == task), "")

    for name in ("held", "free"):
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Lieutenant",
                "metadata": {"name": name},
                "spec": {"role": "r", "profileRef": {"name": "local"},
                         "model": {"provider": "scripted", "id": "scripted-1"},
                         "providersConfigMapRef": {"name": "scripted-models"},
                         "tasks": [{"name": "first", "message": "Quick task one"}]}}
        admin.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(body))
    wait_for(lambda: answered("held", "first") and answered("free", "first"), 120,
             "both answer their first task", operator)

    patch("held", {"metadata": {"annotations": {ANNOTATION_PAUSED: "maintenance"}}})
    second = [{"name": "first", "message": "Quick task one"},
              {"name": "second", "message": "Quick task two"}]
    patch("held", {"spec": {"tasks": second}})
    patch("free", {"spec": {"tasks": second}})
    wait_for(lambda: answered("free", "second"), 120, "the free lieutenant answers", operator)
    # While the free lieutenant took its task through pi and the model, the held one
    # delivered nothing and wrote nothing about the new task.
    assert not answered("held", "second")
    assert task_phase("held", "second") in ("", "Pending")

    patch("held", {"metadata": {"annotations": {ANNOTATION_PAUSED: None}}})
    wait_for(lambda: answered("held", "second"), 120, "the held lieutenant answers", operator)
    assert [h["task"] for h in get("held")["status"]["history"]] == ["first", "second"]
