"""A VM belongs to one namespace: a tenant with reef rights in namespace B only points its
VMNodes at namespace A's VM (by spec.vmId, with ownerReferences naming A's node) and at an
unlabelled VM; the operator refuses each, and A's VM keeps running, unpaused, undeleted and
unsnapshotted after B destroys and deletes its object.

Real apiserver and kube-controller-manager, the operator as its own process, the Vers
simulator; the tenant is the user `tenant-b`, impersonated through the admin kubeconfig,
with a Role on reef objects in B only.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from reef_devkit.controlplane import LocalControlPlane
from reef_devkit.operator_process import OperatorProcess, simulator_env
from reef_devkit.versim.harness import VersSimulator
from reef_operator.constants import GROUP, VERSION
from reef_operator.kube.conditions import find_condition
from reef_operator.providers.vers.client import VersClient
from tests.conftest import Kube, as_tenant, wait_for

pytestmark = pytest.mark.controlplane

PROFILE = "test-tenant-vers"
TENANT = "tenant-b"
# The one namespace the operator lets adopt unlabelled VMs (REEF_ADOPTION_NAMESPACES).
ADOPTING = f"adopting-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def profile(admin: Kube) -> Iterator[None]:
    admin.custom.create_cluster_custom_object(GROUP, VERSION, "bootprofiles", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "BootProfile",
        "metadata": {"name": PROFILE},
        "spec": {"provider": "Vers", "category": "Agent", "agent": {"install": False},
                 "bootScript": "echo booted > $HOME/booted"}})
    yield
    admin.custom.delete_cluster_custom_object(GROUP, VERSION, "bootprofiles", PROFILE)


@pytest.fixture(scope="module")
def operator(control_plane: LocalControlPlane, versim: VersSimulator, profile: None,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    process = OperatorProcess(
        control_plane.operator_kubeconfig,
        tmp_path_factory.mktemp("operator") / "operator.log",
        {**simulator_env(versim), "REEF_DEFAULT_PROFILE": PROFILE,
         "REEF_ADOPTION_NAMESPACES": ADOPTING},
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture
def namespace_b(admin: Kube) -> Iterator[str]:
    """Namespace B, where `tenant-b` may do anything with reef objects (and nothing else)."""
    name = f"tenant-b-{uuid.uuid4().hex[:6]}"
    admin.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    admin.core.delete_namespace(name)


@pytest.fixture
def adopting(admin: Kube) -> Iterator[str]:
    admin.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ADOPTING)))
    yield ADOPTING
    admin.core.delete_namespace(ADOPTING)


@pytest.fixture
def tenant(admin: Kube, namespace_b: str) -> client.CustomObjectsApi:
    return as_tenant(admin, namespace_b, TENANT).custom


def _node(name: str, **spec: Any) -> dict[str, Any]:
    spec.setdefault("profileRef", {"name": PROFILE})
    spec.setdefault("heartbeat", {"intervalSeconds": 5, "staleAfterSeconds": 10})
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VMNode",
            "metadata": {"name": name}, "spec": spec}


def _ready(admin: Kube, namespace: str, name: str) -> Any:
    def check() -> dict[str, Any] | None:
        obj = admin.get("vmnodes", name, namespace)
        return obj if find_condition(obj, "Ready").get("status") == "True" else None
    return check


def _stalled(admin: Kube, namespace: str, name: str, reason: str) -> Any:
    """The node's Stalled condition, once it has the reason for the current generation."""
    def check() -> dict[str, Any] | None:
        obj = admin.get("vmnodes", name, namespace)
        stalled = find_condition(obj, "Stalled")
        current = (obj.get("status") or {}).get("observedGeneration") == \
            obj["metadata"]["generation"]
        return stalled if current and stalled.get("status") == "True" and \
            stalled.get("reason") == reason else None
    return check


def _gone(admin: Kube, namespace: str, name: str) -> Any:
    def check() -> bool:
        try:
            admin.get("vmnodes", name, namespace)
        except ApiException as error:
            return bool(error.status == 404)
        return False
    return check


