"""How a scale run's figures are shown: one column per run, one row per figure, and the
same figures as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from bench.scale.meter import Result

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


def write_json(results: list[Result], path: Path) -> None:
    path.write_text(json.dumps([asdict(r) for r in results], indent=2))
