"""Warm pools: lieutenants take booted VMs from a VMPool instead of waiting for a boot.

A pool of 3; five lieutenants created at once (one kubectl apply) get the three warm VMs
and two fresh ones, no VM twice, and each answers its task on the VM it got; the pool
boots three more; `kubectl get vmpools` shows the counts; members whose VMs were deleted
behind the operator's back are replaced and never handed out; warm members count against
the namespace's maxRunningVMs, and a lieutenant taking one needs no room of its own.

Real apiserver, the operator as its own process, the Vers simulator with a boot delay,
real pi, the scripted model.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client

from reef_devkit.controlplane import LocalControlPlane
from reef_devkit.operator_process import OperatorProcess, simulator_env
from reef_devkit.scripted_model.harness import ScriptedModel
from reef_devkit.versim.harness import VersSimulator
from reef_operator.constants import ANNOTATION_CLAIMED_BY, GROUP, LABEL_POOL, VERSION
from reef_operator.kube.conditions import find_condition
from reef_operator.providers.vers.provider import LABEL_UID
from tests.conftest import Kube
from tests.e2e.conftest import vers_boot_profile, wait_for

pytestmark = pytest.mark.controlplane

PROFILE = "e2e-pool-vers"
POOL = "warm"
BOOT_DELAY = 4.0
SCRIPT = """
tasks:
  - match: "Pool task"
    steps:
      - text: "Done on my VM."
"""


@pytest.fixture(scope="module")
def slow_boot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VersSimulator]:
    with VersSimulator(tmp_path_factory.mktemp("versim"), boot_delay=BOOT_DELAY) as sim:
        yield sim


@pytest.fixture(scope="module")
def operator(control_plane: LocalControlPlane, slow_boot: VersSimulator,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    process = OperatorProcess(control_plane.operator_kubeconfig,
                              tmp_path_factory.mktemp("operator") / "operator.log",
                              {**simulator_env(slow_boot),
                               "REEF_LOCAL_ROOT": str(tmp_path_factory.mktemp("vms"))})
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def profile(admin: Kube) -> Iterator[str]:
    with vers_boot_profile(admin, PROFILE) as name:
        yield name


def pool_body(min_ready: int = 3) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VMPool", "metadata": {"name": POOL},
            "spec": {"profileRef": {"name": PROFILE}, "minReady": min_ready, "maxSize": 5,
                     # Quick heartbeats: a member whose VM is gone is found out in seconds.
                     "heartbeat": {"intervalSeconds": 5, "staleAfterSeconds": 10}}}


def lieutenant_body(name: str) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Lieutenant", "metadata": {"name": name},
            "spec": {"role": "Answer", "poolRef": {"name": POOL},
                     "model": {"provider": "scripted", "id": "scripted-1"},
                     "providersConfigMapRef": {"name": "models"},
                     "tasks": [{"name": "t1", "message": f"Pool task for {name}"}]}}


def pool_status(admin: Kube, namespace: str) -> dict[str, Any]:
    return dict(admin.get("vmpools", POOL, namespace).get("status") or {})


def members(admin: Kube, namespace: str) -> list[dict[str, Any]]:
    """The pool's members: unclaimed, not being deleted."""
    found: list[dict[str, Any]] = admin.custom.list_namespaced_custom_object(  # type: ignore[index]
        GROUP, VERSION, namespace, "vmnodes", label_selector=f"{LABEL_POOL}={POOL}")["items"]
    return [m for m in found if not m["metadata"].get("deletionTimestamp") and
            ANNOTATION_CLAIMED_BY not in (m["metadata"].get("annotations") or {})]


def ready_members(admin: Kube, namespace: str, count: int,
                  operator: OperatorProcess) -> list[dict[str, Any]]:
    def ready() -> list[dict[str, Any]] | None:
        status = pool_status(admin, namespace)
        found = members(admin, namespace)
        if (status.get("ready"), status.get("size"), len(found)) == (count, count, count) and \
                all(find_condition(m, "Ready").get("status") == "True" for m in found):
            return found
        return None
    result: list[dict[str, Any]] = wait_for(ready, 120, f"{count} ready members", operator)
    return result


def answered(admin: Kube, namespace: str, name: str, operator: OperatorProcess
             ) -> dict[str, Any]:
    status: dict[str, Any] = wait_for(
        lambda: (lambda s: s if [h.get("task") for h in s.get("history", [])] == ["t1"]
                 else None)(admin.get("lieutenants", name, namespace).get("status") or {}),
        240, f"{name} answered its task", operator)
    return status


def node_saying_pooled(admin: Kube, namespace: str, name: str,
                       operator: OperatorProcess) -> dict[str, Any]:
    def said() -> dict[str, Any] | None:
        node = admin.get("vmnodes", name, namespace)
        return node if find_condition(node, "Pooled") else None
    found: dict[str, Any] = wait_for(said, 30, f"{name}'s node says Pooled", operator)
    return found


