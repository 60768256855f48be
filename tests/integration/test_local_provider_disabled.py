"""In a pod the Local provider is off: a tenant's node asking for it is Stalled, never run.

The operator runs as its own process with `KUBERNETES_SERVICE_HOST` set, as in any pod (it
still reaches the apiserver through its kubeconfig: there is no pod token to find). The
tenant may create VMNodes in its own namespace only, and does so as itself (impersonation).
A Vers node of the same tenant, created after the Local one, becomes Ready: the operator
acted meanwhile, so the Local node's Stalled condition is its answer, not a pass not yet run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reef_devkit.controlplane import LocalControlPlane
from reef_devkit.operator_process import OperatorProcess, simulator_env
from reef_devkit.versim.harness import VersSimulator
from reef_operator.constants import GROUP, VERSION
from reef_operator.kube.conditions import find_condition
from tests.conftest import Kube, as_tenant, wait_for

pytestmark = pytest.mark.controlplane

VERS_PROFILE = "disabled-test-vers"
LOCAL_PROFILE = "disabled-test-local"
TENANT = "tenant-b"


@pytest.fixture(scope="module")
def profiles(admin: Kube) -> Iterator[None]:
    bodies: list[dict[str, Any]] = [
        {"apiVersion": f"{GROUP}/{VERSION}", "kind": "BootProfile",
         "metadata": {"name": VERS_PROFILE},
         "spec": {"provider": "Vers", "category": "Agent", "agent": {"install": False}}},
        {"apiVersion": f"{GROUP}/{VERSION}", "kind": "BootProfile",
         "metadata": {"name": LOCAL_PROFILE},
         "spec": {"provider": "Local", "category": "Agent", "agent": {"install": False},
                  "bootScript": "touch $HOME/booted"}},
    ]
    for body in bodies:
        admin.custom.create_cluster_custom_object(GROUP, VERSION, "bootprofiles", body)
    yield
    for body in bodies:
        admin.custom.delete_cluster_custom_object(GROUP, VERSION, "bootprofiles",
                                                  body["metadata"]["name"])


@pytest.fixture(scope="module")
def operator(control_plane: LocalControlPlane, versim: VersSimulator, profiles: None,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    local_root = tmp_path_factory.mktemp("local-vms")
    process = OperatorProcess(
        control_plane.operator_kubeconfig,
        tmp_path_factory.mktemp("operator") / "operator.log",
        {**simulator_env(versim), "KUBERNETES_SERVICE_HOST": "10.96.0.1",
         "REEF_LOCAL_ROOT": str(local_root)},
    )
    process.start()
    yield process
    process.stop()
    # Nothing was ever created under the Local root.
    assert list(Path(local_root).iterdir()) == []


@pytest.fixture
def tenant(admin: Kube, namespace: str) -> Kube:
    """A user who may manage lieutenants and VMNodes in `namespace` and nothing else."""
    return as_tenant(admin, namespace, TENANT, ["vmnodes", "lieutenants"],
                     ["get", "list", "watch", "create", "delete"])


def _node(name: str, profile: str) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VMNode", "metadata": {"name": name},
            "spec": {"profileRef": {"name": profile}}}


def test_a_local_node_is_stalled_with_provider_disabled_in_a_pod(
    admin: Kube, tenant: Kube, namespace: str, operator: OperatorProcess
) -> None:
    tenant.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "vmnodes",
                                                  _node("local", LOCAL_PROFILE))
    tenant.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "vmnodes",
                                                  _node("control", VERS_PROFILE))
    wait_for(lambda: find_condition(tenant.get("vmnodes", "control", namespace), "Ready")
             .get("status") == "True", what="the Vers control node Ready", operator=operator)

    node = wait_for(lambda: (lambda obj: obj if find_condition(obj, "Stalled").get("reason")
                             == "ProviderDisabled" else None)(
                        tenant.get("vmnodes", "local", namespace)),
                    what="the Local node Stalled", operator=operator)
    stalled = find_condition(node, "Stalled")
    assert stalled["status"] == "True"
    assert find_condition(node, "Ready")["status"] == "False"
    message = stalled["message"]
    assert "Local provider is disabled in this operator" in message
    assert "REEF_LOCAL_PROVIDER=disabled" in message
    assert "operator's identity" in message
    assert "vmId" not in node.get("status", {})


def test_a_lieutenant_on_a_local_profile_says_why_it_cannot_start(
    tenant: Kube, namespace: str, operator: OperatorProcess
) -> None:
    tenant.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "lieutenants", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Lieutenant", "metadata": {"name": "dev"},
        "spec": {"role": "r", "profileRef": {"name": LOCAL_PROFILE}}})

    def stalled() -> dict[str, Any] | None:
        found = tenant.get("lieutenants", "dev", namespace)
        return found if find_condition(found, "Stalled").get("reason") == "ProviderDisabled" \
            else None

    lieutenant = wait_for(stalled, what="the lieutenant Stalled", operator=operator)
    message = find_condition(lieutenant, "Stalled")["message"]
    assert message.startswith("VMNode dev: ")
    assert "Local provider is disabled in this operator" in message
    assert find_condition(lieutenant, "Ready")["status"] == "False"
