"""Running `kubectl reef` as a user does (its console script) in the e2e tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from reef_operator.constants import API_VERSION
from tests.conftest import Kube

PLUGIN = str(Path(sys.executable).parent / "kubectl-reef")


def reef(admin: Kube, *args: str, env: dict[str, str] | None = None,
         stdin: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PLUGIN, *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout,
                          env={**os.environ, "KUBECONFIG": str(admin.kubeconfig), **(env or {})})


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}{result.stdout}"
    return result.stdout


def failed(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert result.returncode == code, f"exit {result.returncode}: {result.stdout}"
    assert result.stderr.startswith("error: ") or code == 2, result.stderr
    return result.stderr


def create(admin: Kube, namespace: str, name: str = "api") -> None:
    """A lieutenant on a Local VM talking to the scripted model (the `scripted` fixture)."""
    out = ok(reef(admin, "-n", namespace, "create", name, "--role", "Build the API",
                  "--profile", "local", "--model", "scripted/scripted-1",
                  "--providers", "scripted-models", "--wait", "--timeout", "120"))
    assert out.splitlines() == [f"lieutenant/{name} created", f"lieutenant/{name} is ready"]


def spawn_worker(admin: Kube, namespace: str, lieutenant: str) -> str:
    """A Ready swarm VMNode `worker` (DNA: module test-runner, capability npm) below the
    lieutenant's VMNode, whose name is returned."""
    parent = str(admin.get("lieutenants", lieutenant, namespace)["status"]["vmNodeName"])
    admin.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump({
        "apiVersion": API_VERSION, "kind": "VMNode", "metadata": {"name": "worker"},
        "spec": {"category": "Swarm", "profileRef": {"name": "local"},
                 "parentRef": {"name": parent}, "modules": ["test-runner"],
                 "capabilities": ["npm"]}}))
    ok(reef(admin, "-n", namespace, "wait", "vmnode/worker", "--for=condition=Ready"))
    return parent
