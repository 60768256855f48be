"""The README's first command, run the way a person runs it (on its own control plane)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.controlplane


def test_demo_runs_the_tutorial_from_a_clean_state(tmp_path: Path,
                                                   control_plane: object) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("ANTHROPIC_API_KEY", "VERS_API_KEY", "KUBECONFIG")}
    result = subprocess.run(
        [sys.executable, "-m", "reef_devkit.demo", "--state-dir", str(tmp_path / "cp"),
         "--dashboard-port", "0"],
        capture_output=True, text=True, timeout=900, env=env,
    )
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr[-3000:]
    assert "using the SCRIPTED model server" in out          # it says which model it uses
    assert "dashboard for namespace reef-demo at http://127.0.0.1:" in out
    steps = ["=== 3. create the lieutenant", "=== 4. task 1", "=== 5. task 2", "=== 6. task 3",
             "=== 7. how the work evolved", "=== 9. pause", "=== 10. resume", "=== 11. steer",
             "=== 13. destroy"]
    positions = [out.index(s) for s in steps]
    assert positions == sorted(positions)
    # The three dependent tasks answered in one conversation (the scripted model refuses
    # task 2 and 3 unless their request carries the earlier tasks).
    history = out[out.index("=== 7."):out.index("=== 8.")]
    for n, task in enumerate(("scaffold", "database", "users"), start=1):
        assert f"=== Response {n} ===\n(task {task}, stop)" in history
    assert "a pg Pool built from DATABASE_URL in the config I wrote" in history
    assert "=== Current (idle) ===" in history
    # The files are on the lieutenant's VM, read back through the plugin.
    files = out[out.index("=== 8."):out.index("=== 9.")]
    assert "workspace/api/src/routes/users.ts" in files
    assert "new Pool({ connectionString: DATABASE_URL })" in files
    # kubectl get lieutenants at each step, as a person would see it.
    assert _row(out, "=== 9.", "api ") .split()[1] == "Paused"
    assert _row(out, "=== 10.", "api ").split()[1] == "Idle"
    steer = out[out.index("=== 11."):out.index("=== 12.")]
    assert "(task no-prisma, stop)\nUnderstood: no Prisma." in steer
    assert "api-worker-1 [Swarm]" in out and "  + test-runner" in out   # tree and diff
    found = out[out.index("$ kubectl reef -n reef-demo tree --capability npm"):]
    assert found.splitlines()[2].startswith("└── api-worker-1 [Swarm]")  # below its parent
    assert _row(out, "=== 13.", "api ").split()[1] == "Destroyed"
    # A lieutenant that leads: its agent spawned a worker below it, was refused a second
    # (maxChildren 1), and the worker went with it.
    lead = out[out.index("=== 14. a lieutenant that leads"):]
    assert "Spawned lead-worker-1 below me" in lead
    assert "VMNode api: the agent of lieutenant lead may only touch objects whose " \
           "spec.parentRef.name is lead (its own children); this one's is not set" in lead
    tree = lead[lead.index("$ kubectl reef -n reef-demo tree"):].splitlines()
    top = next(i for i, line in enumerate(tree) if line.startswith("lead [Lieutenant]"))
    assert tree[top + 1].startswith("└── lead-worker-1 [Swarm]")
    remaining = lead[lead.index("$ kubectl get vmnodes"):]
    assert "lead-worker-1" not in remaining
    assert "control plane stopped" in out
    assert not (tmp_path / "cp").exists()                # the control plane was torn down


def _row(out: str, after: str, prefix: str) -> str:
    """The first `kubectl get lieutenants` row after a heading."""
    section = out[out.index(after):]
    table = section[section.index("$ kubectl get lieutenants"):]
    return next(line for line in table.splitlines() if line.startswith(prefix))
