"""The README's first command, run the way a person runs it (on its own control plane)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.controlplane


def test_demo_boots_pauses_resumes_and_deletes_a_vm_tree(tmp_path: Path,
                                                       control_plane: object) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "reef_operator.demo", "--state-dir", str(tmp_path / "cp")],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    steps = ["=== declare a lieutenant's VM", "=== pause the root", "=== resume it",
             "=== delete the root"]
    positions = [out.index(s) for s in steps]
    assert positions == sorted(positions)
    assert "REEF_NODE='api'" in out                      # the boot script ran on the VM
    assert "api-worker-1   Booted" in out                # Events were recorded
    assert "Local VMs left on disk: none" in out
    assert not (tmp_path / "cp").exists()                # the control plane was torn down
