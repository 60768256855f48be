"""Lieutenants at scale: the operator beside the apiserver's raw ceiling, in one run.

Real control plane, the Vers simulator (boot delay 0), the real pi on every VM,
the scripted model (no latency). For each N:
  - ceiling: the same number of minimal writes by a plain client (create + one status
    patch per object): what this apiserver on this machine can do at all;
  - operator: N lieutenants created → time until each is Ready (p50/p95/max) and until
    all are; then one task each → time until every history has it; then deleted;
  - Kubernetes requests by the operator per lieutenant lifecycle (audit log), platform
    calls per lifecycle (simulator's log), status patches per task, operator peak RSS
    and CPU seconds, and requests per idle lieutenant per hour (a quiet window).

    .venv/bin/python -m bench.scale [N ...] [--idle-window S] [--json FILE]

Each lieutenant runs a real pi (about 110 MB); an N whose agents would not fit in
the memory available is refused with the reason, not faked.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

from bench.vmnode_lifecycle import audit_counts
from reef_operator.constants import GROUP, VERSION
from reef_operator.testing.controlplane import LocalControlPlane
from reef_operator.testing.operator_process import OperatorProcess, simulator_env
from reef_operator.testing.scripted_model.harness import ScriptedModel
from reef_operator.testing.versim.harness import VersSimulator

SCRIPT = """
tasks:
  - match: "Report"
    steps:
      - text: "Reported."
