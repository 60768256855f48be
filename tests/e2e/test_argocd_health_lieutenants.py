"""What Argo CD (our health.lua, run by lua5.1) and kstatus make of a lieutenant through
its life: starting, idle, working, pausing, paused, resumed, destroyed; and held by its
policies: budget spent, expired. Real pi on a Local VM, the scripted model; every version
of the object is recorded by a watch and judged against the CRD reference.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from kubernetes import client

from reef_devkit.operator_process import OperatorProcess
from reef_devkit.scripted_model.harness import ScriptedModel
from reef_operator.constants import GROUP, VERSION
from reef_operator.kube.conditions import find_condition
from tests.conftest import Kube
from tests.e2e.conftest import wait_for
from tests.gitops import Recorder, Verdict, verdict

pytestmark = pytest.mark.controlplane

SCRIPT = """
tasks:
  - match: "Long task"
    steps:
      - text: "Working through the long task, step by step, with care."
        chunks: 30
        delay: 0.2
  - match: "Quick task"
    steps:
      - text: "Done quickly."
"""



def test_lieutenant_health_through_its_life(admin: Kube, namespace: str,
                                           operator: OperatorProcess,
                                           model: ScriptedModel) -> None:
    admin.core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="scripted-models"),
        data={"models.json": model.models_json()}))

    def get() -> dict[str, Any]:
        return admin.get("lieutenants", "api", namespace)

    def until(phase: str, what: str, **conditions: str) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            obj = get()
            status = obj.get("status") or {}
            matches = all(find_condition(obj, t).get("status") == s for t, s in conditions.items())
            return obj if status.get("phase") == phase and matches and \
                status.get("observedGeneration") == obj["metadata"]["generation"] else None
        return dict(wait_for(check, 120, what, operator))

    def spec(**fields: Any) -> None:
        admin.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "lieutenants",
                                                    "api", {"spec": fields})

    def tasks(*names: str) -> list[dict[str, str]]:
        return [{"name": n, "message": f"{'Long' if n.startswith('long') else 'Quick'} task "
                 f"{n}"} for n in names]

    with Recorder(admin.kubeconfig, "lieutenants", namespace) as recorder:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Lieutenant",
                "metadata": {"name": "api"},
                "spec": {"role": "r", "profileRef": {"name": "local"},
                         "model": {"provider": "scripted", "id": "scripted-1"},
                         "providersConfigMapRef": {"name": "scripted-models"},
                         "tasks": tasks("long-1")}}
        admin.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(body))
        working = verdict(until("Working", "working", Working="True"))
        assert working == Verdict("Healthy", "working on task long-1", "Current")
        idle = verdict(until("Idle", "idle after the task", Working="False"))
        assert idle == Verdict("Healthy", "SessionReady: pi answers and takes tasks", "Current")

        spec(tasks=tasks("long-1", "long-2"))
        until("Working", "working on the second task", Working="True")
        spec(state="Paused")
        pausing = verdict(until("Working", "a pause waiting for the task", Reconciling="True"))
        assert pausing == Verdict("Progressing", "Pausing: the pause waits for the current "
                                  "task to finish", "InProgress")
        paused = verdict(until("Paused", "paused", Paused="True"))
        assert paused == Verdict("Suspended", "Paused: frozen, memory kept", "Current")

        spec(state="Running")
        resumed = verdict(until("Idle", "resumed", Ready="True"))
        assert (resumed.health, resumed.kstatus) == ("Healthy", "Current")

        spec(state="Destroyed")
        destroyed = verdict(until("Destroyed", "destroyed", Reconciling="False"))
        assert destroyed == Verdict("Healthy", "Destroyed: the agent was stopped and the VM "
                                    "released; history is kept", "Current")
        journey = [verdict(obj) for obj in recorder.versions("api")]

    assert [h["task"] for h in get()["status"]["history"]] == ["long-1", "long-2"]
    # Before the VM and pi were up: Progressing, and kstatus InProgress.
    starting = [v for v in journey if v.message.startswith("WaitingForVM")]
    assert starting and {(v.health, v.kstatus) for v in starting} == {
        ("Progressing", "InProgress")}
    # The release of the VM was Progressing until the VMNode reported it done.
    assert {(v.health, v.kstatus) for v in journey if v.message.startswith("Destroying")} <= {
        ("Progressing", "InProgress")}
    assert {v.health for v in journey} == {"Progressing", "Healthy", "Suspended"}
    # Streaming output is many writes; none of them changes health.
    streaming = [v for v in journey if v.message == "working on task long-1"]
    assert len(streaming) >= 3


def test_budget_paused_and_expired_lieutenants_read_for_what_they_are(
        admin: Kube, namespace: str, operator: OperatorProcess, model: ScriptedModel) -> None:
    """A spent budget is Suspended (a person raises it), an expiry Healthy (done, like a
    destroy); every version on the way is a documented row with its documented health."""
    admin.core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="scripted-models"),
        data={"models.json": model.models_json()}))

    def until(phase: str, reason: str, what: str) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            obj = admin.get("lieutenants", "capped", namespace)
            status = obj.get("status") or {}
            return obj if status.get("phase") == phase and \
                find_condition(obj, "Ready").get("reason") == reason and \
                status.get("observedGeneration") == obj["metadata"]["generation"] else None
        return dict(wait_for(check, 180, what, operator))

    def spec(**fields: Any) -> None:
        admin.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "lieutenants",
                                                    "capped", {"spec": fields})

    with Recorder(admin.kubeconfig, "lieutenants", namespace) as recorder:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Lieutenant",
                "metadata": {"name": "capped"},
                "spec": {"role": "r", "profileRef": {"name": "local"},
                         "model": {"provider": "scripted", "id": "scripted-1"},
                         "providersConfigMapRef": {"name": "scripted-models"},
                         "budget": {"maxTokens": 1},   # spent by any task
                         "tasks": [{"name": "q-1", "message": "Quick task q-1"},
                                   {"name": "q-2", "message": "Quick task q-2"}]}}
        admin.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(body))
        spent = until("Paused", "BudgetExhausted", "paused for its budget")
        message = find_condition(spent, "Ready")["message"]
        assert verdict(spent) == Verdict("Suspended", f"BudgetExhausted: {message}", "Current")

        spec(budget={"maxTokens": 1_000_000}, idlePolicy={"destroyAfter": "15s"})
        expired = until("Destroyed", "Expired", "expired after its last task")
        message = find_condition(expired, "Ready")["message"]
        assert verdict(expired) == Verdict("Healthy", f"Expired: {message}", "Current")
        journey = [verdict(obj) for obj in recorder.versions("capped")]

    assert [h["task"] for h in expired["status"]["history"]] == ["q-1", "q-2"]
    # Raised, it went back to work (Healthy) before it expired; nothing was Degraded.
    assert {v.health for v in journey} == {"Progressing", "Healthy", "Suspended"}
    assert [v.message.split(":")[0] for v in journey if v.health == "Suspended"] and all(
        v.message.startswith("BudgetExhausted: ") for v in journey if v.health == "Suspended")
