"""What a warm pool buys: create-to-Idle of a lieutenant, booted cold and taken from a
VMPool, on the Vers simulator with a boot delay (a real VM takes seconds to boot).

Real control plane, the operator, the real pi on Vers simulator VMs, the scripted model.
Create-to-Idle is the time from the Lieutenant's create to its status saying Idle (its
VM runs, pi answered the handshake, it takes tasks), over RUNS lieutenants made one
after the other (p50, p95):
  - cold: each boots its own VM (BOOT_DELAY seconds on the platform, then the profile's
    boot script);
  - pool: each names a VMPool in spec.poolRef and takes a member booted ahead. The pool
    is filled with RUNS members first, then told to boot no more (minReady 0): the
    simulator's VMs are processes on this machine, so a refill booting beside a measured
    start would take its CPU, where a platform's VMs boot elsewhere.

    .venv/bin/python -m bench.instant_start [--runs N] [--boot-delay SECONDS] [--json PATH]
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

from kubernetes import client

from bench.errors import BenchError
from bench.long_session import nearest_rank
from bench.rig import NAMESPACE, PROFILE, SimulatorRig
from reef_operator.constants import GROUP, VERSION

POOL = "warm"
TARGET = 5.0                  # the pool should be at least this many times faster
SCRIPT = """
tasks: []
"""


@dataclass
class Figures:
    runs: int
    boot_delay: float
    pool_size: int
    cold: list[float] = field(default_factory=list)
    pool: list[float] = field(default_factory=list)
    cold_p50: float = 0.0
    cold_p95: float = 0.0
    pool_p50: float = 0.0
    pool_p95: float = 0.0
    speedup_p50: float = 0.0


class StartBench(SimulatorRig):
    """One control plane, simulator, scripted model and operator for every measurement."""

    def __init__(self, work: Path, boot_delay: float) -> None:
        super().__init__(work, SCRIPT, boot_delay=boot_delay)
        self.pooled: dict[str, dict[str, Any]] = {}   # each lieutenant's node's Pooled

    def create_to_idle(self, name: str, **spec: Any) -> float:
        """Seconds from the Lieutenant's create to its status saying Idle; then it goes."""
        started = time.monotonic()
        self.create(name, **spec)
        self.until(lambda: (self.get(name, "lieutenants").get("status") or {}).get("phase")
                   == "Idle", f"{name} Idle")
        elapsed = time.monotonic() - started
        if spec.get("poolRef"):
            # The node's pass that took the VM writes Pooled when it ends, which may be
            # after pi answered: the handover itself wrote the VM into its status first.
            self.until(lambda: bool(self._pooled(name)), f"{name}'s node says Pooled")
            self.pooled[name] = self._pooled(name)
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "lieutenants",
                                                    name)
        return elapsed

    def _pooled(self, name: str) -> dict[str, Any]:
        conditions = (self.get(name, "vmnodes").get("status") or {}).get("conditions") or []
        return next((c for c in conditions if c.get("type") == "Pooled"), {})

    def pool_ready(self, count: int) -> bool:
        try:
            status = self.get(POOL, "vmpools").get("status") or {}
        except client.ApiException:
            return False
        return int(status.get("ready") or 0) >= count

    def measure(self, figures: Figures) -> None:
        figures.cold = [self.create_to_idle(f"cold{n}") for n in range(figures.runs)]
        self.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "vmpools", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "VMPool", "metadata": {"name": POOL},
            "spec": {"profileRef": {"name": PROFILE}, "minReady": figures.pool_size,
                     "maxSize": figures.pool_size}})
        self.until(lambda: self.pool_ready(figures.pool_size), "the pool filled")
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "vmpools", POOL,
                                                   {"spec": {"minReady": 0}})
        for n in range(figures.runs):
            figures.pool.append(self.create_to_idle(f"warm{n}", poolRef={"name": POOL}))
            if self.pooled[f"warm{n}"].get("status") != "True":
                raise BenchError(f"warm{n} did not take a VM from the pool: "
                                 f"{self.pooled[f'warm{n}'].get('message')}\n"
                                 f"{self.operator.log_tail(60)}")
        figures.cold_p50, figures.cold_p95 = statistics.median(figures.cold), \
            nearest_rank(figures.cold, 0.95)
        figures.pool_p50, figures.pool_p95 = statistics.median(figures.pool), \
            nearest_rank(figures.pool, 0.95)
        figures.speedup_p50 = figures.cold_p50 / figures.pool_p50


def measure(runs: int, boot_delay: float) -> Figures:
    work = Path(tempfile.mkdtemp(prefix="reef-is-"))
    bench = StartBench(work, boot_delay)
    figures = Figures(runs, boot_delay, runs)
    try:
        bench.measure(figures)
        return figures
    finally:
        bench.close()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instant_start")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--boot-delay", type=float, default=10.0,
                        help="seconds the simulator takes to boot a VM (default %(default)s)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    try:
        figures = measure(args.runs, args.boot_delay)
    except BenchError as error:
        print(f"bench.instant_start: {error}", file=sys.stderr)
        return 1
    print(f"create→Idle, simulator boot delay {figures.boot_delay:.1f}s, "
          f"{figures.runs} lieutenants each")
    print(f"  {'':<22}{'p50':>8}{'p95':>8}")
    print(f"  {'cold (own VM)':<22}{figures.cold_p50:>7.2f}s{figures.cold_p95:>7.2f}s")
    print(f"  {f'warm pool of {figures.pool_size}':<22}"
          f"{figures.pool_p50:>7.2f}s{figures.pool_p95:>7.2f}s")
    verdict = "met" if figures.speedup_p50 >= TARGET else "NOT met"
    print(f"  pool is {figures.speedup_p50:.1f}x faster at p50 (target >= {TARGET:.0f}x: "
          f"{verdict})")
    if args.json:
        args.json.write_text(json.dumps(asdict(figures), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
