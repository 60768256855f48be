"""Fair sharing between namespaces: one namespace's burst beside another's lone VMNode.

Runs a real control plane, the Vers simulator (with a boot delay) and the operator with a
platform rate limit low enough that its queue matters. Times the lone VMNode in namespace
`lone` from create to Ready, first alone, then created just after a burst of N VMNodes in
namespace `burst`, and prints both and their ratio (with the burst's own time to Ready,
for scale). Fair sharing keeps the ratio small: the lone node's platform calls take turns
with the burst's instead of queueing behind all of them.

    .venv/bin/python -m bench.fairshare [N]
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from kubernetes import client, config

from bench.errors import BenchError
from reef_devkit.controlplane import LocalControlPlane
from reef_devkit.operator_process import OperatorProcess, simulator_env
from reef_devkit.versim.harness import VersSimulator
from reef_operator.constants import GROUP, VERSION
from reef_operator.kube.conditions import find_condition

BURST = 50
BOOT_DELAY = 1.0  # seconds the simulator takes to boot a VM
PLATFORM_RATE = 5  # platform calls per second, all namespaces together
PLATFORM_BURST = 5


def main() -> int:
    burst = int(sys.argv[1]) if len(sys.argv) > 1 else BURST
    try:
        measure(burst)
    except BenchError as error:
        print(f"bench.fairshare: {error}", file=sys.stderr)
        return 1
    return 0


def wait(check: Callable[[], bool], what: str, within: float = 600) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise BenchError(f"timed out: {what}")


def measure(burst: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="reef-bench-fairshare-"))
    plane = LocalControlPlane(work / "cp", log=lambda m: print(m, file=sys.stderr))
    plane.up()
    sim = VersSimulator(work / "sim", boot_delay=BOOT_DELAY)
    operator = OperatorProcess(plane.operator_kubeconfig, work / "operator.log", {
        **simulator_env(sim), "REEF_DEFAULT_PROFILE": "bench",
        "REEF_PLATFORM_RATE": str(PLATFORM_RATE), "REEF_PLATFORM_BURST": str(PLATFORM_BURST)})
    try:
        configuration = client.Configuration()
        config.load_kube_config(str(plane.kubeconfig), client_configuration=configuration)
        api = client.CustomObjectsApi(client.ApiClient(configuration))
        core = client.CoreV1Api(client.ApiClient(configuration))
        for namespace in ("lone", "burst"):
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
                name=namespace)))
        api.create_cluster_custom_object(GROUP, VERSION, "bootprofiles", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "BootProfile",
            "metadata": {"name": "bench"}, "spec": {"provider": "Vers",
                                                    "agent": {"install": False}}})
        operator.start()

        def create(namespace: str, name: str) -> None:
            api.create_namespaced_custom_object(GROUP, VERSION, namespace, "vmnodes", {
                "apiVersion": f"{GROUP}/{VERSION}", "kind": "VMNode",
                "metadata": {"name": name}, "spec": {"profileRef": {"name": "bench"}}})

        def ready(namespace: str) -> int:
            listed = cast(dict[str, Any], api.list_namespaced_custom_object(
                GROUP, VERSION, namespace, "vmnodes"))
            items: list[dict[str, Any]] = listed["items"]
            return sum(find_condition(item, "Ready").get("status") == "True" for item in items)

        def lone_to_ready(name: str) -> float:
            before = ready("lone")
            started = time.monotonic()
            create("lone", name)
            wait(lambda: ready("lone") > before, f"VMNode lone/{name} Ready")
            return time.monotonic() - started

        alone = lone_to_ready("alone")

        started = time.monotonic()
        for i in range(burst):
            create("burst", f"node-{i}")
        beside = lone_to_ready("beside")
        burst_ready_then = ready("burst")
        wait(lambda: ready("burst") == burst, f"{burst} VMNodes in namespace burst Ready")
        burst_all = time.monotonic() - started

        print(f"platform rate {PLATFORM_RATE}/s (burst {PLATFORM_BURST}), "
              f"simulator boot delay {BOOT_DELAY:.1f}s, burst of {burst} VMNodes")
        print(f"{'lone VMNode to Ready, alone':44} {alone:7.2f}s")
        print(f"{'lone VMNode to Ready, beside the burst':44} {beside:7.2f}s")
        print(f"{'ratio (beside / alone)':44} {beside / alone:7.2f}")
        print(f"{'burst VMNodes Ready when the lone one was':44} {burst_ready_then:7d}")
        print(f"{'whole burst to Ready':44} {burst_all:7.2f}s")
    finally:
        operator.stop()
        sim.stop()
        plane.down()


if __name__ == "__main__":
    sys.exit(main())
