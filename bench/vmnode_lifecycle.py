"""What one VMNode lifecycle costs: Kubernetes writes and Vers platform calls.

Runs a real control plane, the Vers simulator and the operator, then takes one
VMNode through create → Ready → Paused → Running → Destroyed → delete, and
prints the operator's Kubernetes requests (from the apiserver's audit log) and
the platform calls (from the simulator's request log), per phase.

    .venv/bin/python -m bench.vmnode_lifecycle
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from kubernetes import client, config

from bench.audit import audit_counts
from bench.errors import BenchError
from reef_devkit.controlplane import LocalControlPlane
from reef_devkit.operator_process import OperatorProcess, simulator_env
from reef_devkit.versim.harness import VersSimulator
from reef_operator.constants import GROUP, VERSION
from reef_operator.kube.conditions import find_condition


def _patcher(api: Any, state: str) -> Callable[[], object]:
    return lambda: api.patch_namespaced_custom_object(
        GROUP, VERSION, "bench", "vmnodes", "node", {"spec": {"state": state}})


def wait(check: Callable[[], bool], what: str, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise BenchError(f"timed out: {what}")


def main() -> int:
    try:
        measure()
    except BenchError as error:
        print(f"bench.vmnode_lifecycle: {error}", file=sys.stderr)
        return 1
    return 0


def measure() -> None:
    work = Path(tempfile.mkdtemp(prefix="reef-bench-"))
    plane = LocalControlPlane(work / "cp", log=lambda m: print(m, file=sys.stderr))
    plane.up()
    sim = VersSimulator(work / "sim")
    operator = OperatorProcess(plane.operator_kubeconfig, work / "operator.log",
                               {**simulator_env(sim), "REEF_DEFAULT_PROFILE": "bench"})
    try:
        configuration = client.Configuration()
        config.load_kube_config(str(plane.kubeconfig), client_configuration=configuration)
        api = client.CustomObjectsApi(client.ApiClient(configuration))
        client.CoreV1Api(client.ApiClient(configuration)).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name="bench")))
        api.create_cluster_custom_object(GROUP, VERSION, "bootprofiles", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "BootProfile",
            "metadata": {"name": "bench"}, "spec": {"provider": "Vers",
                                                    "agent": {"install": False}}})
        operator.start()
        audit = plane.state_dir / "logs" / "audit.log"
        time.sleep(2)
        _, mark = audit_counts(audit, 0)
        sim.reset_request_counts()

        def get() -> dict[str, Any]:
            return cast(dict[str, Any], api.get_namespaced_custom_object(
                GROUP, VERSION, "bench", "vmnodes", "node"))

        def condition(type_: str, status: str) -> Callable[[], bool]:
            return lambda: find_condition(get(), type_).get("status") == status

        phases: list[tuple[str, Counter[str], dict[str, int], float]] = []

        def phase(name: str, action: Callable[[], object], done: Callable[[], bool]) -> None:
            nonlocal mark
            started = time.monotonic()
            action()
            wait(done, name)
            elapsed = time.monotonic() - started
            time.sleep(1.0)  # let trailing writes land in this phase
            counts, mark = audit_counts(audit, mark)
            platform = sim.request_counts()
            sim.reset_request_counts()
            phases.append((name, counts, platform, elapsed))

        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VMNode",
                "metadata": {"name": "node"}, "spec": {"profileRef": {"name": "bench"}}}
        phase("create → Ready",
              lambda: api.create_namespaced_custom_object(GROUP, VERSION, "bench", "vmnodes",
                                                          body),
              condition("Ready", "True"))
        for state, check in (("Paused", condition("Paused", "True")),
                             ("Running", condition("Ready", "True")),
                             ("Destroyed", lambda: "vmId" not in get().get("status", {}))):
            phase(f"→ {state}", _patcher(api, state), check)

        def gone() -> bool:
            items = api.list_namespaced_custom_object(GROUP, VERSION, "bench", "vmnodes")
            return not items["items"]  # type: ignore[index]
        phase("delete", lambda: api.delete_namespaced_custom_object(
            GROUP, VERSION, "bench", "vmnodes", "node"), gone)

        total_writes = total_platform = 0
        print(f"{'phase':18} {'secs':>6} {'k8s writes':>10} {'k8s reads':>9} {'platform':>8}")
        for name, counts, platform, elapsed in phases:
            writes = sum(v for k, v in counts.items() if k.startswith("write"))
            reads = sum(v for k, v in counts.items() if k.startswith("read"))
            total_writes += writes
            total_platform += sum(platform.values())
            print(f"{name:18} {elapsed:6.2f} {writes:10d} {reads:9d} {sum(platform.values()):8d}")
            for key, value in sorted(counts.items()):
                if key.startswith("write"):
                    print(f"{'':18}   {value:3d} x {key}")
            for key, value in sorted(platform.items()):
                print(f"{'':18}   {value:3d} x {key}")
        print(f"{'total':18} {'':6} {total_writes:10d} {'':9} {total_platform:8d}")
    finally:
        operator.stop()
        sim.stop()
        plane.down()


if __name__ == "__main__":
    sys.exit(main())
