"""The instant-start benchmark run tiny, as a smoke test: it runs end to end on the Vers
simulator and measures each figure.

The figures are printed, not asserted (machines here are shared and noisy); what is
asserted is that every lieutenant reached Idle, each pooled one on a VM from the pool
(the script exits non-zero otherwise), and that each figure was measured.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.controlplane

REPO = Path(__file__).resolve().parents[2]


def test_instant_start_benchmark_runs_and_measures(tmp_path: Path, control_plane: object) -> None:
    figures_file = tmp_path / "instant-start.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.instant_start", "--runs", "2", "--boot-delay", "1",
         "--json", str(figures_file)],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    print(result.stdout)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    figures = json.loads(figures_file.read_text())
    assert (figures["runs"], figures["boot_delay"], figures["pool_size"]) == (2, 1.0, 2)
    assert len(figures["cold"]) == len(figures["pool"]) == 2, figures
    # A cold lieutenant waited for its VM to boot: the simulator's delay is part of it.
    assert figures["cold_p50"] >= 1.0, figures
    assert 0 < figures["pool_p50"] <= figures["pool_p95"], figures
    assert figures["speedup_p50"] == pytest.approx(figures["cold_p50"] / figures["pool_p50"])
    assert "cold (own VM)" in result.stdout and "warm pool of 2" in result.stdout
