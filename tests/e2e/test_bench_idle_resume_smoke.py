"""The idle-resume benchmark run tiny, as a smoke test: it runs end to end on the Vers
simulator and measures each figure.

The figures are printed, not asserted (machines here are shared and noisy); what is
asserted is that every task was answered after its resume (the script exits non-zero
otherwise) and that each figure was measured.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.controlplane

REPO = Path(__file__).resolve().parents[2]


def test_idle_resume_benchmark_runs_and_measures(tmp_path: Path, control_plane: object) -> None:
    figures_file = tmp_path / "idle-resume.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.idle_resume", "--runs", "2", "--window", "5",
         "--resume-delay", "0.5", "--idle-lieutenants", "1", "--json", str(figures_file)],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    print(result.stdout)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    figures = json.loads(figures_file.read_text())
    assert figures["runs"] == 2 and figures["resume_delay"] == 0.5
    # A resumed task waited for the resume: the simulator's delay is part of its latency.
    assert figures["paused_p50"] >= 0.5, figures
    assert 0 < figures["running_p50"] <= figures["running_p95"], figures
    assert figures["idle_lieutenants"] == 1 and figures["window_seconds"] == 5, figures
    assert figures["platform_calls_per_hour"] >= 0 and figures["kube_writes_per_hour"] >= 0
    assert "append→pi, idle-paused" in result.stdout and "idle cost" in result.stdout