def _sim_vm(versim: VersSimulator, vm_id: str) -> dict[str, Any]:
    [vm] = [vm for vm in versim.vms() if vm["vm_id"] == vm_id]
    return vm


def _commits_of(versim: VersSimulator, vm_id: str) -> list[str]:
    async def listed() -> list[str]:
        async with VersClient(versim.base_url, versim.api_key) as vers:
            page = await vers.list_commits(limit=1000)
        return [c.commit_id for c in page.commits if c.parent_vm_id == vm_id]
    return asyncio.run(listed())


def _unlabelled_vm(versim: VersSimulator) -> str:
    async def made() -> str:
        async with VersClient(versim.base_url, versim.api_key) as vers:
            return str(await vers.new_root())
    return asyncio.run(made())


def test_a_tenant_cannot_take_over_another_namespaces_vm(
    admin: Kube, namespace: str, namespace_b: str, tenant: client.CustomObjectsApi,
    operator: OperatorProcess, versim: VersSimulator,
) -> None:
    admin.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "vmnodes",
                                                 _node("a"))
    node_a = wait_for(_ready(admin, namespace, "a"), what="A's node Ready", operator=operator)
    vm_a = node_a["status"]["vmId"]
    with pytest.raises(ApiException) as refused:
        tenant.get_namespaced_custom_object(GROUP, VERSION, namespace, "vmnodes", "a")
    assert refused.value.status == 403  # the tenant has no rights in A

    # B's node names A's VM and asks for a pause and checkpoints.
    tenant.create_namespaced_custom_object(GROUP, VERSION, namespace_b, "vmnodes", _node(
        "a", vmId=vm_a, state="Paused", checkpoints={"intervalSeconds": 10, "retain": 1}))
    stalled = wait_for(_stalled(admin, namespace_b, "a", "VMOwnedElsewhere"),
                       what="B's node Stalled VMOwnedElsewhere", operator=operator)
    assert f"VM {vm_a} belongs to namespace {namespace!r}" in stalled["message"]
    assert "vmId" not in admin.get("vmnodes", "a", namespace_b)["status"]

    # Destroyed: the operator acts on the new generation and still refuses.
    tenant.patch_namespaced_custom_object(GROUP, VERSION, namespace_b, "vmnodes", "a",
                                          {"spec": {"state": "Destroyed"}})
    wait_for(_stalled(admin, namespace_b, "a", "VMOwnedElsewhere"),
             what="Destroyed seen and refused", operator=operator)
    tenant.delete_namespaced_custom_object(GROUP, VERSION, namespace_b, "vmnodes", "a")
    wait_for(_gone(admin, namespace_b, "a"), what="B's node gone (finalizer done)",
             operator=operator)

    # A node whose ownerReferences name A's node (and A's uid) gains nothing either: the
    # garbage collector may delete it (an owner in another namespace is invalid), and
    # its finalizer releases nothing.
    claimed = _node("b", vmId=vm_a, state="Destroyed")
    claimed["metadata"]["ownerReferences"] = [{
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "VMNode", "name": "a",
        "uid": node_a["metadata"]["uid"], "controller": True}]
    tenant.create_namespaced_custom_object(GROUP, VERSION, namespace_b, "vmnodes", claimed)
    stalled_or_gone = _stalled(admin, namespace_b, "b", "VMOwnedElsewhere")
    wait_for(lambda: _gone(admin, namespace_b, "b")() or stalled_or_gone(),
             what="the claiming node refused or collected", operator=operator)
    try:
        tenant.delete_namespaced_custom_object(GROUP, VERSION, namespace_b, "vmnodes", "b")
    except ApiException as error:
        assert error.status == 404
    wait_for(_gone(admin, namespace_b, "b"), what="claiming node gone", operator=operator)

    vm = _sim_vm(versim, vm_a)
    assert not vm["deleted"] and vm["state"] == "running"
    assert vm["labels"][f"{GROUP}/namespace"] == namespace
    assert _commits_of(versim, vm_a) == []
    assert find_condition(admin.get("vmnodes", "a", namespace), "Ready")["status"] == "True"


