"""The VMNode and BootProfile controllers, end to end: real apiserver + kube-controller-manager,
the operator as its own process, the Vers simulator and the Local provider."""

from __future__ import annotations

import asyncio
import functools
import random
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes import client

from reef_devkit.controlplane import LocalControlPlane
from reef_devkit.operator_process import OperatorProcess, simulator_env
from reef_devkit.versim.harness import VersSimulator
from reef_operator.constants import ANNOTATION_PAUSED, GROUP, VERSION
from reef_operator.kube.conditions import find_condition
from reef_operator.providers.vers.client import VersClient
from tests.conftest import Kube, wait_for

pytestmark = pytest.mark.controlplane

VERS_PROFILE = "test-vers"
LOCAL_PROFILE = "test-local"
# The namespace whose nodes may adopt unlabelled VMs (REEF_ADOPTION_NAMESPACES).
ADOPTING = f"adopting-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def local_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("local-vms")


@pytest.fixture(scope="module")
def profiles(admin: Kube) -> Iterator[None]:
    bodies: list[dict[str, Any]] = [
        {"apiVersion": f"{GROUP}/{VERSION}", "kind": "BootProfile",
         "metadata": {"name": VERS_PROFILE},
         "spec": {"provider": "Vers", "category": "Agent", "modules": ["store"],
                  "capabilities": ["ssh"], "agent": {"install": False},
                  "env": [{"name": "GREETING", "value": "hello"}],
                  "bootScript": "echo booted-by-test > $HOME/booted"}},
        {"apiVersion": f"{GROUP}/{VERSION}", "kind": "BootProfile",
         "metadata": {"name": LOCAL_PROFILE},
         "spec": {"provider": "Local", "category": "Agent", "modules": ["store"],
                  "agent": {"install": False}, "bootScript": "echo local > $HOME/booted"}},
    ]
    for body in bodies:
        admin.custom.create_cluster_custom_object(GROUP, VERSION, "bootprofiles", body)
    yield
    for body in bodies:
        admin.custom.delete_cluster_custom_object(GROUP, VERSION, "bootprofiles",
                                                  body["metadata"]["name"])


@pytest.fixture(scope="module")
def operator(control_plane: LocalControlPlane, versim: VersSimulator, local_root: Path,
             profiles: None, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[OperatorProcess]:
    process = OperatorProcess(
        control_plane.operator_kubeconfig,
        tmp_path_factory.mktemp("operator") / "operator.log",
        {**simulator_env(versim), "REEF_LOCAL_ROOT": str(local_root),
         "REEF_DEFAULT_PROFILE": VERS_PROFILE, "REEF_ADOPTION_NAMESPACES": ADOPTING},
    )
    process.start()
    yield process
    process.stop()


def _node(name: str, **spec: Any) -> dict[str, Any]:
    spec.setdefault("profileRef", {"name": VERS_PROFILE})
    spec.setdefault("heartbeat", {"intervalSeconds": 5, "staleAfterSeconds": 10})
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VMNode",
            "metadata": {"name": name}, "spec": spec}


def _create(admin: Kube, namespace: str, body: dict[str, Any]) -> None:
    admin.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "vmnodes", body)


def _patch(admin: Kube, namespace: str, name: str, spec: dict[str, Any]) -> None:
    admin.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "vmnodes", name,
                                                {"spec": spec})


def _until(admin: Kube, namespace: str, name: str,
           predicate: Callable[[dict[str, Any]], bool]) -> Callable[[], dict[str, Any] | None]:
    def check() -> dict[str, Any] | None:
        obj = admin.get("vmnodes", name, namespace)
        return obj if predicate(obj) else None
    return check


def _ready(admin: Kube, namespace: str, name: str) -> Callable[[], dict[str, Any] | None]:
    return _until(admin, namespace, name,
                  lambda o: find_condition(o, "Ready").get("status") == "True")


