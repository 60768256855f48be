"""What idle pause costs and saves: the latency of a task sent to an idle-paused lieutenant,
and what an idle-paused lieutenant costs per hour while nobody uses it.

Real control plane, the operator, the real pi on Vers simulator VMs, the scripted model
(no model latency). The simulator answers a resume after RESUME_DELAY seconds (a Vers
resume is one platform call that thaws the VM in place; --resume-delay sets it).
  - append → pi asks the model, for a task appended to an idle-paused lieutenant
    (`idlePolicy.pauseAfter`; the task resumes the VM), over RUNS runs (p50, p95), and
    the same for a lieutenant that stays running (the baseline);
  - idle cost: with the baseline gone, the idle-paused lieutenants alone for WINDOW
    seconds: the simulator's platform calls and the operator's Kubernetes writes (from
    the apiserver's audit log), per idle-paused lieutenant per hour (extrapolated).

    .venv/bin/python -m bench.idle_resume [--runs N] [--window SECONDS]
        [--resume-delay SECONDS] [--idle-lieutenants N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.audit import audit_counts
from bench.errors import BenchError
from bench.long_session import nearest_rank
from bench.rig import NAMESPACE, SimulatorRig
from reef_operator.constants import GROUP, VERSION

PAUSE_AFTER = "5s"
SCRIPT = """
tasks:
  - match: "Task"
    steps:
      - text: "Done with it."
"""


@dataclass
class Figures:
    runs: int
    resume_delay: float
    paused_p50: float = 0.0
    paused_p95: float = 0.0
    running_p50: float = 0.0
    running_p95: float = 0.0
    idle_lieutenants: int = 0
    window_seconds: float = 0.0
    platform_calls_per_hour: float = 0.0
    kube_writes_per_hour: float = 0.0
    platform_calls: dict[str, int] = field(default_factory=dict)
    kube_writes: dict[str, int] = field(default_factory=dict)


class IdleBench(SimulatorRig):
    """One control plane, simulator, scripted model and operator for every measurement."""

    def __init__(self, work: Path, resume_delay: float) -> None:
        super().__init__(work, SCRIPT, resume_delay=resume_delay)
        self.audit = self.plane.state_dir / "logs" / "audit.log"

    # -- lieutenants ------------------------------------------------------------------------
    def phase(self, name: str) -> str:
        return str((self.get(name).get("status") or {}).get("phase", ""))

    def platform_paused(self, name: str) -> bool:
        vm_id = (self.get(name).get("status") or {}).get("vmId")
        return any(vm["vm_id"] == vm_id and vm["state"] == "paused" for vm in self.versim.vms())

    def send(self, name: str, task: str) -> float:
        """Append a task; seconds from the append to pi's request for it at the model."""
        message = f"Task {task} for {name}"
        self.model.forget_requests()
        tasks = self.get(name)["spec"].get("tasks") or []
        appended = time.time()
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, "lieutenants", name,
            {"spec": {"tasks": [*tasks, {"name": task, "message": message}]}})
        self.until(lambda: any(h.get("task") == task for h in
                               (self.get(name).get("status") or {}).get("history") or []),
                   f"task {task} of {name} answered")
        asked = [r["time"] for r in self.model.requests()
                 if r["conversation"] and r["conversation"][-1]["text"] == message]
        if not asked:
            raise BenchError(f"the scripted model never saw task {task} of {name}")
        return float(min(asked) - appended)

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "lieutenants",
                                                    name)
        self.until(lambda: not self.vmnodes(name), f"VMNode {name} gone")

    def vmnodes(self, name: str) -> list[dict[str, Any]]:
        found: dict[str, Any] = self.custom.list_namespaced_custom_object(  # type: ignore[assignment]
            GROUP, VERSION, NAMESPACE, "vmnodes", field_selector=f"metadata.name={name}")
        return list(found["items"])

    # -- the measurements ---------------------------------------------------------------------
    def latencies(self, figures: Figures) -> None:
        self.create("awake")
        self.create("sleepy", idlePolicy={"pauseAfter": PAUSE_AFTER})
        self.until(lambda: self.phase("awake") == "Idle", "awake Idle")
        running = [self.send("awake", f"r{n}") for n in range(figures.runs)]
        paused = []
        for n in range(figures.runs):
            self.until(lambda: self.phase("sleepy") == "Paused" and
                       self.platform_paused("sleepy"), "sleepy paused for idleness")
            paused.append(self.send("sleepy", f"p{n}"))
        figures.running_p50, figures.running_p95 = statistics.median(running), \
            nearest_rank(running, 0.95)
        figures.paused_p50, figures.paused_p95 = statistics.median(paused), \
            nearest_rank(paused, 0.95)
        self.delete("awake")

    def idle_cost(self, figures: Figures, idle_lieutenants: int, window: float) -> None:
        names = ["sleepy", *[f"sleepy{n}" for n in range(1, idle_lieutenants)]]
        for name in names[1:]:
            self.create(name, idlePolicy={"pauseAfter": PAUSE_AFTER})
        for name in names:
            self.until(lambda n=name: self.phase(n) == "Paused" and  # type: ignore[misc]
                       self.platform_paused(n), f"{name} paused for idleness")
        time.sleep(2)   # the last writes of the pauses themselves are not idle cost
        _, mark = audit_counts(self.audit, 0)
        self.versim.reset_request_counts()
        time.sleep(window)   # the measurement: nothing happens but the operator's own loops
        calls = {k: v for k, v in self.versim.request_counts().items() if v}
        counts, _ = audit_counts(self.audit, mark)
        writes = {k: v for k, v in counts.items() if k.startswith("write")}
        per_hour = 3600 / window / len(names)
        figures.idle_lieutenants, figures.window_seconds = len(names), window
        figures.platform_calls, figures.kube_writes = calls, writes
        figures.platform_calls_per_hour = sum(calls.values()) * per_hour
        figures.kube_writes_per_hour = sum(writes.values()) * per_hour


