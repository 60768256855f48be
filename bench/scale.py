"""Lieutenants at scale: the operator beside the apiserver's raw ceiling, in one run.

Real control plane, the Vers simulator (boot delay 0), the scripted model (no latency).
For each N, one of two kinds of run:
  - lieutenants, a real pi on every VM: N lieutenants created → time until each is
    Ready (p50/p95/max) and until all are, and when its VMNode got Ready (the rest of
    the time is starting pi on it); then one task each → time until every history has
    it; then deleted;
  - VMNodes without an agent (`vmnodes (no agent)`): N VMNodes created → time until
    each is Ready; then deleted. An N whose pi agents would not fit in memory runs this
    instead of lieutenants; `--vmnodes N ...` runs it for any N.
Each beside the raw ceiling: as many minimal writes of the same kind by a plain client
(create + one status patch per object), what this apiserver on this machine can do at
all; and beside the floor the operator's own platform rate limit sets for the platform
calls it made until all were Ready. Measured for both: Kubernetes requests by the
operator per lifecycle (audit log; writes in total, without the task phase and Events,
and Events alone), platform calls per lifecycle (simulator's log), status patches per
task, operator peak RSS and CPU seconds, memory and CPU of the simulated VMs per VM,
and requests per idle object per hour (a quiet window).

    .venv/bin/python -m bench.scale [N ...] [--vmnodes N ...] [--idle-window S] [--json FILE]

Each lieutenant runs a real pi (about 130 MB), each simulated VM a real sshd in its own
namespaces (under 8 MB with its share of the operator and the control plane); an N that
would not fit in the memory available is refused with the reason, not faked.
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
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

from bench.vmnode_lifecycle import audit_counts
from reef_operator.config import DEFAULT_PLATFORM_BURST, DEFAULT_PLATFORM_RATE
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
# One simulated VM without an agent: its sshd, the sshd session of the operator's
# connection and unshare (3.1 MiB PSS each at N=50), plus what each VMNode adds to the
# operator (about 0.5 MiB), the simulator and the control plane; rounded up generously
# because the smaller shares are too noisy to measure on a shared machine.
VM_BYTES = 8 * 1024 * 1024
MEMORY_SHARE = 0.8                    # of MemAvailable a run may plan to use
CLIENT_THREADS = 16                   # the same for the ceiling and the operator run
SETTLE_SECONDS = 2                    # after a phase, for its last (coalesced) writes
NAMESPACE = "bench"


@dataclass(frozen=True)
class Kind:
    """What a run creates: the resource, how one is written and when it counts as Ready."""

    plural: str
    label: str                                   # the `kind` row: what the column measures
    prefix: str                                  # object names: prefix + index
    bytes_each: int                              # host memory one needs, for the guard
    manifest: Callable[[str], dict[str, Any]]
    ceiling_status: dict[str, Any]               # the raw ceiling's one status patch
    ready: Callable[[Mapping[str, Any]], bool]   # on the object's status


def _lieutenant(name: str) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Lieutenant",
            "metadata": {"name": name},
            "spec": {"role": "bench", "profileRef": {"name": "bench"},
                     "model": {"provider": "scripted", "id": "scripted-1"},
                     "providersConfigMapRef": {"name": "models"}}}


def _vmnode(name: str) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VMNode",
            "metadata": {"name": name}, "spec": {"profileRef": {"name": "bench"}}}


def _condition_ready(status: Mapping[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in status.get("conditions") or [])


LIEUTENANTS = Kind("lieutenants", "lieutenants", "lt", PI_RSS_BYTES, _lieutenant,
                   {"phase": "Idle", "observedGeneration": 1},
                   lambda status: status.get("phase") == "Idle")
VMNODES = Kind("vmnodes", "vmnodes (no agent)", "vm", VM_BYTES, _vmnode,
               {"vmState": "running", "observedGeneration": 1}, _condition_ready)


@dataclass
class Result:
    n: int
    kind: str
    ceiling_seconds: float = 0.0
    ready_all_seconds: float = 0.0
    ready_p50: float = 0.0
    ready_p95: float = 0.0
    ready_max: float = 0.0
    # Lieutenants only (None for VMNode runs, where the object is the VM): when each
    # lieutenant's VMNode got Ready, counted from the lieutenant's creation.
    vm_ready_all_seconds: float | None = None
    vm_ready_p50: float | None = None
    vm_ready_max: float | None = None
    agent_start_p50: float | None = None         # lieutenant Ready - its VMNode Ready
    tasks_all_seconds: float | None = None
    ratio_ready_to_ceiling: float = 0.0
    # The least time the operator's platform rate limit (its defaults: the bench does not
    # set REEF_PLATFORM_RATE) allows for the platform calls made until all were Ready:
    # when it is close to the time to all Ready, the limit is what sets the pace.
    platform_rate_floor_seconds: float = 0.0
    kube_writes_per_lifecycle: float = 0.0
    kube_writes_per_lifecycle_excl_task_events: float = 0.0
    events_per_lifecycle: float = 0.0
    kube_requests_per_lifecycle: float = 0.0
    writes_by_kind: dict[str, float] = field(default_factory=dict)
    status_patches_per_task: float | None = None
    platform_calls_per_lifecycle: float = 0.0
    operator_peak_rss_mib: float = 0.0
    operator_cpu_seconds: float = 0.0
    # The simulator's VM processes (sshd; pi, node, tmux for lieutenants), per VM, at
    # the end of the idle window: PSS, and CPU seconds used since they started.
    vm_memory_mib: float = 0.0
    vm_cpu_seconds: float = 0.0
    idle_requests_per_object_hour: float = 0.0
    note: str = ""
    skipped: str = ""


@dataclass
class Phase:
    """The operator's Kubernetes requests and platform calls in one phase of a run."""

    kube: Counter[str]
    platform: Counter[str]


