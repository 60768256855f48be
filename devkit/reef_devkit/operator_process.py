"""Run `reef-operator run` as a real child process: start, SIGKILL, restart.

Tests, benchmarks and the demo use it so the operator they exercise is the
same program a user runs, with its own identity (the operator kubeconfig).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from reef_devkit.controlplane.processes import free_port
from reef_devkit.versim.harness import VersSimulator


def simulator_env(simulator: VersSimulator) -> dict[str, str]:
    """Configuration that points the operator at a Vers simulator."""
    return {
        "VERS_API_KEY": simulator.api_key.reveal(),
        "VERS_BASE_URL": simulator.base_url,
        "VERS_VM_DOMAIN": f"vm.{simulator.domain}",
        "VERS_SSH_PORT": str(simulator.tls_port),
        "VERS_SSH_CONNECT_HOST": "127.0.0.1",
        "VERS_TLS_VERIFY": str(simulator.ca_file),
    }


class OperatorProcess:
    """The operator with its health probes on a free loopback port; `metrics=True` serves
    /metrics on another, `log_format="json"` writes JSON lines."""

    def __init__(self, kubeconfig: Path, log_file: Path, env: Mapping[str, str],
                 namespaces: tuple[str, ...] = (), *, metrics: bool = False,
                 log_format: str = "text") -> None:
        self.kubeconfig = kubeconfig
        self.log_file = log_file
        self.env = dict(env)
        self.namespaces = namespaces
        self.metrics = metrics
        self.log_format = log_format
        self._process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.health_url = ""
        self.metrics_url = ""

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, wait: bool = True) -> None:
        health = f"127.0.0.1:{free_port()}"
        self.health_url = f"http://{health}"
        argv = [sys.executable, "-m", "reef_operator", "run", "--standalone",
                "--health-probe-bind-address", health, "--log-format", self.log_format,
                "--verbose"]
        if self.metrics:
            metrics = f"127.0.0.1:{free_port()}"
            self.metrics_url = f"http://{metrics}/metrics"
            argv += ["--metrics-bind-address", metrics]
        for namespace in self.namespaces:
            argv += ["--namespace", namespace]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "KUBECONFIG": str(self.kubeconfig),
            "PYTHONUNBUFFERED": "1",
            **self.env,
        }
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            log.write(f"--- start {self.starts + 1}\n".encode())
            self._process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, env=env)
        self.starts += 1
        if wait:
            self.wait_ready()

    def wait_ready(self, within: float = 60.0) -> None:
        """Until /readyz answers 200: kopf's startup (configuration, providers, the
        initial listing) is done and the apiserver answers."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"operator exited ({self._process.returncode}):\n"
                                   + self.log_tail())
            try:
                if httpx.get(f"{self.health_url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("operator not ready in time:\n" + self.log_tail())

    def kill(self) -> None:
        """SIGKILL: no cleanup, exactly like a crash or an OOM kill."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait()

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> None:
        self.kill()
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"
