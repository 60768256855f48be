"""Idle pause survives the operator's SIGKILL: killed while it pauses an idle lieutenant,
and while it resumes one for a task (the Vers simulator takes RESUME_DELAY seconds to
resume, so the kill lands inside the platform's resume). Twice each. Afterwards no task
was lost or sent twice (the scripted model saw each exactly once), every task succeeded
in order, and the VM ends where it should: paused by the operator, spec.state Running.

Real apiserver, the operator as its own process, real pi on a Vers simulator VM."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from reef_devkit.controlplane import LocalControlPlane
from reef_devkit.operator_process import OperatorProcess, simulator_env
from reef_devkit.scripted_model.harness import ScriptedModel
from reef_devkit.versim.harness import VersSimulator
from reef_operator.constants import API_VERSION, GROUP, VERSION
from reef_operator.kube.conditions import find_condition
from tests.conftest import Kube
from tests.e2e.conftest import vers_boot_profile, wait_for

pytestmark = pytest.mark.controlplane

PROFILE = "idle-crash-vers"
RESUME_DELAY = 2.0
CYCLES = 2
SCRIPT = """
tasks:
  - match: "Idle crash task"
    steps:
      - text: "Done."
"""


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScriptedModel]:
    with ScriptedModel(SCRIPT, tmp_path_factory.mktemp("model")) as scripted:
        yield scripted


@pytest.fixture(scope="module")
def slow_resume(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VersSimulator]:
    with VersSimulator(tmp_path_factory.mktemp("versim"), resume_delay=RESUME_DELAY) as sim:
        yield sim


@pytest.fixture(scope="module")
def profile(admin: Kube) -> Iterator[str]:
    with vers_boot_profile(admin, PROFILE) as name:
        yield name


def test_sigkills_while_pausing_for_idleness_and_resuming_for_a_task(
        admin: Kube, namespace: str, control_plane: LocalControlPlane, model: ScriptedModel,
        slow_resume: VersSimulator, profile: str, tmp_path: Path) -> None:
    admin.core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="models"), data={"models.json": model.models_json()}))
    operator = OperatorProcess(control_plane.operator_kubeconfig, tmp_path / "operator.log",
                               {**simulator_env(slow_resume),
                                "REEF_LOCAL_ROOT": str(tmp_path / "vms")})
    operator.start()

    def lieutenant() -> dict[str, Any]:
        return admin.get("lieutenants", "api", namespace)

    def node_state() -> str:
        return str(admin.get("vmnodes", "api", namespace)["spec"].get("state"))

    def platform_state() -> str:
        vm_id = (lieutenant().get("status") or {}).get("vmId")
        return next((str(vm["state"]) for vm in slow_resume.vms() if vm["vm_id"] == vm_id), "")

    def idle_paused() -> bool:
        status = lieutenant().get("status") or {}
        return status.get("phase") == "Paused" and platform_state() == "paused" and \
            find_condition({"status": status}, "Paused").get("reason") == "Idle"

    def answered(count: int) -> bool:
        status = lieutenant().get("status") or {}
        return len(status.get("history") or []) == count and status.get("phase") == "Idle"

    try:
        admin.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump({
            "apiVersion": API_VERSION, "kind": "Lieutenant", "metadata": {"name": "api"},
            "spec": {"role": "crash", "profileRef": {"name": profile},
                     "model": {"provider": "scripted", "id": "scripted-1"},
                     "providersConfigMapRef": {"name": "models"},
                     "idlePolicy": {"pauseAfter": "15s"},
                     "tasks": [{"name": "t0", "message": "Idle crash task 0."}]}}))
        wait_for(lambda: answered(1), 150, "the first answer", operator)
        for cycle in range(1, CYCLES + 1):
            # Killed the moment the operator asks the VMNode to pause for idleness.
            wait_for(lambda: node_state() == "Paused", 90, "the idle pause asked", operator,
                   every=0.05)
            operator.kill()
            operator.start()
            wait_for(idle_paused, 90, f"idle-paused after the kill (cycle {cycle})", operator)

            # Killed while the platform resumes the VM for the task appended now.
            tasks = lieutenant()["spec"]["tasks"]
            admin.custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, "lieutenants", "api", {"spec": {"tasks": [
                    *tasks, {"name": f"t{cycle}", "message": f"Idle crash task {cycle}."}]}})
            wait_for(lambda: node_state() == "Running", 30, "the resume asked", operator,
                   every=0.05)
            assert platform_state() == "paused"      # the kill lands before the resume ends
            operator.kill()
            operator.start()
            wait_for(lambda c=cycle: answered(c + 1), 150,  # type: ignore[misc]
                   f"task t{cycle} answered after the kill", operator)

        status = lieutenant()["status"]
        assert [h["task"] for h in status["history"]] == [f"t{n}" for n in range(CYCLES + 1)]
        assert [t["phase"] for t in status["tasks"]] == ["Succeeded"] * (CYCLES + 1)
        # Each task reached pi exactly once: never lost, never delivered twice.
        asked = [r["conversation"][-1]["text"] for r in model.requests() if r["conversation"]]
        for n in range(CYCLES + 1):
            assert asked.count(f"Idle crash task {n}.") == 1, asked
        # And the VM ends where it should: paused again for idleness, the spec untouched.
        wait_for(idle_paused, 90, "idle-paused at the end", operator)
        assert lieutenant()["spec"].get("state", "Running") == "Running"
        assert status["session"].get("restarts", 0) == 0    # pi kept its memory throughout
    finally:
        operator.stop()