class Meter:
    """Reads the operator's Kubernetes requests (apiserver audit log, operator identity)
    and platform calls (simulator's request log) since the previous reading."""

    def __init__(self, audit: Path, sim: VersSimulator) -> None:
        self.audit, self.sim = audit, sim
        self._inode = audit.stat().st_ino
        _, self._line = audit_counts(audit, 0)
        self._platform = Counter(sim.request_counts())

    def platform_calls(self) -> int:
        """Platform calls since the previous reading, without ending the phase."""
        return sum((Counter(self.sim.request_counts()) - self._platform).values())

    def take(self) -> Phase:
        # The apiserver rotates its audit log at 200 MB; counting across that would be wrong.
        if self.audit.stat().st_ino != self._inode:
            raise SystemExit("the audit log was rotated during the run; run fewer N at once")
        kube, self._line = audit_counts(self.audit, self._line)
        platform = Counter(self.sim.request_counts())
        since, self._platform = platform - self._platform, platform
        return Phase(kube, since)


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
             "REEF_PLATFORM_BURST": str(_burst(self.platform_rate))})
        operator.start()
        try:
            time.sleep(1)
            meter = Meter(self.audit, self.sim)
            objects = Watcher(self.custom, NAMESPACE, kind.plural)
            vmnodes = objects if kind is VMNODES else Watcher(self.custom, NAMESPACE, "vmnodes")
            try:
                self._create_until_ready(result, kind, objects, vmnodes, n)
                result.platform_rate_floor_seconds = _platform_rate_floor(
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
                pss, cpu = _simulated_vms_usage(self.sim)
                result.vm_memory_mib, result.vm_cpu_seconds = pss / n / 2**20, cpu / n
                self._delete_all(kind, objects, vmnodes, n)
                phases["delete"] = meter.take()
            finally:
                objects.stop()
                vmnodes.stop()
            _lifecycle_figures(result, phases, n)
            result.operator_peak_rss_mib, result.operator_cpu_seconds = _usage(operator)
        finally:
            operator.stop()
            self.core.delete_namespace(NAMESPACE)
            _wait(lambda: not _namespace_exists(self.core, NAMESPACE), 300, "namespace gone")
        return result

    def _create_until_ready(self, result: Result, kind: Kind, objects: Watcher,
                            vmnodes: Watcher, n: int) -> None:
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
        result.ready_p50, result.ready_p95, result.ready_max = _spread(
            ready[name] - created[name] for name in ready)
        if vmnodes is objects:
            return
        # A lieutenant's VMNode has its name; it is Ready before the lieutenant can be.
        vm_ready = vmnodes.wait(_condition_ready, n, 60)
        result.vm_ready_all_seconds = max(vm_ready.values()) - started
        result.vm_ready_p50, _, result.vm_ready_max = _spread(
            vm_ready[name] - created[name] for name in ready)
        result.agent_start_p50 = statistics.median(ready[name] - vm_ready[name]
                                                   for name in ready)

    def _one_task_each(self, lieutenants: Watcher, n: int) -> float:
        def send(i: int) -> None:
            self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, "lieutenants", f"{LIEUTENANTS.prefix}{i}",
                {"spec": {"tasks": [{"name": "report", "message": "Report in"}]}})

        started = time.monotonic()
        _parallel(send, range(n))
        done = lieutenants.wait(lambda s: len(s.get("history") or []) >= 1
                                and s.get("phase") == "Idle", n, 120 + n)
        time.sleep(SETTLE_SECONDS)
        return max(done.values()) - started

    def _delete_all(self, kind: Kind, objects: Watcher, vmnodes: Watcher, n: int) -> None:
        self.custom.delete_collection_namespaced_custom_object(GROUP, VERSION, NAMESPACE,
                                                               kind.plural)
        objects.wait_gone(n, 120 + n)
        vmnodes.wait_gone(n, 120 + n)
        time.sleep(SETTLE_SECONDS)

    def _namespace(self, name: str) -> None:
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))