def _has_event(admin: Kube, namespace: str, name: str, reason: str) -> bool:
    return reason in _events(admin, namespace, name)


def _has_reason(reason: str) -> Callable[[dict[str, Any]], bool]:
    return lambda obj: find_condition(obj, "Ready").get("reason") == reason


def _names(admin: Kube, namespace: str) -> list[str]:
    listed = cast(dict[str, Any], admin.custom.list_namespaced_custom_object(
        GROUP, VERSION, namespace, "vmnodes"))
    return [item["metadata"]["name"] for item in listed["items"]]


def _events(admin: Kube, namespace: str, name: str) -> list[str]:
    events = admin.core.list_namespaced_event(namespace).items
    return [str(e.reason) for e in events if e.involved_object.name == name]


def _sim_vms(versim: VersSimulator, uid: str) -> list[dict[str, Any]]:
    return [vm for vm in versim.vms() if not vm["deleted"]
            and (vm.get("labels") or {}).get(f"{GROUP}/uid") == uid]


def test_vers_lifecycle_running_paused_running_destroyed_deleted(
    admin: Kube, namespace: str, operator: OperatorProcess, versim: VersSimulator
) -> None:
    _create(admin, namespace, _node("api", modules=["cron"]))
    node = wait_for(_ready(admin, namespace, "api"), what="Ready", operator=operator)
    status = node["status"]
    uid = node["metadata"]["uid"]
    [vm] = _sim_vms(versim, uid)
    assert status["vmId"] == vm["vm_id"] and status["vmState"] == "running"
    assert status["hostKeyFingerprint"].startswith("SHA256:")
    assert status["dna"] == {"modules": ["store", "cron"], "capabilities": ["ssh"]}
    assert status["lineage"] == {"root": "api", "depth": 0}
    profile = admin.get("bootprofiles", VERS_PROFILE)
    assert status["boot"]["profileHash"] == profile["status"]["hash"]
    assert find_condition(node, "UpToDate")["status"] == "True"
    assert find_condition(node, "Booted")["status"] == "True"
    assert node["metadata"]["labels"][f"{GROUP}/category"] == "Agent"
    vm_root = Path(vm["directory"]) / "root"
    assert (vm_root / "booted").read_text() == "booted-by-test\n"
    identity = (vm_root / ".reef" / "identity.env").read_text()
    assert "REEF_NODE='api'" in identity and "GREETING=hello" in identity
    requested_at = node["metadata"]["annotations"][f"{GROUP}/vm-requested-at"]

    _patch(admin, namespace, "api", {"state": "Paused"})
    paused = wait_for(_until(admin, namespace, "api",
                             lambda o: find_condition(o, "Paused").get("status") == "True"),
                      what="Paused", operator=operator)
    assert paused["status"]["vmState"] == "paused"
    assert _sim_vms(versim, uid)[0]["frozen"] is True

    _patch(admin, namespace, "api", {"state": "Running"})
    wait_for(_ready(admin, namespace, "api"), what="Ready again", operator=operator)
    assert _sim_vms(versim, uid)[0]["frozen"] is False

    _patch(admin, namespace, "api", {"state": "Destroyed"})
    destroyed = wait_for(_until(admin, namespace, "api",
                                lambda o: find_condition(o, "Ready").get("reason") == "Destroyed"),
                         what="Destroyed", operator=operator)
    assert "vmId" not in destroyed["status"]
    assert _sim_vms(versim, uid) == []
    released = admin.get("vmnodes", "api", namespace)
    assert f"{GROUP}/vm-requested-at" not in (released["metadata"].get("annotations") or {})
    for reason in ("Created", "Booted", "Paused", "Resumed", "Destroyed"):
        assert reason in _events(admin, namespace, "api"), reason

    _patch(admin, namespace, "api", {"state": "Running"})
    renewed = wait_for(_ready(admin, namespace, "api"), what="a new VM", operator=operator)
    assert len(_sim_vms(versim, uid)) == 1
    assert renewed["metadata"]["annotations"][f"{GROUP}/vm-requested-at"] != requested_at
    admin.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "vmnodes", "api")
    wait_for(lambda: "api" not in _names(admin, namespace), what="object gone",
             operator=operator)
    assert _sim_vms(versim, uid) == []