"""
PI_RSS_BYTES = 130 * 1024 * 1024      # one pi on a VM, with its tmux and sshd share
CLIENT_THREADS = 16                   # the same for the ceiling and the operator run
NAMESPACE = "bench"


@dataclass
class Result:
    n: int
    ceiling_seconds: float = 0.0
    ready_all_seconds: float = 0.0
    ready_p50: float = 0.0
    ready_p95: float = 0.0
    ready_max: float = 0.0
    tasks_all_seconds: float = 0.0
    ratio_ready_to_ceiling: float = 0.0
    kube_writes_per_lifecycle: float = 0.0
    kube_requests_per_lifecycle: float = 0.0
    writes_by_kind: dict[str, float] = field(default_factory=dict)
    status_patches_per_task: float = 0.0
    platform_calls_per_lifecycle: float = 0.0
    operator_peak_rss_mib: float = 0.0
    operator_cpu_seconds: float = 0.0
    idle_requests_per_lieutenant_hour: float = 0.0
    skipped: str = ""


class Bench:
    def __init__(self, work: Path) -> None:
        self.work = work
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

    def close(self) -> None:
        self.model.stop()
        self.sim.stop()
        self.plane.down()

    # -- the raw ceiling ----------------------------------------------------------------
    def ceiling(self, n: int) -> float:
        namespace = f"ceiling-{n}"
        self._namespace(namespace)

        def one(i: int) -> None:
            name = f"c{i}"
            self.custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, "lieutenants", _lieutenant(name))
            self.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, "lieutenants", name,
                {"status": {"phase": "Idle", "observedGeneration": 1}})

        started = time.monotonic()
        _parallel(one, range(n))
        elapsed = time.monotonic() - started
        self.custom.delete_collection_namespaced_custom_object(GROUP, VERSION, namespace,
                                                               "lieutenants")
        return elapsed

    # -- the operator -------------------------------------------------------------------
    def operator_run(self, n: int, idle_window: float) -> Result:
        result = Result(n)
        namespace = NAMESPACE
        self._namespace(namespace)
        self.core.create_namespaced_config_map(namespace, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="models"),
            data={"models.json": self.model.models_json()}))
        operator = OperatorProcess(self.plane.operator_kubeconfig, self.work / f"op-{n}.log",
                                   {**simulator_env(self.sim), "REEF_DEFAULT_PROFILE": "bench"})
        operator.start()
        try:
            time.sleep(1)
            _, mark = audit_counts(self.audit, 0)
            self.sim.reset_request_counts()
            watcher = Watcher(self.custom, namespace)
            created: dict[str, float] = {}

            def create(i: int) -> None:
                body = _lieutenant(f"lt{i}", with_model=True)
                self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace,
                                                            "lieutenants", body)
                created[f"lt{i}"] = time.monotonic()

            started = time.monotonic()
            _parallel(create, range(n))
            ready = watcher.wait(lambda s: s.get("phase") == "Idle", n, 120 + n)
            result.ready_all_seconds = max(ready.values()) - started
            per_object = sorted(ready[name] - created[name] for name in ready)
            result.ready_p50 = statistics.median(per_object)
            result.ready_p95 = per_object[int(0.95 * (len(per_object) - 1))]
            result.ready_max = per_object[-1]

            create_counts, mark = audit_counts(self.audit, mark)

            def send(i: int) -> None:
                self.custom.patch_namespaced_custom_object(
                    GROUP, VERSION, namespace, "lieutenants", f"lt{i}",
                    {"spec": {"tasks": [{"name": "report", "message": "Report in"}]}})

            started = time.monotonic()
            _parallel(send, range(n))
            done = watcher.wait(lambda s: len(s.get("history") or []) >= 1
                                and s.get("phase") == "Idle", n, 120 + n)
            result.tasks_all_seconds = max(done.values()) - started
            time.sleep(2)  # the last coalesced writes land
            task_counts, mark = audit_counts(self.audit, mark)
            result.status_patches_per_task = task_counts[
                "write patch lieutenants/status"] / n

            time.sleep(idle_window)
            idle_counts, mark = audit_counts(self.audit, mark)
            result.idle_requests_per_lieutenant_hour = (
                sum(idle_counts.values()) / n * 3600 / idle_window)

            self.custom.delete_collection_namespaced_custom_object(GROUP, VERSION, namespace,
                                                                   "lieutenants")
            watcher.wait_gone(n, 120 + n)
            _wait(lambda: not _items(self.custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, "vmnodes")), 120 + n, "VMNodes deleted")
            time.sleep(2)
            delete_counts, mark = audit_counts(self.audit, mark)
            watcher.stop()

            lifecycle = create_counts + task_counts + delete_counts
            writes = {k: v for k, v in lifecycle.items() if k.startswith("write")}
            result.kube_writes_per_lifecycle = sum(writes.values()) / n
            result.kube_requests_per_lifecycle = sum(lifecycle.values()) / n
            result.writes_by_kind = {k[len("write "):]: round(v / n, 2)
                                     for k, v in sorted(writes.items())}
            result.platform_calls_per_lifecycle = sum(self.sim.request_counts().values()) / n
            result.operator_peak_rss_mib, result.operator_cpu_seconds = _usage(operator)
        finally:
            operator.stop()
            self.core.delete_namespace(namespace)
            _wait(lambda: not _namespace_exists(self.core, namespace), 300, "namespace gone")
        return result

    def _namespace(self, name: str) -> None:
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))


class Watcher:
    """Records, per lieutenant, when its status first satisfied a check (one watch)."""

    def __init__(self, custom: Any, namespace: str) -> None:
        self.custom, self.namespace = custom, namespace
        self.latest: dict[str, dict[str, Any]] = {}
        self.changed = threading.Condition()
        self._stream = watch.Watch()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._follow()
        except Exception as error:  # stopping the stream ends it with an error too
            if not self._stopped:
                print(f"watch ended: {error}", file=sys.stderr)

    def _follow(self) -> None:
        for event in self._stream.stream(self.custom.list_namespaced_custom_object, GROUP,
                                         VERSION, self.namespace, "lieutenants",
                                         timeout_seconds=3600):
            obj = event["object"]
            with self.changed:
                name = obj["metadata"]["name"]
                if event["type"] == "DELETED":
                    self.latest.pop(name, None)
                else:
                    self.latest[name] = obj.get("status") or {}
                self.changed.notify_all()

    def wait(self, check: Callable[[dict[str, Any]], bool], count: int,
             within: float) -> dict[str, float]:
        seen: dict[str, float] = {}
        deadline = time.monotonic() + within
        with self.changed:
            while len(seen) < count:
                now = time.monotonic()
                for name, status in self.latest.items():
                    if name not in seen and check(status):
                        seen[name] = now
                if len(seen) >= count:
                    break
                if now > deadline:
                    raise SystemExit(f"only {len(seen)}/{count} lieutenants got there in "
                                     f"{within:g}s")
                self.changed.wait(0.5)
        return seen

    def wait_gone(self, count: int, within: float) -> None:
        deadline = time.monotonic() + within
        with self.changed:
            while self.latest:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{len(self.latest)}/{count} lieutenants not deleted")
                self.changed.wait(0.5)

    def stop(self) -> None:
        self._stopped = True
        self._stream.stop()


def _lieutenant(name: str, with_model: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"role": "bench", "profileRef": {"name": "bench"}}
    if with_model:
        spec.update({"model": {"provider": "scripted", "id": "scripted-1"},
                     "providersConfigMapRef": {"name": "models"}})
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Lieutenant",
            "metadata": {"name": name}, "spec": spec}


def _items(listing: Any) -> list[Any]:
    return list(listing["items"])


def _parallel(work: Callable[[int], None], items: Iterable[int]) -> None:
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        for future in [pool.submit(work, i) for i in items]:
            future.result()


def _wait(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out: {what}")
        time.sleep(0.5)


def _namespace_exists(core: Any, name: str) -> bool:
    return any(ns.metadata.name == name for ns in core.list_namespace().items)


def _usage(operator: OperatorProcess) -> tuple[float, float]:
    """(peak RSS in MiB, CPU seconds) of the operator process."""
    pid = operator.pid
    assert pid is not None
    status = Path(f"/proc/{pid}/status").read_text()
    peak_kib = next(int(line.split()[1]) for line in status.splitlines()
                    if line.startswith("VmHWM:"))
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rfind(")") + 2:].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return peak_kib / 1024, (int(fields[11]) + int(fields[12])) / ticks


def _available_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def table(results: list[Result]) -> str:
    rows = [
        ("raw ceiling: create+status (s)", "ceiling_seconds", "{:.2f}"),
        ("operator: all Ready (s)", "ready_all_seconds", "{:.2f}"),
        ("  ratio to ceiling", "ratio_ready_to_ceiling", "{:.1f}x"),
        ("  Ready p50 / object (s)", "ready_p50", "{:.2f}"),
        ("  Ready p95 / object (s)", "ready_p95", "{:.2f}"),
        ("  Ready max / object (s)", "ready_max", "{:.2f}"),
        ("one task each: all answered (s)", "tasks_all_seconds", "{:.2f}"),
        ("k8s writes / lifecycle", "kube_writes_per_lifecycle", "{:.1f}"),
        ("k8s requests / lifecycle", "kube_requests_per_lifecycle", "{:.1f}"),
        ("status patches / task", "status_patches_per_task", "{:.1f}"),
        ("platform calls / lifecycle", "platform_calls_per_lifecycle", "{:.1f}"),
        ("operator peak RSS (MiB)", "operator_peak_rss_mib", "{:.0f}"),
        ("operator CPU (s)", "operator_cpu_seconds", "{:.1f}"),
        ("idle requests / lieutenant / h", "idle_requests_per_lieutenant_hour", "{:.0f}"),
    ]
    header = f"{'N':34}" + "".join(f"{r.n:>12}" for r in results)
    lines = [header]
    for label, key, fmt in rows:
        cells = "".join(f"{'skipped' if r.skipped else fmt.format(getattr(r, key)):>12}"
                        for r in results)
        lines.append(f"{label:34}{cells}")
    for r in results:
        if r.skipped:
            lines.append(f"N={r.n} skipped: {r.skipped}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("n", nargs="*", type=int, default=[10, 100, 500, 1000])
    parser.add_argument("--idle-window", type=float, default=120,
                        help="seconds of quiet to measure idle requests (default 120)")
    parser.add_argument("--json", type=Path, default=Path("bench-scale.json"),
                        help="where to write the figures (default: %(default)s)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="reef-sc-"))
    bench = Bench(work)
    results: list[Result] = []
    try:
        for n in args.n:
            needed = n * PI_RSS_BYTES
            if needed > 0.8 * _available_bytes():
                results.append(Result(n, skipped=(
                    f"{n} real pi agents need about {needed / 2**30:.0f} GiB; "
                    f"{_available_bytes() / 2**30:.0f} GiB available")))
                continue
            print(f"--- N={n}", file=sys.stderr, flush=True)
            ceiling = bench.ceiling(n)
            result = bench.operator_run(n, args.idle_window)
            result.ceiling_seconds = ceiling
            result.ratio_ready_to_ceiling = result.ready_all_seconds / ceiling
            results.append(result)
    finally:
        bench.close()
        shutil.rmtree(work, ignore_errors=True)
    print(table(results))
    args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
