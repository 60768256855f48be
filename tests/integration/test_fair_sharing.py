"""Two tenants share one operator: a burst in one namespace does not hold back another's node.

Real apiserver, the Vers simulator and the operator as its own process with a platform rate
limit low enough that its queue decides the order. Each tenant may create VMNodes in its
own namespace only (impersonated users with a Role there). Orders are compared, not times:
the lone node in namespace B comes Ready before namespace A's burst has finished, and the
burst then finishes too (the operator kept serving A meanwhile).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any, cast

import pytest
from kubernetes import client

from reef_devkit.controlplane import LocalControlPlane
from reef_devkit.operator_process import OperatorProcess, simulator_env
from reef_devkit.versim.harness import VersSimulator
from reef_operator.constants import GROUP, VERSION
from reef_operator.kube.conditions import find_condition
from tests.conftest import Kube, as_tenant, wait_for

pytestmark = pytest.mark.controlplane

BURST = 12
PROFILE = "fair-sharing"


@pytest.fixture(scope="module")
def operator(control_plane: LocalControlPlane, versim: VersSimulator, admin: Kube,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    admin.custom.create_cluster_custom_object(GROUP, VERSION, "bootprofiles", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "BootProfile",
        "metadata": {"name": PROFILE},
        "spec": {"provider": "Vers", "agent": {"install": False}}})
    process = OperatorProcess(control_plane.operator_kubeconfig,
                              tmp_path_factory.mktemp("operator") / "operator.log",
                              {**simulator_env(versim), "REEF_PLATFORM_RATE": "4",
                               "REEF_PLATFORM_BURST": "1"})
    process.start()
    yield process
    process.stop()
    admin.custom.delete_cluster_custom_object(GROUP, VERSION, "bootprofiles", PROFILE)


@pytest.fixture
def tenants(admin: Kube) -> Iterator[dict[str, Kube]]:
    """Two namespaces, each with a user who may manage VMNodes there and nowhere else."""
    found: dict[str, Kube] = {}
    names = []
    for tenant in ("burst", "lone"):
        namespace = f"t-fair-{tenant}-{uuid.uuid4().hex[:6]}"
        names.append(namespace)
        admin.core.create_namespace(client.V1Namespace(
            metadata=client.V1ObjectMeta(name=namespace)))
        found[namespace] = as_tenant(admin, namespace, f"tenant-{tenant}", ["vmnodes"],
                                     ["create", "get", "list"])
    yield found
    for namespace in names:
        admin.core.delete_namespace(namespace)


def _create(tenant: Kube, namespace: str, name: str) -> None:
    tenant.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "vmnodes", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "VMNode", "metadata": {"name": name},
        "spec": {"profileRef": {"name": PROFILE}}})


def _ready(tenant: Kube, namespace: str) -> set[str]:
    listed = cast(dict[str, Any], tenant.custom.list_namespaced_custom_object(
        GROUP, VERSION, namespace, "vmnodes"))
    return {item["metadata"]["name"] for item in listed["items"]
            if find_condition(item, "Ready").get("status") == "True"}


def test_a_lone_node_is_not_held_back_by_another_namespace_burst(
        tenants: dict[str, Kube], operator: OperatorProcess) -> None:
    (burst_ns, burst), (lone_ns, lone) = tenants.items()
    with pytest.raises(client.ApiException) as refused:
        _create(lone, burst_ns, "intruder")
    assert refused.value.status == 403, "a tenant reached another tenant's namespace"

    for i in range(BURST):
        _create(burst, burst_ns, f"node-{i}")
    _create(lone, lone_ns, "lone")

    wait_for(lambda: _ready(lone, lone_ns) == {"lone"}, 120, "the lone VMNode Ready", operator)
    burst_ready_then = len(_ready(burst, burst_ns))
    wait_for(lambda: len(_ready(burst, burst_ns)) == BURST, 180,
             "the whole burst Ready", operator)
    assert burst_ready_then < BURST // 2, (
        f"{burst_ready_then} of {BURST} VMNodes of the other namespace came Ready before the "
        "lone one")
