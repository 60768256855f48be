"""A scale run's machinery: the control plane, the Vers simulator, the scripted model and
the operator brought up, and the objects created, tasked and deleted, with the meter
read at each phase's end."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client, config

from bench.errors import BenchError
from bench.scale import procfs
from bench.scale.arrivals import Arrivals
from bench.scale.kinds import LIEUTENANTS, VMNODES, Kind, answered, condition_ready
from bench.scale.meter import (
    Meter,
    Result,
    burst,
    lifecycle_figures,
    platform_rate_floor,
    spread,
)
from reef_devkit.controlplane import LocalControlPlane
from reef_devkit.operator_process import OperatorProcess, simulator_env
from reef_devkit.scripted_model.harness import ScriptedModel
from reef_devkit.versim.harness import VersSimulator
from reef_operator.constants import GROUP, VERSION
from reef_operator.kube.watch import CustomObjects

SCRIPT = """
tasks:
  - match: "Report"
    steps:
      - text: "Reported."
"""
CLIENT_THREADS = 16                   # the same for the ceiling and the operator run
SETTLE_SECONDS = 2                    # after a phase, for its last (coalesced) writes
WATCH_SECONDS = 3600                  # the bench's own watches: the run's whole length
NAMESPACE = "bench"


class Bench:
    def __init__(self, work: Path, platform_rate: float) -> None:
        self.work = work
        self.platform_rate = platform_rate
        self.plane = LocalControlPlane(work / "cp", log=lambda m: print(m, file=sys.stderr))
        self.plane.up()
        self.audit = self.plane.state_dir / "logs" / "audit.log"
        self.sim = VersSimulator(work / "sim")
        self.model = ScriptedModel(SCRIPT, work / "model")
        configuration = client.Configuration()
        config.load_kube_config(str(self.plane.kubeconfig), client_configuration=configuration)
        configuration.connection_pool_maxsize = CLIENT_THREADS * 2
        api_client = client.ApiClient(configuration)
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)
        self.custom.create_cluster_custom_object(GROUP, VERSION, "bootprofiles", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "BootProfile",
            "metadata": {"name": "bench"},
            "spec": {"provider": "Vers", "category": "Lieutenant", "agent": {"install": False}}})
        self._ceilings = 0

    def close(self) -> None:
        self.model.stop()
        self.sim.stop()
        self.plane.down()

    def run(self, n: int, kind: Kind, idle_window: float) -> Result:
        print(f"--- N={n} {kind.label}", file=sys.stderr, flush=True)
        ceiling = self.ceiling(n, kind)
        result = self.operator_run(n, kind, idle_window)
        result.ceiling_seconds = ceiling
        result.ratio_ready_to_ceiling = result.ready_all_seconds / ceiling
        return result

    # -- the raw ceiling ----------------------------------------------------------------
    def ceiling(self, n: int, kind: Kind) -> float:
        # A fresh namespace each time, so a second run of the same N and kind can have one.
        self._ceilings += 1
        namespace = f"ceiling-{self._ceilings}-{kind.plural}-{n}"
        self._namespace(namespace)

        def one(i: int) -> None:
            name = f"c{i}"
            self.custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, kind.plural, kind.manifest(name))
            self.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, kind.plural, name, {"status": kind.ceiling_status})

        started = time.monotonic()
        _parallel(one, range(n))
        elapsed = time.monotonic() - started
        # No operator runs yet, so nothing holds a finalizer on these.
        self.custom.delete_collection_namespaced_custom_object(GROUP, VERSION, namespace,
                                                               kind.plural)
        self.core.delete_namespace(namespace)
        return elapsed

    # -- the operator -------------------------------------------------------------------
    def operator_run(self, n: int, kind: Kind, idle_window: float) -> Result:
        result = Result(n, kind.label)
        self._namespace(NAMESPACE)
        if kind is LIEUTENANTS:
            self.core.create_namespaced_config_map(NAMESPACE, client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name="models"),
                data={"models.json": self.model.models_json()}))
        operator = OperatorProcess(
            self.plane.operator_kubeconfig, self.work / f"op-{kind.plural}-{n}.log",
            {**simulator_env(self.sim), "REEF_DEFAULT_PROFILE": "bench",
             "REEF_PLATFORM_RATE": f"{self.platform_rate:g}",
             "REEF_PLATFORM_BURST": str(burst(self.platform_rate))})
        operator.start()
        try:
            time.sleep(1)
            meter = Meter(self.audit, self.sim)
            objects = self._arrivals(kind.plural)
            vmnodes = objects if kind is VMNODES else self._arrivals("vmnodes")
            try:
                self._create_until_ready(result, kind, objects, vmnodes, n)
                result.platform_rate_floor_seconds = platform_rate_floor(
                    meter.platform_calls(), self.platform_rate)
                time.sleep(SETTLE_SECONDS)
                phases = {"create": meter.take()}
                if kind is LIEUTENANTS:
                    result.tasks_all_seconds = self._one_task_each(objects, n)
                    phases["task"] = meter.take()
                time.sleep(idle_window)
                idle = meter.take()
                result.idle_requests_per_object_hour = (
                    sum(idle.kube.values()) / n * 3600 / idle_window)
                pss, cpu = procfs.simulated_vms_usage(self.sim.state_dir)
                result.vm_memory_mib, result.vm_cpu_seconds = pss / n / 2**20, cpu / n
                self._delete_all(kind, objects, vmnodes, n)
                phases["delete"] = meter.take()
            finally:
                objects.stop()
                vmnodes.stop()
            lifecycle_figures(result, phases, n)
            pid = operator.pid
            assert pid is not None
            result.operator_peak_rss_mib, result.operator_cpu_seconds = procfs.usage(pid)
        finally:
            operator.stop()
            self.core.delete_namespace(NAMESPACE)
            _wait(lambda: not _namespace_exists(self.core, NAMESPACE), 300, "namespace gone")
        return result

    def _arrivals(self, plural: str) -> Arrivals:
        source = CustomObjects(self.custom, plural, NAMESPACE, watch_seconds=WATCH_SECONDS)
        return Arrivals(source, plural).start()

    def _create_until_ready(self, result: Result, kind: Kind, objects: Arrivals,
                            vmnodes: Arrivals, n: int) -> None:
        created: dict[str, float] = {}

        def create(i: int) -> None:
            name = f"{kind.prefix}{i}"
            self.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE,
                                                        kind.plural, kind.manifest(name))
            created[name] = time.monotonic()

        started = time.monotonic()
        _parallel(create, range(n))
        ready = objects.wait(kind.ready, n, 120 + n)
        result.ready_all_seconds = max(ready.values()) - started
        result.ready_p50, result.ready_p95, result.ready_max = spread(
            ready[name] - created[name] for name in ready)
        if vmnodes is objects:
            return
        # A lieutenant's VMNode has its name; it is Ready before the lieutenant can be.
        vm_ready = vmnodes.wait(condition_ready, n, 60)
        result.vm_ready_all_seconds = max(vm_ready.values()) - started
        result.vm_ready_p50, _, result.vm_ready_max = spread(
            vm_ready[name] - created[name] for name in ready)
        result.agent_start_p50 = statistics.median(ready[name] - vm_ready[name]
                                                   for name in ready)

    def _one_task_each(self, lieutenants: Arrivals, n: int) -> float:
        def send(i: int) -> None:
            self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, "lieutenants", f"{LIEUTENANTS.prefix}{i}",
                {"spec": {"tasks": [{"name": "report", "message": "Report in"}]}})

        started = time.monotonic()
        _parallel(send, range(n))
        done = lieutenants.wait(answered, n, 120 + n)
        time.sleep(SETTLE_SECONDS)
        return max(done.values()) - started

    def _delete_all(self, kind: Kind, objects: Arrivals, vmnodes: Arrivals, n: int) -> None:
        self.custom.delete_collection_namespaced_custom_object(GROUP, VERSION, NAMESPACE,
                                                               kind.plural)
        objects.wait_gone(n, 120 + n)
        vmnodes.wait_gone(n, 120 + n)
        time.sleep(SETTLE_SECONDS)

    def _namespace(self, name: str) -> None:
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))


def _parallel(work: Callable[[int], None], items: Iterable[int]) -> None:
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        for future in [pool.submit(work, i) for i in items]:
            future.result()


def _wait(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out: {what}")
        time.sleep(0.5)


def _namespace_exists(core: Any, name: str) -> bool:
    return any(ns.metadata.name == name for ns in core.list_namespace().items)