class Watcher:
    """Follows one kind in one namespace (one watch) and records when each object's
    status arrived, so a wait can tell when a check first held for each."""

    def __init__(self, custom: Any, namespace: str, plural: str) -> None:
        self.custom, self.namespace, self.plural = custom, namespace, plural
        self.statuses: dict[str, list[tuple[float, dict[str, Any]]]] = {}  # name → arrivals
        self.live: set[str] = set()
        self.changed = threading.Condition()
        self._stream = watch.Watch()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._follow()
            ending = "by the server"
        except Exception as error:  # stopping the stream ends it with an error too
            ending = str(error)
        if not self._stopped:
            print(f"watch of {self.plural} ended: {ending}", file=sys.stderr)

    def _follow(self) -> None:
        for event in self._stream.stream(self.custom.list_namespaced_custom_object, GROUP,
                                         VERSION, self.namespace, self.plural,
                                         timeout_seconds=3600):
            arrived = time.monotonic()
            obj = event["object"]
            with self.changed:
                name = obj["metadata"]["name"]
                if event["type"] == "DELETED":
                    self.live.discard(name)
                else:
                    self.live.add(name)
                    self.statuses.setdefault(name, []).append((arrived, obj.get("status") or {}))
                self.changed.notify_all()

    def wait(self, check: Callable[[Mapping[str, Any]], bool], count: int,
             within: float) -> dict[str, float]:
        """Per object, when a status satisfying `check` first arrived; once `count` have."""
        first: dict[str, float] = {}
        scanned: dict[str, int] = {}  # per object, arrivals already looked at
        deadline = time.monotonic() + within
        with self.changed:
            while True:
                for name, arrivals in self.statuses.items():
                    if name in first:
                        continue
                    for arrived, status in arrivals[scanned.get(name, 0):]:
                        if check(status):
                            first[name] = arrived
                            break
                    scanned[name] = len(arrivals)
                if len(first) >= count:
                    return first
                if time.monotonic() > deadline:
                    listed = sum(check(o.get("status") or {}) for o in self._list())
                    raise SystemExit(f"only {len(first)}/{count} {self.plural} got there in "
                                     f"{within:g}s (a fresh list shows {listed})")
                self.changed.wait(0.5)

    def wait_gone(self, count: int, within: float) -> None:
        deadline = time.monotonic() + within
        with self.changed:
            while self.live:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{len(self.live)}/{count} {self.plural} not deleted "
                                     f"in {within:g}s (a fresh list shows "
                                     f"{len(self._list())})")
                self.changed.wait(0.5)

    def _list(self) -> list[dict[str, Any]]:
        """The objects as a fresh list shows them: tells a lost watch from a slow operator."""
        listing = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace,
                                                            self.plural)
        return list(listing["items"])

    def stop(self) -> None:
        self._stopped = True
        self._stream.stop()


def _lifecycle_figures(result: Result, phases: dict[str, Phase], n: int) -> None:
    """Per-object request counts over create→Ready, the task (lieutenants) and deletion."""
    lifecycle = sum((phase.kube for phase in phases.values()), Counter[str]())
    writes = _writes(lifecycle)
    result.kube_writes_per_lifecycle = sum(writes.values()) / n
    result.kube_requests_per_lifecycle = sum(lifecycle.values()) / n
    result.events_per_lifecycle = sum(v for k, v in writes.items() if _is_event(k)) / n
    # What the object itself costs, without the task's chatter and without Events (which
    # an operator could drop or rate-limit without changing what it does).
    create_and_delete = _writes(phases["create"].kube + phases["delete"].kube)
    result.kube_writes_per_lifecycle_excl_task_events = sum(
        v for k, v in create_and_delete.items() if not _is_event(k)) / n
    result.writes_by_kind = {k[len("write "):]: round(v / n, 2)
                             for k, v in sorted(writes.items())}
    if "task" in phases:
        result.status_patches_per_task = phases["task"].kube[
            "write patch lieutenants/status"] / n
    result.platform_calls_per_lifecycle = sum(
        sum(phase.platform.values()) for phase in phases.values()) / n


