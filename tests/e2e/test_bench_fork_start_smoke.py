"""The fork benchmark run small, as a smoke test: it runs end to end on the Vers simulator
and measures each figure.

The figures are printed, not asserted (machines here are shared and noisy); what is
asserted is that every fork reached Idle after exactly one snapshot of its source (the
script exits non-zero otherwise) and that each figure was measured.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.controlplane

REPO = Path(__file__).resolve().parents[2]


def test_fork_start_benchmark_runs_and_measures(tmp_path: Path, control_plane: object) -> None:
    figures_file = tmp_path / "fork-start.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.fork_start", "--runs", "2", "--boot-delay", "0.5",
         "--json", str(figures_file)],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    print(result.stdout)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    figures = json.loads(figures_file.read_text())
    assert figures["runs"] == 2 and figures["boot_delay"] == 0.5
    assert len(figures["forks"]) == 2 and len(figures["pauses"]) == 2
    # A fork boots a VM: the simulator's boot delay is part of its time to Idle.
    assert figures["fork_p50"] >= 0.5, figures
    assert 0 < figures["pause_p50"] <= figures["pause_p95"] < figures["fork_p50"], figures
    assert "fork-to-Idle" in result.stdout and "pause for the commit" in result.stdout