def test_five_lieutenants_share_a_pool_of_three_and_the_pool_refills(
        admin: Kube, namespace: str, operator: OperatorProcess, model: ScriptedModel,
        slow_boot: VersSimulator, profile: str) -> None:
    admin.core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="models"), data={"models.json": model.models_json()}))
    admin.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(pool_body()))
    warm = {m["status"]["vmId"] for m in ready_members(admin, namespace, 3, operator)}

    names = [f"lt{n}" for n in range(5)]
    admin.kubectl("apply", "-n", namespace, "-f", "-",
                  stdin=yaml.safe_dump_all([lieutenant_body(name) for name in names]))
    vms = {name: answered(admin, namespace, name, operator)["vmId"] for name in names}

    assert len(set(vms.values())) == 5, f"a VM was handed out twice: {vms}"
    from_pool = {name for name, vm in vms.items() if vm in warm}
    assert len(from_pool) == 3, (vms, warm)
    for name in names:
        # The pass that took the VM writes Pooled as it ends (the VM went into the node's
        # status first, so pi may have answered before).
        node = node_saying_pooled(admin, namespace, name, operator)
        pooled = find_condition(node, "Pooled")
        assert (pooled.get("status"), pooled.get("reason")) == (
            ("True", "Claimed") if name in from_pool else ("False", "PoolEmpty")), (name, pooled)
        # The platform labels each VM for the lieutenant's own node: it is the node's now.
        labels = next(vm["labels"] for vm in slow_boot.vms() if vm["vm_id"] == vms[name])
        assert labels[LABEL_UID] == node["metadata"]["uid"]
    events = admin.core.list_namespaced_event(namespace).items
    said = {(e.involved_object.kind, e.involved_object.name, e.reason) for e in events}
    assert all(("Lieutenant", name, "PoolEmpty") in said for name in set(names) - from_pool)
    assert all(("Lieutenant", name, "Claimed") in said for name in from_pool)

    refilled = ready_members(admin, namespace, 3, operator)
    assert not {m["status"]["vmId"] for m in refilled} & set(vms.values())
    assert wait_for(lambda: pool_status(admin, namespace).get("claimed") == 3, 30,
                    "three claimed", operator)
    table = admin.kubectl("get", "vmpools", "-n", namespace).stdout
    header, row = table.splitlines()[:2]
    assert header.split()[:5] == ["NAME", "PROFILE", "READY", "CLAIMED", "SIZE"], table
    assert row.split()[:5] == [POOL, PROFILE, "3", "3", "3"], table

    # Deleting a lieutenant deletes the VM it took from the pool.
    taken = sorted(from_pool)[0]
    admin.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "lieutenants", taken)
    wait_for(lambda: all(vm["deleted"] for vm in slow_boot.vms() if vm["vm_id"] == vms[taken]),
             60, f"the VM {taken} took from the pool deleted with it", operator)


def test_members_whose_vms_are_gone_are_replaced_not_handed_out(
        admin: Kube, namespace: str, operator: OperatorProcess, model: ScriptedModel,
        slow_boot: VersSimulator, profile: str) -> None:
    admin.core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="models"), data={"models.json": model.models_json()}))
    admin.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(pool_body(2)))
    first = ready_members(admin, namespace, 2, operator)
    gone = {m["status"]["vmId"] for m in first}
    for vm_id in gone:                       # behind the operator's back
        slow_boot.delete_vm(vm_id)

    admin.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(
        lieutenant_body("late")))
    status = answered(admin, namespace, "late", operator)
    assert status["vmId"] not in gone

    replaced = ready_members(admin, namespace, 2, operator)
    assert not {m["metadata"]["name"] for m in replaced} & {m["metadata"]["name"] for m in first}
    assert not {m["status"]["vmId"] for m in replaced} & gone


def test_warm_members_count_as_running_vms_and_a_claim_takes_no_new_slot(
        admin: Kube, namespace: str, operator: OperatorProcess, model: ScriptedModel,
        slow_boot: VersSimulator, profile: str) -> None:
    admin.core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="models"), data={"models.json": model.models_json()}))
    admin.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump({
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ReefPolicy", "metadata": {"name": "limits"},
        "spec": {"limits": {"maxRunningVMs": 2}}}))
    admin.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(pool_body(3)))

    def short(size: int) -> dict[str, Any] | None:
        pool = admin.get("vmpools", POOL, namespace)
        ready = find_condition(pool, "Ready")
        status = pool.get("status") or {}
        return pool if (status.get("ready"), status.get("size"), ready.get("reason")) == (
            size, size, "QuotaExceeded") else None

    wait_for(lambda: short(2), 120, "two members ready, the third waiting for room", operator)
    assert "maxRunningVMs" in find_condition(short(2), "Reconciling")["message"]

    # The lieutenant takes a member's VM, and with it the member's slot: it needs no room.
    admin.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(
        lieutenant_body("inside")))
    status = answered(admin, namespace, "inside", operator)
    assert find_condition(node_saying_pooled(admin, namespace, "inside", operator),
                          "Pooled")["reason"] == "Claimed"
    assert status["vmId"] in {vm["vm_id"] for vm in slow_boot.vms() if not vm["deleted"]}
    # One member left and the lieutenant's VM fill the two running VMs: no refill.
    wait_for(lambda: short(1), 60, "one member left, no room to refill", operator)
    assert len(members(admin, namespace)) == 1
