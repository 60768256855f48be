"""Run `reef-versim` as a child process and steer it: for tests, benchmarks and the demo."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from reef_devkit.versim.server import READY
from reef_operator.certificates import write_private
from reef_operator.secret import Secret


class VersSimulator:
    """A running simulator. Stop it with `stop()` (or use it as a context manager)."""

    def __init__(self, state_dir: Path, *, domain: str = "sim.vers.test",
                 boot_delay: float = 0.0, resume_delay: float = 0.0,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.state_dir = state_dir.absolute()
        self.domain = domain
        self.api_key = Secret("versim-" + secrets.token_hex(20))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        key_file = self.state_dir / "api-key"
        write_private(key_file, self.api_key.reveal())
        self.log_file = self.state_dir / "versim.log"
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "reef_devkit.versim",
                 "--state-dir", str(self.state_dir), "--domain", domain,
                 "--api-key-file", str(key_file), "--boot-delay", str(boot_delay),
                 "--resume-delay", str(resume_delay), *extra_args],
                stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True,
            )
        ready = self._await_ready()
        fields = ready.split()
        self.base_url = fields[fields.index("api") + 1].removesuffix("/api/v1")
        self.tls_port = int(fields[fields.index("tls") + 1].rsplit(":", 1)[1])
        self.ca_file = Path(fields[fields.index("ca") + 1])
        self._control = httpx.Client(
            base_url=self.base_url, timeout=30,
            headers={"Authorization": f"Bearer {self.api_key.reveal()}"})

    def _await_ready(self) -> str:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.startswith(READY):
            self._process.wait(timeout=10)
            raise RuntimeError(f"reef-versim did not start: {self.log_file.read_text()[-2000:]}")
        return line

    # -- controls -------------------------------------------------------------------------
    def request_counts(self) -> dict[str, int]:
        counts: dict[str, int] = self._get("/_sim/requests")["counts"]
        return counts

    def reset_request_counts(self) -> None:
        self._control.post("/_sim/requests/reset").raise_for_status()

    def set_faults(self, **faults: float | int) -> dict[str, Any]:
        answer = self._control.put("/_sim/faults", json=faults)
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result

    def vms(self) -> list[dict[str, Any]]:
        """Every VM the simulator knows, with internals (sshd port, directory, frozen)."""
        result: list[dict[str, Any]] = self._get("/_sim/vms")
        return result

    def commits(self) -> list[str]:
        """The ids of the commits the platform holds (its public API's list)."""
        answer: dict[str, Any] = self._get("/api/v1/commits?limit=1000")
        return [str(c["commit_id"]) for c in answer["commits"]]

    def vm_action(self, vm_id: str, action: str) -> None:
        self._control.post(f"/_sim/vms/{vm_id}/{action}").raise_for_status()

    def delete_vm(self, vm_id: str) -> None:
        """Delete the VM through the platform's API, as someone other than the operator
        would (behind its back)."""
        self._control.delete(f"/api/v1/vm/{vm_id}").raise_for_status()

    def cut_ssh(self, vm_id: str) -> int:
        """Kill the VM's sshd session processes: every SSH connection to it drops at once,
        as on a network cut (its sshd keeps listening). Returns how many were cut."""
        cut = 0
        for procs in Path("/sys/fs/cgroup").glob(f"**/versim-*/{vm_id}/cgroup.procs"):
            for pid in procs.read_text().split():
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                except FileNotFoundError:
                    continue
                if cmdline.startswith(b"sshd: root"):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
                    cut += 1
        return cut

    def tag(self, tag: str, commit_id: str) -> None:
        self._control.put(f"/_sim/tags/{tag}", json={"commit_id": commit_id}).raise_for_status()

    def _get(self, path: str) -> Any:
        answer = self._control.get(path)
        answer.raise_for_status()
        return answer.json()

    # -- lifecycle ------------------------------------------------------------------------
    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._control.close()
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def kill(self) -> None:
        """SIGKILL the simulator (its VMs die with it)."""
        os.kill(self._process.pid, signal.SIGKILL)
        self._process.wait()
        time.sleep(0.2)

    def __enter__(self) -> VersSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