def _platform_rate_floor(calls: int, rate: float) -> float:
    """Seconds the operator's token bucket (full at the start) needs for so many calls."""
    return max(0, calls - _burst(rate)) / rate


def _burst(rate: float) -> int:
    """The bucket's size for a rate, in the operator defaults' proportion."""
    return max(1, round(rate * DEFAULT_PLATFORM_BURST / DEFAULT_PLATFORM_RATE))


def _writes(counts: Counter[str]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if k.startswith("write ")}


def _is_event(key: str) -> bool:
    """`write create events` (audit_counts' keys: kind, verb, resource)."""
    return key.split()[-1] == "events"


def _spread(values: Iterable[float]) -> tuple[float, float, float]:
    """(p50, p95, max)."""
    ordered = sorted(values)
    return (statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))], ordered[-1])


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
    return peak_kib / 1024, _cpu_seconds(_stat_fields(pid), children=False)


def _simulated_vms_usage(sim: VersSimulator) -> tuple[int, float]:
    """(PSS bytes, CPU seconds) of every process below the simulator: its VMs' sshd (and
    pi, tmux, node on a lieutenant's VM). PSS, not RSS, because the VMs share the sshd and
    node binaries; CPU with what their exited children used (an SSH command's, say)."""
    children: dict[int, list[int]] = {}
    for pid in (int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()):
        fields = _stat_fields(pid)
        if fields:
            children.setdefault(int(fields[1]), []).append(pid)
    state_dir = str(sim.state_dir).encode()
    simulators = [pid for pid in children.get(os.getpid(), []) if state_dir in _cmdline(pid)]
    pending = [pid for simulator in simulators for pid in children.get(simulator, [])]
    pss, cpu = 0, 0.0
    while pending:
        pid = pending.pop()
        pss += _pss_bytes(pid)
        cpu += _cpu_seconds(_stat_fields(pid), children=True)
        pending.extend(children.get(pid, []))
    return pss, cpu


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the command name: [0] state, [1] ppid, [11:15] CPU ticks
    (utime, stime, cutime, cstime); empty if the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return text[text.rfind(")") + 2:].split()


def _cpu_seconds(fields: list[str], *, children: bool) -> float:
    if not fields:
        return 0.0
    ticks = fields[11:15] if children else fields[11:13]
    return sum(int(t) for t in ticks) / os.sysconf("SC_CLK_TCK")


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _pss_bytes(pid: int) -> int:
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) * 1024 for line in rollup.splitlines()
                 if line.startswith("Pss:")), 0)


def _available_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def _memory_refusal(n: int, kind: Kind) -> str:
    """Why N of this kind would not fit in the memory available, or "" if they would."""
    needed, available = n * kind.bytes_each, _available_bytes()
    if needed <= MEMORY_SHARE * available:
        return ""
    what = "real pi agents" if kind is LIEUTENANTS else "simulated VMs"
    return (f"{n} {what} need about {needed / 2**30:.1f} GiB; "
            f"{available / 2**30:.1f} GiB available")


def plan(lieutenant_ns: list[int], vmnode_ns: list[int]) -> list[tuple[int, Kind, str]]:
    """(N, kind, note) per run: lieutenants where their agents fit, VMNodes where not."""
    runs = []
    for n in lieutenant_ns:
        refusal = _memory_refusal(n, LIEUTENANTS)
        runs.append((n, VMNODES, f"instead of lieutenants: {refusal}") if refusal
                    else (n, LIEUTENANTS, ""))
    return runs + [(n, VMNODES, "") for n in vmnode_ns]