def test_local_lifecycle(admin: Kube, namespace: str, operator: OperatorProcess,
                         local_root: Path) -> None:
    _create(admin, namespace, _node("dev", profileRef={"name": LOCAL_PROFILE}))
    node = wait_for(_ready(admin, namespace, "dev"), what="Ready", operator=operator)
    vm_dir = local_root / node["status"]["vmId"]
    assert (vm_dir / "root" / "booted").read_text() == "local\n"
    assert node["metadata"]["labels"][f"{GROUP}/provider"] == "local"
    _patch(admin, namespace, "dev", {"state": "Paused"})
    wait_for(lambda: find_condition(admin.get("vmnodes", "dev", namespace), "Paused")
             .get("status") == "True", what="Paused", operator=operator)
    _patch(admin, namespace, "dev", {"state": "Running"})
    wait_for(_ready(admin, namespace, "dev"), what="Ready again", operator=operator)
    admin.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "vmnodes", "dev")
    wait_for(lambda: not vm_dir.exists(), what="Local VM removed", operator=operator)


def test_bad_specs_give_clear_conditions_and_touch_nothing(
    admin: Kube, namespace: str, operator: OperatorProcess, versim: VersSimulator
) -> None:
    _create(admin, namespace, _node("ghost", profileRef={"name": "no-such-profile"}))
    _create(admin, namespace, _node("stray", parentRef={"name": "ghost", "namespace": "other"}))
    _create(admin, namespace, _node("loop-a", parentRef={"name": "loop-b"}))
    _create(admin, namespace, _node("loop-b", parentRef={"name": "loop-a"}))
    _create(admin, namespace, _node("orphan", parentRef={"name": "nobody"}))
    expected = {
        "ghost": ("ProfileNotFound", "BootProfile 'no-such-profile' does not exist"),
        "stray": ("ParentInOtherNamespace", "must be in the same namespace"),
        "loop-a": ("ParentCycle", "forms a cycle"),
        "loop-b": ("ParentCycle", "forms a cycle"),
        "orphan": ("ParentNotFound", "parent VMNode 'nobody' does not exist"),
    }
    for name, (reason, text) in expected.items():
        node = wait_for(_until(admin, namespace, name, _has_reason(reason)),
                        what=f"{name} condition {reason}", operator=operator)
        ready = find_condition(node, "Ready")
        assert (ready["status"], ready["reason"]) == ("False", reason), (name, ready)
        assert text in ready["message"], (name, ready["message"])
        assert find_condition(node, "Stalled")["status"] == "True"
        assert _sim_vms(versim, node["metadata"]["uid"]) == []
        # kopf posts Events in the background: one may land just after the status.
        wait_for(functools.partial(_has_event, admin, namespace, name, reason),
                 what=f"{name} event {reason}", operator=operator)


@pytest.fixture
def adopting(admin: Kube) -> Iterator[str]:
    admin.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ADOPTING)))
    yield ADOPTING
    admin.core.delete_namespace(ADOPTING)


def test_adopt_an_existing_vm_and_orphan_it(
    admin: Kube, adopting: str, operator: OperatorProcess, versim: VersSimulator
) -> None:
    async def make() -> str:
        async with VersClient(versim.base_url, versim.api_key) as vers:
            return await vers.new_root(wait_boot=True)

    namespace = adopting
    vm_id = asyncio.run(make())
    _create(admin, namespace, _node("adopted", vmId=vm_id, deletionPolicy="Orphan"))
    node = wait_for(_ready(admin, namespace, "adopted"), what="adopted Ready", operator=operator)
    assert node["status"]["vmId"] == vm_id
    assert _sim_vms(versim, node["metadata"]["uid"])[0]["vm_id"] == vm_id  # labelled
    assert "Adopted" in _events(admin, namespace, "adopted")
    assert len([vm for vm in versim.vms() if not vm["deleted"]
                and vm["vm_id"] == vm_id]) == 1
    admin.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "vmnodes", "adopted")
    wait_for(lambda: "adopted" not in _names(admin, namespace), what="object gone",
             operator=operator)
    assert [vm["vm_id"] for vm in versim.vms() if vm["vm_id"] == vm_id
            and not vm["deleted"]] == [vm_id]  # orphaned, still there


