"""`reef-operator dev up|down|env|status` as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from reef_devkit.controlplane.processes import port_listening

pytestmark = pytest.mark.controlplane


def _dev(state_dir: Path, action: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reef_operator", "dev", action, "--state-dir", str(state_dir)],
        capture_output=True, text=True, timeout=300,
    )


def _pids(status_output: str) -> dict[str, int]:
    pids = {}
    for line in status_output.splitlines():
        component, rest = line.split(None, 1)
        if "pid" in rest:
            pids[component] = int(rest.split("pid ")[1].rstrip(")"))
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"


def test_up_is_idempotent_self_healing_and_down_leaves_nothing(
    tmp_path: Path, control_plane: object
) -> None:
    state = tmp_path / "dev"
    first = _dev(state, "up")
    assert first.returncode == 0, first.stderr
    kubeconfig = state / "kubeconfig"
    assert first.stdout.strip() == f"export KUBECONFIG={kubeconfig}"
    pids = _pids(_dev(state, "status").stdout)
    assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager"}
    ports = json.loads((state / "state.json").read_text())["ports"]
    try:
        second = _dev(state, "up")
        assert second.returncode == 0, second.stderr
        assert _pids(_dev(state, "status").stdout) == pids, "second up restarted something"

        env = _dev(state, "env").stdout.splitlines()
        assert env[0] == f"export KUBECONFIG={kubeconfig}"
        shell = subprocess.run(
            ["bash", "-c", f"eval \"$({sys.executable} -m reef_operator dev env "
             f"--state-dir {state})\"; kubectl version --short; "
             "kubectl get lieutenants,vmnodes,bootprofiles -A"],
            capture_output=True, text=True, timeout=60,
        )
        assert shell.returncode == 0, shell.stderr
        assert "Server Version: v1.20.2" in shell.stdout
        for profile in ("full", "swarm", "lightweight", "infra", "local"):
            assert f"bootprofile.reef.vers.sh/{profile}" in shell.stdout  # shipped defaults

        # A component that died is started again by the next `up`, on the same port.
        os.killpg(pids["kube-apiserver"], signal.SIGKILL)
        healed = _dev(state, "up")
        assert healed.returncode == 0, healed.stderr
        new_pids = _pids(_dev(state, "status").stdout)
        assert new_pids["kube-apiserver"] != pids["kube-apiserver"]
        assert new_pids["etcd"] == pids["etcd"]
        assert port_listening(ports["apiserver"])
        pids = new_pids
    finally:
        down = _dev(state, "down")
    assert down.returncode == 0, down.stderr
    assert [c for c, pid in pids.items() if _alive(pid)] == []
    assert [p for p in ports.values() if port_listening(p)] == []
    assert not state.exists()


def test_up_fails_loudly_when_its_port_is_taken(tmp_path: Path, control_plane: object) -> None:
    state = tmp_path / "dev"
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        state.mkdir()
        (state / "state.json").write_text(json.dumps(
            {"ports": {"etcd_client": _free(), "etcd_peer": _free(), "apiserver": taken}}))
        try:
            result = _dev(state, "up")
        finally:
            _dev(state, "down")
    assert result.returncode == 1
    assert f"cannot start kube-apiserver: port {taken} is taken" in result.stderr


def test_commands_without_a_control_plane_say_so(tmp_path: Path) -> None:
    result = _dev(tmp_path / "nothing-here", "env")
    assert result.returncode == 1
    assert "no local control plane" in result.stderr and "reef-operator dev up" in result.stderr


def _free() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