def measure(runs: int, window: float, resume_delay: float, idle_lieutenants: int) -> Figures:
    work = Path(tempfile.mkdtemp(prefix="reef-ir-"))
    bench = IdleBench(work, resume_delay)
    figures = Figures(runs, resume_delay)
    try:
        bench.latencies(figures)
        bench.idle_cost(figures, idle_lieutenants, window)
        return figures
    finally:
        bench.close()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.idle_resume")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--window", type=float, default=660.0,
                        help="seconds of idle cost measured (default %(default)s: longer than "
                             "the operator's 600-second idle wake-up)")
    parser.add_argument("--resume-delay", type=float, default=1.0,
                        help="seconds the simulator takes to resume a VM (default %(default)s)")
    parser.add_argument("--idle-lieutenants", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    try:
        figures = measure(args.runs, args.window, args.resume_delay, args.idle_lieutenants)
    except BenchError as error:
        print(f"bench.idle_resume: {error}", file=sys.stderr)
        return 1
    print(f"append→pi, idle-paused (resume {figures.resume_delay:.1f}s): "
          f"p50 {figures.paused_p50:.2f}s p95 {figures.paused_p95:.2f}s "
          f"over {figures.runs} runs")
    print(f"append→pi, running (baseline):            "
          f"p50 {figures.running_p50:.2f}s p95 {figures.running_p95:.2f}s")
    print(f"idle cost per idle-paused lieutenant per hour ({figures.idle_lieutenants} "
          f"lieutenants, {figures.window_seconds:.0f}s window): "
          f"{figures.platform_calls_per_hour:.1f} platform calls, "
          f"{figures.kube_writes_per_hour:.1f} Kubernetes writes")
    print(f"  platform calls: {figures.platform_calls or 'none'}")
    print(f"  Kubernetes writes: {figures.kube_writes or 'none'}")
    if args.json:
        args.json.write_text(json.dumps(asdict(figures), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