def test_an_unlabelled_vm_is_adopted_only_where_the_setting_allows(
    admin: Kube, namespace_b: str, adopting: str, tenant: client.CustomObjectsApi,
    operator: OperatorProcess, versim: VersSimulator,
) -> None:
    stray = _unlabelled_vm(versim)
    tenant.create_namespaced_custom_object(GROUP, VERSION, namespace_b, "vmnodes",
                                           _node("stray", vmId=stray, state="Paused"))
    stalled = wait_for(_stalled(admin, namespace_b, "stray", "VMOwnedElsewhere"),
                       what="unlabelled VM refused in B", operator=operator)
    assert "REEF_ADOPTION_NAMESPACES" in stalled["message"]
    tenant.delete_namespaced_custom_object(GROUP, VERSION, namespace_b, "vmnodes", "stray")
    wait_for(_gone(admin, namespace_b, "stray"), what="B's node gone", operator=operator)
    vm = _sim_vm(versim, stray)
    assert not vm["deleted"] and vm["state"] == "running" and not vm["labels"]

    # Where adoption is allowed the VM is labelled for the adopting node.
    admin.custom.create_namespaced_custom_object(GROUP, VERSION, adopting, "vmnodes",
                                                 _node("adopter", vmId=stray))
    node = wait_for(_ready(admin, adopting, "adopter"), what="adopted", operator=operator)
    labels = _sim_vm(versim, stray)["labels"]
    assert labels[f"{GROUP}/namespace"] == adopting
    assert labels[f"{GROUP}/uid"] == node["metadata"]["uid"]


def _checkpoints(admin: Kube, namespace: str, name: str) -> list[str]:
    status = admin.get("vmnodes", name, namespace).get("status") or {}
    return [c["commitId"] for c in status.get("checkpoints") or []]


def _all_commits(versim: VersSimulator) -> set[str]:
    async def listed() -> set[str]:
        async with VersClient(versim.base_url, versim.api_key) as vers:
            return {c.commit_id for c in (await vers.list_commits(limit=1000)).commits}
    return asyncio.run(listed())


def test_a_tenant_can_neither_boot_nor_rotate_away_another_namespaces_checkpoint(
    admin: Kube, namespace: str, namespace_b: str, tenant: client.CustomObjectsApi,
    operator: OperatorProcess, versim: VersSimulator,
) -> None:
    admin.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "vmnodes", _node(
        "a", checkpoints={"intervalSeconds": 600, "retain": 5}))
    [theirs] = wait_for(lambda: _checkpoints(admin, namespace, "a"), what="A's checkpoint",
                        operator=operator)

    tenant.create_namespaced_custom_object(GROUP, VERSION, namespace_b, "vmnodes", _node(
        "thief", source={"commitId": theirs}))
    stalled = wait_for(_stalled(admin, namespace_b, "thief", "CommitNotAllowed"),
                       what="boot from A's checkpoint refused", operator=operator)
    assert f"source.commitId {theirs}" in stalled["message"]
    assert "vmId" not in admin.get("vmnodes", "thief", namespace_b)["status"]

    # B's own node rotates its checkpoints with A's slipped into its status as the oldest.
    tenant.create_namespaced_custom_object(GROUP, VERSION, namespace_b, "vmnodes", _node(
        "rot", checkpoints={"intervalSeconds": 10, "retain": 1}))
    [own] = wait_for(lambda: _checkpoints(admin, namespace_b, "rot"), what="B's checkpoint",
                     operator=operator)
    tenant.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace_b, "vmnodes", "rot", {"status": {"checkpoints": [
            {"commitId": theirs, "createdAt": "2020-01-01T00:00:00Z"},
            {"commitId": own, "createdAt": "2020-01-01T00:00:01Z"}]}})
    # Rotation ran once B's own older checkpoint is gone from the platform.
    wait_for(lambda: own not in _all_commits(versim), within=90,
             what="B's rotation deleting its own old checkpoint", operator=operator)
    assert theirs in _all_commits(versim)
    assert theirs not in _checkpoints(admin, namespace_b, "rot")
