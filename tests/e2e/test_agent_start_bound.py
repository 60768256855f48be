"""REEF_MAX_AGENT_STARTS: lieutenants created together start their agents in turns.

Real apiserver, the operator as its own process with the bound set to 1 and its
metrics on loopback, the real pi on Local VMs, the scripted model.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from reef_devkit.controlplane import LocalControlPlane
from reef_devkit.operator_process import OperatorProcess
from reef_devkit.scripted_model.harness import ScriptedModel
from reef_operator.constants import GROUP, VERSION
from tests.conftest import Kube
from tests.e2e.test_observability import sample, scrape

pytestmark = pytest.mark.controlplane

SCRIPT = """
tasks: []
"""
NAMES = ("one", "two", "three")


@pytest.fixture(scope="module")
def operator(control_plane: LocalControlPlane, local_root: Path,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    process = OperatorProcess(control_plane.operator_kubeconfig,
                              tmp_path_factory.mktemp("operator") / "operator.log",
                              {"REEF_LOCAL_ROOT": str(local_root), "REEF_MAX_AGENT_STARTS": "1"},
                              metrics=True)
    process.start()
    yield process
    process.stop()


def test_lieutenants_created_together_start_their_agents_one_at_a_time(
        admin: Kube, namespace: str, operator: OperatorProcess, model: ScriptedModel) -> None:
    admin.core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="scripted-models"),
        data={"models.json": model.models_json()}))
    bodies = [{"apiVersion": f"{GROUP}/{VERSION}", "kind": "Lieutenant",
               "metadata": {"name": name},
               "spec": {"role": "Wait for work", "profileRef": {"name": "local"},
                        "model": {"provider": "scripted", "id": "scripted-1"},
                        "providersConfigMapRef": {"name": "scripted-models"}}}
              for name in NAMES]
    admin.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump_all(bodies))

    most_starting = most_waiting = 0.0
    deadline = time.monotonic() + 180
    while True:
        samples = scrape(operator)
        most_starting = max(most_starting, sample(samples, "reef_agent_starts", state="starting"))
        most_waiting = max(most_waiting, sample(samples, "reef_agent_starts", state="waiting"))
        phases = [(admin.get("lieutenants", name, namespace).get("status") or {}).get("phase")
                  for name in NAMES]
        if phases == ["Idle"] * len(NAMES):
            break
        assert time.monotonic() < deadline, f"not all Idle: {phases}\n{operator.log_tail(60)}"
        time.sleep(0.1)

    assert most_starting == 1, "more than one agent started at once"
    assert most_waiting >= 1, "nobody waited for a turn"
    settled = scrape(operator)
    assert sample(settled, "reef_agent_starts", state="starting") == 0
    assert sample(settled, "reef_agent_starts", state="waiting") == 0
