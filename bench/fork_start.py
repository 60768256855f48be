"""What a fork costs: fork-to-Idle, and how long its source is paused for the commit.

Real control plane, the operator, the real pi on Vers simulator VMs, the scripted model
(no model latency). The simulator takes BOOT_DELAY seconds to boot any VM (--boot-delay;
a fork boots a new VM from the commit like any other).
  - fork-to-Idle: from the create of a Lieutenant with spec.forkFrom (a source that has
    answered a task) until the fork's phase is Idle: the source's checkpoint (taken
    between its tasks), the fork's VM from it, pi on the copied session; RUNS forks,
    one at a time (p50, p95);
  - the source's pause: the duration of each commit as the operator timed it (its
    `reef_provider_operation_duration_seconds{operation="snapshot"}`); the simulator
    freezes the VM for the copy, and at most that long (p50, p95).

    .venv/bin/python -m bench.fork_start [--runs N] [--boot-delay SECONDS] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client, config
from prometheus_client.parser import text_string_to_metric_families

from bench.errors import BenchError
from bench.long_session import nearest_rank
from reef_devkit.controlplane import LocalControlPlane
from reef_devkit.operator_process import OperatorProcess, simulator_env
from reef_devkit.scripted_model.harness import ScriptedModel
from reef_devkit.versim.harness import VersSimulator
from reef_operator.constants import GROUP, VERSION

NAMESPACE = "bench"
PROFILE = "bench-vers"
WAIT_SECONDS = 180            # a step not done in this long fails the run
SCRIPT = """
tasks:
  - match: "Task"
    steps:
      - text: "Done with it."
"""
SNAPSHOT = "reef_provider_operation_duration_seconds"


@dataclass
class Figures:
    runs: int
    boot_delay: float
    fork_p50: float = 0.0
    fork_p95: float = 0.0
    pause_p50: float = 0.0
    pause_p95: float = 0.0
    forks: list[float] = field(default_factory=list)
    pauses: list[float] = field(default_factory=list)


class ForkBench:
    def __init__(self, work: Path, boot_delay: float) -> None:
        self.plane = LocalControlPlane(work / "cp", log=lambda m: print(m, file=sys.stderr))
        self.plane.up()
        self.versim = VersSimulator(work / "versim", boot_delay=boot_delay)
        self.model = ScriptedModel(SCRIPT, work / "model")
        self.operator = OperatorProcess(self.plane.operator_kubeconfig, work / "operator.log",
                                        {**simulator_env(self.versim),
                                         "REEF_LOCAL_ROOT": str(work / "vms")}, metrics=True)
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
        self.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "lieutenants", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "Lieutenant", "metadata": {"name": name},
            "spec": {"role": "bench", "profileRef": {"name": PROFILE},
                     "model": {"provider": "scripted", "id": "scripted-1"},
                     "providersConfigMapRef": {"name": "models"}, **spec}})

    def status(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.custom.get_namespaced_custom_object(  # type: ignore[assignment]
            GROUP, VERSION, NAMESPACE, "lieutenants", name)
        return dict(found.get("status") or {})

    def until(self, check: Callable[[], bool], what: str) -> None:
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

    def snapshots(self) -> tuple[float, float]:
        """The operator's snapshot operations so far: (count, seconds in all)."""
        text = httpx.get(self.operator.metrics_url, timeout=10).text
        count = total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.labels.get("operation") != "snapshot":
                    continue
                if sample.name == f"{SNAPSHOT}_count":
                    count += sample.value
                elif sample.name == f"{SNAPSHOT}_sum":
                    total += sample.value
        return count, total

    def measure(self, figures: Figures) -> None:
        self.create("source", tasks=[{"name": "t1", "message": "Task one"}])
        self.until(lambda: self.status("source").get("phase") == "Idle" and bool(
            self.status("source").get("history")), "the source answers its task")
        for n in range(figures.runs):
            before = self.snapshots()
            name = f"fork-{n}"
            started = time.monotonic()
            self.create(name, forkFrom={"lieutenant": "source"})
            self.until(lambda n=name: self.status(n).get("phase") == "Idle",  # type: ignore[misc]
                       f"{name} Idle")
            figures.forks.append(time.monotonic() - started)
            after = self.snapshots()
            if after[0] != before[0] + 1:
                raise BenchError(f"{name}: expected one snapshot, the operator made "
                                 f"{after[0] - before[0]:.0f}")
            figures.pauses.append(after[1] - before[1])
        figures.fork_p50 = statistics.median(figures.forks)
        figures.fork_p95 = nearest_rank(figures.forks, 0.95)
        figures.pause_p50 = statistics.median(figures.pauses)
        figures.pause_p95 = nearest_rank(figures.pauses, 0.95)


def measure(runs: int, boot_delay: float) -> Figures:
    work = Path(tempfile.mkdtemp(prefix="reef-fork-"))
    figures = Figures(runs, boot_delay)
    bench = ForkBench(work, boot_delay)
    try:
        bench.measure(figures)
        return figures
    finally:
        bench.close()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fork_start")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--boot-delay", type=float, default=10.0,
                        help="seconds the simulator takes to boot a VM (default %(default)s)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    try:
        figures = measure(args.runs, args.boot_delay)
    except BenchError as error:
        print(f"bench.fork_start: {error}", file=sys.stderr)
        return 1
    print(f"fork-to-Idle (boot delay {figures.boot_delay:.1f}s): p50 {figures.fork_p50:.2f}s "
          f"p95 {figures.fork_p95:.2f}s over {figures.runs} forks")
    print(f"the source's pause for the commit: p50 {figures.pause_p50:.3f}s "
          f"p95 {figures.pause_p95:.3f}s")
    if args.json:
        args.json.write_text(json.dumps(asdict(figures), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
