"""One rig for the benchmarks that time a lieutenant on the Vers simulator: a real
control plane, the simulator (with the platform delays a bench asks for), the scripted
model, the operator as a child process, and a namespace with the model's providers
ConfigMap and a Vers BootProfile. A bench subclasses it and adds what it measures.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client, config

from bench.errors import BenchError
from reef_devkit.controlplane import LocalControlPlane
from reef_devkit.operator_process import OperatorProcess, simulator_env
from reef_devkit.scripted_model.harness import ScriptedModel
from reef_devkit.versim.harness import VersSimulator
from reef_operator.constants import GROUP, VERSION

NAMESPACE = "bench"
PROFILE = "bench-vers"
WAIT_SECONDS = 180            # a step not done in this long fails the run


class SimulatorRig:
    def __init__(self, work: Path, script: str, *, boot_delay: float = 0.0,
                 resume_delay: float = 0.0, metrics: bool = False) -> None:
        self.work = work
        self.plane = LocalControlPlane(work / "cp", log=lambda m: print(m, file=sys.stderr))
        self.plane.up()
        self.versim = VersSimulator(work / "versim", boot_delay=boot_delay,
                                    resume_delay=resume_delay)
        self.model = ScriptedModel(script, work / "model")
        self.operator = OperatorProcess(self.plane.operator_kubeconfig, work / "operator.log",
                                        {**simulator_env(self.versim),
                                         "REEF_LOCAL_ROOT": str(work / "vms")}, metrics=metrics)
        configuration = client.Configuration()
        config.load_kube_config(str(self.plane.kubeconfig), client_configuration=configuration)
        api_client = client.ApiClient(configuration)
        self.custom = client.CustomObjectsApi(api_client)
        core = client.CoreV1Api(api_client)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
        core.create_namespaced_config_map(NAMESPACE, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="models"),
            data={"models.json": self.model.models_json()}))
        self.custom.create_cluster_custom_object(GROUP, VERSION, "bootprofiles", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "BootProfile",
            "metadata": {"name": PROFILE},
            "spec": {"provider": "Vers", "category": "Lieutenant", "agent": {"install": False}}})
        self.operator.start()

    def close(self) -> None:
        self.operator.stop()
        self.model.stop()
        self.versim.stop()
        self.plane.down()

    def create(self, name: str, **spec: Any) -> None:
        """A lieutenant on the bench profile and the scripted model; `spec` adds to it."""
        self.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "lieutenants", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "Lieutenant", "metadata": {"name": name},
            "spec": {"role": "bench", "profileRef": {"name": PROFILE},
                     "model": {"provider": "scripted", "id": "scripted-1"},
                     "providersConfigMapRef": {"name": "models"}, **spec}})

    def get(self, name: str, plural: str = "lieutenants") -> dict[str, Any]:
        found: dict[str, Any] = self.custom.get_namespaced_custom_object(  # type: ignore[assignment]
            GROUP, VERSION, NAMESPACE, plural, name)
        return found

    def status(self, name: str, plural: str = "lieutenants") -> dict[str, Any]:
        return dict(self.get(name, plural).get("status") or {})

    def until(self, check: Callable[[], bool], what: str) -> None:
        """Polls `check` (the bench's clock runs meanwhile: its figures are the times at
        which the checks first pass); a step that never passes fails the run, saying what
        each lieutenant's conditions were and how the operator's log ends."""
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.05)
        found: dict[str, Any] = self.custom.list_namespaced_custom_object(  # type: ignore[assignment]
            GROUP, VERSION, NAMESPACE, "lieutenants")
        seen = {i["metadata"]["name"]: (i.get("status") or {}).get("conditions")
                for i in found["items"]}
        raise BenchError(f"timed out waiting for {what}; the lieutenants' conditions: {seen}; "
                         f"the operator's log ends:\n{self.operator.log_tail(40)}")
