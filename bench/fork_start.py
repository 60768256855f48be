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
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.errors import BenchError
from bench.long_session import nearest_rank
from bench.rig import SimulatorRig

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


class ForkBench(SimulatorRig):
    def __init__(self, work: Path, boot_delay: float) -> None:
        super().__init__(work, SCRIPT, boot_delay=boot_delay, metrics=True)

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