ROWS = [
    ("kind", "kind", "{}"),
    ("raw ceiling: create+status (s)", "ceiling_seconds", "{:.2f}"),
    ("operator: all Ready (s)", "ready_all_seconds", "{:.2f}"),
    ("  ratio to ceiling", "ratio_ready_to_ceiling", "{:.1f}x"),
    ("  floor: platform calls at REEF_PLATFORM_RATE (s)",
     "platform_rate_floor_seconds", "{:.2f}"),
    ("  Ready p50 / object (s)", "ready_p50", "{:.2f}"),
    ("  Ready p95 / object (s)", "ready_p95", "{:.2f}"),
    ("  Ready max / object (s)", "ready_max", "{:.2f}"),
    ("  of which VM: all Ready (s)", "vm_ready_all_seconds", "{:.2f}"),
    ("  VM Ready p50 / lieutenant (s)", "vm_ready_p50", "{:.2f}"),
    ("  VM Ready max / lieutenant (s)", "vm_ready_max", "{:.2f}"),
    ("  agent start p50 (Ready - VM Ready) (s)", "agent_start_p50", "{:.2f}"),
    ("one task each: all answered (s)", "tasks_all_seconds", "{:.2f}"),
    ("k8s writes / lifecycle", "kube_writes_per_lifecycle", "{:.1f}"),
    ("k8s writes / lifecycle (excl. task, Events)",
     "kube_writes_per_lifecycle_excl_task_events", "{:.1f}"),
    ("Events / lifecycle", "events_per_lifecycle", "{:.1f}"),
    ("k8s requests / lifecycle", "kube_requests_per_lifecycle", "{:.1f}"),
    ("status patches / task", "status_patches_per_task", "{:.1f}"),
    ("platform calls / lifecycle", "platform_calls_per_lifecycle", "{:.1f}"),
    ("operator peak RSS (MiB)", "operator_peak_rss_mib", "{:.0f}"),
    ("operator CPU (s)", "operator_cpu_seconds", "{:.1f}"),
    ("simulated VM memory, PSS / VM (MiB)", "vm_memory_mib", "{:.1f}"),
    ("simulated VM CPU, lifetime / VM (s)", "vm_cpu_seconds", "{:.2f}"),
    ("idle requests / object / h", "idle_requests_per_object_hour", "{:.0f}"),
]
LABEL_WIDTH, CELL_WIDTH = 44, 20


def table(results: list[Result]) -> str:
    header = f"{'N':{LABEL_WIDTH}}" + "".join(
        f"{f'N={r.n} {r.kind.split()[0]}':>{CELL_WIDTH}}" for r in results)
    lines = [header]
    for label, key, fmt in ROWS:
        cells = "".join(f"{_cell(r, key, fmt):>{CELL_WIDTH}}" for r in results)
        lines.append(f"{label:{LABEL_WIDTH}}{cells}")
    for r in results:
        if r.note:
            lines.append(f"N={r.n} {r.kind} {r.note}")
        if r.skipped:
            lines.append(f"N={r.n} {r.kind} skipped: {r.skipped}")
    return "\n".join(lines)


def _cell(result: Result, key: str, fmt: str) -> str:
    value = getattr(result, key)
    if result.skipped and key != "kind":
        return "skipped"
    return "-" if value is None else fmt.format(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("n", nargs="*", type=int,
                        help="lieutenant runs (VMNode runs where the agents would not fit; "
                             "default 10 100 500 1000 unless --vmnodes is given)")
    parser.add_argument("--vmnodes", nargs="+", type=int, default=[], metavar="N",
                        help="VMNode-only runs (no agent) of these sizes")
    parser.add_argument("--idle-window", type=float, default=120,
                        help="seconds of quiet to measure idle requests (default 120); "
                             "a VMNode's heartbeat time is written every half "
                             "staleAfterSeconds (150 s by default), so a shorter window "
                             "can miss those writes")
    parser.add_argument("--platform-rate", type=float, default=DEFAULT_PLATFORM_RATE,
                        help="the operator's REEF_PLATFORM_RATE (default %(default)g calls/s, "
                             "the operator's default; the burst keeps the default proportion): "
                             "raise it to see the operator's own limit rather than this one")
    parser.add_argument("--json", type=Path, default=Path("bench-scale.json"),
                        help="where to write the figures (default: %(default)s)")
    args = parser.parse_args(argv)
    lieutenant_ns = args.n if args.n or args.vmnodes else [10, 100, 500, 1000]
    work = Path(tempfile.mkdtemp(prefix="reef-sc-"))
    bench = Bench(work, args.platform_rate)
    results: list[Result] = []
    finished = False
    try:
        for n, kind, note in plan(lieutenant_ns, args.vmnodes):
            # Checked just before each run: what earlier runs left behind counts too.
            refusal = _memory_refusal(n, kind)
            result = (Result(n, kind.label, skipped=refusal) if refusal
                      else bench.run(n, kind, args.idle_window))
            result.note = note
            results.append(result)
        finished = True
    finally:
        bench.close()
        if finished:
            shutil.rmtree(work, ignore_errors=True)
        else:  # what went wrong is in the logs
            print(f"kept {work}: operator logs op-*.log, simulator sim/versim.log",
                  file=sys.stderr)
    print(table(results))
    print(f"REEF_PLATFORM_RATE {args.platform_rate:g} calls/s, burst {_burst(args.platform_rate)}")
    args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
