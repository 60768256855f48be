"""The scale benchmark at N=10, as a smoke test: it runs end to end and writes its figures.

The figures are printed, not asserted (machines here are shared and noisy); what is
asserted is that every lieutenant got Ready, answered and was deleted (the script
exits non-zero otherwise) and that each figure was measured.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.controlplane

REPO = Path(__file__).resolve().parents[2]


def test_scale_benchmark_runs_at_n10(tmp_path: Path, control_plane: object) -> None:
    figures = tmp_path / "scale.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.scale", "10", "--idle-window", "5",
         "--json", str(figures)], cwd=REPO, capture_output=True, text=True, timeout=900)
    print(result.stdout)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    [row] = json.loads(figures.read_text())
    assert row["n"] == 10 and not row["skipped"]
    measured = ("ceiling_seconds", "ready_all_seconds", "ready_p50", "tasks_all_seconds",
                "kube_writes_per_lifecycle", "status_patches_per_task",
                "platform_calls_per_lifecycle", "operator_peak_rss_mib",
                "operator_cpu_seconds")
    assert all(row[key] > 0 for key in measured), row
    assert "raw ceiling: create+status (s)" in result.stdout
