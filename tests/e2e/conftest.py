"""Fixtures shared by the end-to-end lieutenant tests: the scripted model, Local VMs, waiting."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from reef_devkit.controlplane import LocalControlPlane
from reef_devkit.controlplane.processes import free_port
from reef_devkit.operator_process import OperatorProcess
from reef_devkit.scripted_model.harness import ScriptedModel
from reef_operator.constants import GROUP, VERSION
from reef_operator.providers.local import kill_every_vm
from tests.conftest import Kube


@pytest.fixture(scope="module")
def model(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScriptedModel]:
    """The scripted model, following the test module's SCRIPT."""
    with ScriptedModel(request.module.SCRIPT, tmp_path_factory.mktemp("model")) as scripted:
        yield scripted


@pytest.fixture
def scripted(admin: Kube, namespace: str, model: ScriptedModel) -> str:
    """A namespace with the scripted model's pi models.json in ConfigMap scripted-models."""
    admin.core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="scripted-models"),
        data={"models.json": model.models_json()}))
    return namespace


@pytest.fixture(scope="module")
def local_root() -> Iterator[Path]:
    """Where Local VMs live; short, because tmux socket paths are limited to 107 bytes."""
    root = Path(tempfile.mkdtemp(prefix="reef-e2e-"))
    yield root
    kill_every_vm(root)   # VMs of namespaces still being deleted when the module ends
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def operator(request: pytest.FixtureRequest, control_plane: LocalControlPlane,
             local_root: Path, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[OperatorProcess]:
    """The operator as its own process, with Local VMs under `local_root`, and serving its
    admission webhook when the test module sets WEBHOOK = True (modules that need more,
    such as the Vers simulator, define their own)."""
    env = {"REEF_LOCAL_ROOT": str(local_root)}
    if getattr(request.module, "WEBHOOK", False):
        env |= {"REEF_WEBHOOK_PORT": str(free_port()), "REEF_WEBHOOK_ADDR": "127.0.0.1"}
    process = OperatorProcess(control_plane.operator_kubeconfig,
                              tmp_path_factory.mktemp("operator") / "operator.log", env)
    process.start()
    yield process
    process.stop()


def wait_for(check: Callable[[], Any], within: float, what: str,
             operator: OperatorProcess, every: float = 0.5) -> Any:
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out: {what}; last {last!r}\n{operator.log_tail(80)}")


def scraped(operator: OperatorProcess, sample: str, **labels: str) -> float:
    """The sum of the operator's samples of that name with exactly these labels, as a
    scrape of its metrics endpoint reads them (the operator runs with metrics=True)."""
    text = httpx.get(operator.metrics_url, timeout=10).text
    return sum(s.value for family in text_string_to_metric_families(text)
               for s in family.samples if s.name == sample and s.labels == labels)


def apply_lieutenant(admin: Kube, namespace: str, name: str, tasks: list[dict[str, str]], *,
                     profile: str = "local", **spec: Any) -> None:
    """A lieutenant on the scripted model (the `scripted` fixture's providers ConfigMap),
    applied with kubectl as a person would; `spec` adds or overrides fields."""
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Lieutenant", "metadata": {"name": name},
            "spec": {"role": "Build the API", "profileRef": {"name": profile},
                     "model": {"provider": "scripted", "id": "scripted-1"},
                     "providersConfigMapRef": {"name": "scripted-models"},
                     "tasks": tasks, **spec}}
    admin.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(body))


def append_task(admin: Kube, namespace: str, name: str, task: dict[str, str]) -> None:
    """One more task at the end of the lieutenant's spec.tasks."""
    current = admin.get("lieutenants", name, namespace)["spec"].get("tasks", [])
    admin.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "lieutenants", name,
                                                {"spec": {"tasks": [*current, task]}})


@contextmanager
def vers_boot_profile(admin: Kube, name: str) -> Iterator[str]:
    """A Vers BootProfile for lieutenants whose golden image already carries pi (the
    host's, in the simulator), deleted afterwards."""
    admin.custom.create_cluster_custom_object(GROUP, VERSION, "bootprofiles", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "BootProfile", "metadata": {"name": name},
        "spec": {"provider": "Vers", "category": "Lieutenant", "agent": {"install": False}}})
    yield name
    admin.custom.delete_cluster_custom_object(GROUP, VERSION, "bootprofiles", name)
