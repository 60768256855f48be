"""The scale benchmark at N=10 lieutenants and N=5 VMNodes, as a smoke test: it runs end
to end and writes its figures.

The figures are printed, not asserted (machines here are shared and noisy); what is
asserted is that every object got Ready (and every lieutenant answered) and was deleted
(the script exits non-zero otherwise) and that each figure was measured.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.controlplane

REPO = Path(__file__).resolve().parents[2]
MEASURED_FOR_BOTH = ("ceiling_seconds", "ready_all_seconds", "ready_p50",
                     "kube_writes_per_lifecycle", "kube_writes_per_lifecycle_excl_task_events",
                     "events_per_lifecycle", "platform_calls_per_lifecycle",
                     "operator_peak_rss_mib", "operator_cpu_seconds", "vm_memory_mib",
                     "vm_cpu_seconds")
MEASURED_FOR_LIEUTENANTS = ("vm_ready_p50", "vm_ready_max", "vm_ready_all_seconds",
                            "agent_start_p50", "tasks_all_seconds", "status_patches_per_task")


def test_scale_benchmark_runs_lieutenants_and_vmnodes(tmp_path: Path,
                                                      control_plane: object) -> None:
    figures = tmp_path / "scale.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.scale", "10", "--vmnodes", "5", "--idle-window", "5",
         "--json", str(figures)], cwd=REPO, capture_output=True, text=True, timeout=900)
    print(result.stdout)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    lieutenants, vmnodes = json.loads(figures.read_text())

    assert (lieutenants["n"], lieutenants["kind"]) == (10, "lieutenants")
    assert not lieutenants["skipped"]
    measured = MEASURED_FOR_BOTH + MEASURED_FOR_LIEUTENANTS
    assert all(lieutenants[key] > 0 for key in measured), lieutenants
    # The VM is part of the time to Ready, so it cannot take longer than all of it.
    assert lieutenants["vm_ready_max"] <= lieutenants["ready_max"]
    assert (lieutenants["kube_writes_per_lifecycle_excl_task_events"]
            < lieutenants["kube_writes_per_lifecycle"])

    assert (vmnodes["n"], vmnodes["kind"]) == (5, "vmnodes (no agent)")
    assert not vmnodes["skipped"]
    assert all(vmnodes[key] > 0 for key in MEASURED_FOR_BOTH), vmnodes
    assert all(vmnodes[key] is None for key in MEASURED_FOR_LIEUTENANTS), vmnodes

    assert "raw ceiling: create+status (s)" in result.stdout
    assert "N=5 vmnodes" in result.stdout and "vmnodes (no agent)" in result.stdout
