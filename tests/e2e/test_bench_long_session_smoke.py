"""The long-session benchmark with tiny sessions, as a smoke test: it runs end to end,
prunes as it goes, and measures each figure.

The figures are printed, not asserted (machines here are shared and noisy); what is
asserted is that every task was answered (the script exits non-zero otherwise) and that
each figure was measured.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.controlplane

REPO = Path(__file__).resolve().parents[2]


def test_long_session_benchmark_runs_and_measures(tmp_path: Path, control_plane: object) -> None:
    figures = tmp_path / "long-session.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.long_session", "2", "4", "--json", str(figures)],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    print(result.stdout)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    sessions = json.loads(figures.read_text())
    assert [s["tasks"] for s in sessions] == [2, 4]
    for session in sessions:
        assert session["object_bytes_max"] >= session["object_bytes_last"] > 0, session
        assert session["status_patches_per_task"] > 0, session
        assert session["writes_per_task"] > session["status_patches_per_task"], session
        assert 0 < session["delivery_p50"] <= session["delivery_p95"], session
    assert "append→pi p50" in result.stdout