def test_finalizer_holds_while_the_platform_is_down(
    admin: Kube, namespace: str, operator: OperatorProcess, versim: VersSimulator
) -> None:
    _create(admin, namespace, _node("held"))
    node = wait_for(_ready(admin, namespace, "held"), what="Ready", operator=operator)
    uid = node["metadata"]["uid"]
    versim.set_faults(error_rate=1.0)
    try:
        admin.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "vmnodes",
                                                     "held")
        blocked = wait_for(_until(admin, namespace, "held", lambda o: find_condition(
            o, "Ready").get("reason") == "DeletionBlocked"), within=90, what="DeletionBlocked",
            operator=operator)
        assert "finalizer holds" in find_condition(blocked, "Ready")["message"]
        assert len(_sim_vms(versim, uid)) == 1
    finally:
        versim.set_faults(error_rate=0)
    wait_for(lambda: "held" not in _names(admin, namespace), within=120,
             what="deleted after the platform is back", operator=operator)
    assert _sim_vms(versim, uid) == []


def test_three_level_tree_pause_and_cascade(
    admin: Kube, namespace: str, operator: OperatorProcess, versim: VersSimulator
) -> None:
    _create(admin, namespace, _node("root", category="Lieutenant"))
    _create(admin, namespace, _node("child", category="Swarm", parentRef={"name": "root"}))
    _create(admin, namespace, _node("grandchild", category="Swarm",
                                    parentRef={"name": "child"}))
    nodes = {name: wait_for(_ready(admin, namespace, name), what=f"{name} Ready",
                            operator=operator) for name in ("root", "child", "grandchild")}
    assert [nodes[n]["status"]["lineage"] for n in ("root", "child", "grandchild")] == [
        {"root": "root", "depth": 0}, {"root": "root", "depth": 1}, {"root": "root", "depth": 2}]
    labels = nodes["grandchild"]["metadata"]["labels"]
    assert (labels[f"{GROUP}/parent"], labels[f"{GROUP}/root"]) == ("child", "root")
    assert nodes["child"]["metadata"]["ownerReferences"][0]["uid"] == \
        nodes["root"]["metadata"]["uid"]
    uids = {n: o["metadata"]["uid"] for n, o in nodes.items()}

    _patch(admin, namespace, "root", {"state": "Paused"})
    for uid in uids.values():
        wait_for(lambda uid=uid: bool(_sim_vms(versim, uid)[0]["frozen"]),  # type: ignore[misc]
                 what="subtree frozen", operator=operator)
    child = admin.get("vmnodes", "child", namespace)
    assert child["spec"]["state"] == "Running"  # the child's own spec is left alone
    assert find_condition(child, "Paused")["status"] == "True"
    _patch(admin, namespace, "root", {"state": "Running"})
    for name in nodes:
        wait_for(_ready(admin, namespace, name), what=f"{name} resumed", operator=operator)
        assert _sim_vms(versim, uids[name])[0]["frozen"] is False

    admin.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "vmnodes", "root")
    wait_for(lambda: _names(admin, namespace) == [], within=120,
             what="the garbage collector removing the subtree", operator=operator)
    assert all(_sim_vms(versim, uid) == [] for uid in uids.values())


def test_heartbeat_goes_stale_when_the_vm_freezes_behind_our_back(
    admin: Kube, namespace: str, operator: OperatorProcess, versim: VersSimulator
) -> None:
    _create(admin, namespace, _node("beat"))
    node = wait_for(_ready(admin, namespace, "beat"), what="Ready", operator=operator)
    vm_id = node["status"]["vmId"]
    versim.vm_action(vm_id, "freeze")
    try:
        stale = wait_for(_until(admin, namespace, "beat", lambda o: find_condition(
            o, "Alive").get("reason") == "HeartbeatStale"), within=90, what="HeartbeatStale",
            operator=operator)
        assert find_condition(stale, "Ready")["status"] == "False"
        assert "HeartbeatStale" in _events(admin, namespace, "beat")
    finally:
        versim.vm_action(vm_id, "thaw")
    wait_for(_ready(admin, namespace, "beat"), within=90, what="alive again", operator=operator)


def test_profile_change_flips_uptodate_without_rebooting(
    admin: Kube, namespace: str, operator: OperatorProcess
) -> None:
    name = f"p-{uuid.uuid4().hex[:6]}"
    admin.custom.create_cluster_custom_object(GROUP, VERSION, "bootprofiles", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "BootProfile", "metadata": {"name": name},
        "spec": {"provider": "Vers", "agent": {"install": False}, "bootScript": "echo v1"}})
    try:
        _create(admin, namespace, _node("pinned", profileRef={"name": name}))
        node = wait_for(_ready(admin, namespace, "pinned"), what="Ready", operator=operator)
        booted_at = node["status"]["boot"]["completedAt"]
        admin.custom.patch_cluster_custom_object(GROUP, VERSION, "bootprofiles", name,
                                                 {"spec": {"bootScript": "echo v2"}})
        changed = wait_for(_until(admin, namespace, "pinned", lambda o: find_condition(
            o, "UpToDate").get("status") == "False"), what="UpToDate False", operator=operator)
        assert find_condition(changed, "UpToDate")["reason"] == "ProfileChanged"
        assert changed["status"]["boot"]["completedAt"] == booted_at
        assert find_condition(changed, "Ready")["status"] == "True"
    finally:
        admin.custom.delete_cluster_custom_object(GROUP, VERSION, "bootprofiles", name)


def test_a_paused_profile_keeps_the_version_last_taken_in(
    admin: Kube, operator: OperatorProcess
) -> None:
    """The management pause on a BootProfile: its edits wait until the annotation goes
    (a profile without it, edited alike, shows the operator was acting meanwhile)."""
    names = {which: f"p-{which}-{uuid.uuid4().hex[:6]}" for which in ("held", "free")}

    def profile(which: str) -> dict[str, Any]:
        return admin.get("bootprofiles", names[which])

    def valid(which: str, status: str) -> Callable[[], dict[str, Any] | None]:
        def check() -> dict[str, Any] | None:
            found = profile(which)
            observed = (found.get("status") or {}).get("observedGeneration")
            return found if observed == found["metadata"]["generation"] and \
                find_condition(found, "Valid").get("status") == status else None
        return check

    def patch(which: str, body: dict[str, Any]) -> None:
        admin.custom.patch_cluster_custom_object(GROUP, VERSION, "bootprofiles", names[which],
                                                 body)
    try:
        for which in names:
            admin.custom.create_cluster_custom_object(GROUP, VERSION, "bootprofiles", {
                "apiVersion": f"{GROUP}/{VERSION}", "kind": "BootProfile",
                "metadata": {"name": names[which]},
                "spec": {"provider": "Vers", "agent": {"install": False},
                         "bootScript": "echo v1"}})
            wait_for(valid(which, "True"), what=f"{which} valid", operator=operator)
        patch("held", {"metadata": {"annotations": {ANNOTATION_PAUSED: "maintenance"}}})
        reserved = {"spec": {"env": [{"name": "REEF_ROLE", "value": "x"}]}}
        patch("held", reserved)
        patch("free", reserved)
        wait_for(valid("free", "False"), what="the free profile invalid", operator=operator)
        held = profile("held")
        assert find_condition(held, "Valid")["status"] == "True"
        assert held["status"]["observedGeneration"] == 1

        patch("held", {"metadata": {"annotations": {ANNOTATION_PAUSED: None}}})
        wait_for(valid("held", "False"), what="the held profile taken in", operator=operator)
    finally:
        for name in names.values():
            admin.custom.delete_cluster_custom_object(GROUP, VERSION, "bootprofiles", name)


def test_checkpoints_are_taken_and_pruned(
    admin: Kube, namespace: str, operator: OperatorProcess, versim: VersSimulator
) -> None:
    _create(admin, namespace, _node("snap", checkpoints={"intervalSeconds": 10, "retain": 2}))
    wait_for(_ready(admin, namespace, "snap"), what="Ready", operator=operator)
    node = wait_for(_until(admin, namespace, "snap", lambda o: len(
        o["status"].get("checkpoints", [])) == 2 and _events(
            admin, namespace, "snap").count("CheckpointTaken") >= 3),
        within=60, what="three checkpoints, two kept", operator=operator)
    import asyncio

    from reef_operator.providers.vers.client import VersClient

    async def commits() -> set[str]:
        async with VersClient(versim.base_url, versim.api_key) as vers:
            return {c.commit_id for c in (await vers.list_commits(limit=1000)).commits
                    if c.parent_vm_id == node["status"]["vmId"]}

    def platform_matches_status() -> bool:
        # Checkpoints keep coming every 10 s: compare the platform with a status read
        # right after it, and again if a checkpoint landed in between.
        on_platform = asyncio.run(commits())
        kept = admin.get("vmnodes", "snap", namespace)["status"]["checkpoints"]
        return on_platform == {c["commitId"] for c in kept} and len(kept) == 2

    wait_for(platform_matches_status, within=30, what="platform commits = status checkpoints",
             operator=operator)


def test_random_sigkills_during_create_never_make_two_vms(
    admin: Kube, namespace: str, operator: OperatorProcess, versim: VersSimulator
) -> None:
    rng = random.Random(20261121)
    versim.set_faults(latency=0.15)
    names = [f"k{trial}" for trial in range(20)]
    try:
        for name in names:
            _create(admin, namespace, _node(name))
            time.sleep(rng.uniform(0.0, 1.2))
            operator.restart()
    finally:
        versim.set_faults(latency=0)
    uids = {}
    for name in names:
        node = wait_for(_ready(admin, namespace, name), within=120, what=f"{name} Ready",
                        operator=operator)
        uids[name] = node["metadata"]["uid"]
    for name, uid in uids.items():
        vms = _sim_vms(versim, uid)
        assert len(vms) == 1, (name, vms)
        assert vms[0]["vm_id"] == admin.get("vmnodes", name, namespace)["status"]["vmId"]


def test_converges_under_injected_platform_errors(
    admin: Kube, namespace: str, operator: OperatorProcess, versim: VersSimulator
) -> None:
    versim.reset_request_counts()
    versim.set_faults(error_rate=0.2, rate_limit_burst=5, retry_after_ms=50,
                      lose_response_rate=0.2)
    names = [f"flaky{n}" for n in range(5)]
    try:
        for name in names:
            _create(admin, namespace, _node(name))
        uids = {name: wait_for(_ready(admin, namespace, name), within=180,
                               what=f"{name} Ready", operator=operator)["metadata"]["uid"]
                for name in names}
    finally:
        versim.set_faults(error_rate=0, lose_response_rate=0, rate_limit_burst=0)
    for uid in uids.values():
        assert len(_sim_vms(versim, uid)) == 1
    counts = versim.request_counts()
    creates = counts.get("POST /vm/new_root", 0)
    assert creates <= 3 * len(names), counts
    assert sum(counts.values()) <= 60 * len(names), counts
