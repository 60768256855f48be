"""What Argo CD (our health.lua, run by lua5.1) and kstatus make of the VMNodes,
BootProfiles and failed Lieutenants the running operator writes on a real control plane.

Every version of every object is recorded by a watch and judged, so transient states
count too; each must be one the CRD reference documents, with the same health.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client

from reef_devkit.controlplane import LocalControlPlane
from reef_devkit.operator_process import OperatorProcess
from reef_operator.constants import GROUP, VERSION
from reef_operator.kube.conditions import find_condition
from reef_operator.render.argocd import CM_PATCH, HEALTH_LUA
from tests.conftest import REPO_ROOT, Kube, wait_for
from tests.gitops import Recorder, Verdict, verdict

pytestmark = pytest.mark.controlplane

SUFFIX = uuid.uuid4().hex[:6]
QUICK = f"argo-quick-{SUFFIX}"


def _profile(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "BootProfile",
            "metadata": {"name": name},
            "spec": {"provider": "Local", "agent": {"install": False}, **spec}}


def _node(name: str, profile: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VMNode", "metadata": {"name": name},
            "spec": {"profileRef": {"name": profile},
                     "heartbeat": {"intervalSeconds": 5, "staleAfterSeconds": 60}, **spec}}


@pytest.fixture(scope="module")
def local_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="reef-argo-"))  # short: tmux socket paths
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def quick_profile(admin: Kube) -> Iterator[str]:
    admin.custom.create_cluster_custom_object(GROUP, VERSION, "bootprofiles",
                                              _profile(QUICK, bootScript="true"))
    yield QUICK
    admin.custom.delete_cluster_custom_object(GROUP, VERSION, "bootprofiles", QUICK)


@pytest.fixture(scope="module")
def operator(control_plane: LocalControlPlane, local_root: Path, quick_profile: str,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    process = OperatorProcess(control_plane.operator_kubeconfig,
                              tmp_path_factory.mktemp("operator") / "operator.log",
                              {"REEF_LOCAL_ROOT": str(local_root)})
    process.start()
    yield process
    process.stop()


def _until(get: Callable[[], dict[str, Any]],
           predicate: Callable[[dict[str, Any]], bool]) -> Callable[[], dict[str, Any] | None]:
    def check() -> dict[str, Any] | None:
        obj = get()
        return obj if predicate(obj) else None
    return check


def _getter(admin: Kube, plural: str, name: str, namespace: str
            ) -> Callable[[], dict[str, Any]]:
    return lambda: admin.get(plural, name, namespace)


def _names(admin: Kube, plural: str, namespace: str) -> list[str]:
    listed = cast(dict[str, Any], admin.custom.list_namespaced_custom_object(
        GROUP, VERSION, namespace, plural))
    return [item["metadata"]["name"] for item in listed["items"]]


def _is(type_: str, status: str = "True", reason: str | None = None
        ) -> Callable[[dict[str, Any]], bool]:
    def predicate(obj: dict[str, Any]) -> bool:
        found = find_condition(obj, type_)
        observed = (obj.get("status") or {}).get("observedGeneration") == \
            obj["metadata"]["generation"]
        return observed and found.get("status") == status and \
            (reason is None or found.get("reason") == reason)
    return predicate


def _verdicts(recorder: Recorder, name: str) -> list[Verdict]:
    """The verdict on every recorded version, each checked against the reference."""
    return [verdict(obj) for obj in recorder.versions(name)]


def test_bootprofiles_valid_invalid_and_fixed(admin: Kube, operator: OperatorProcess) -> None:
    name = f"argo-bad-{SUFFIX}"
    admin.custom.create_cluster_custom_object(GROUP, VERSION, "bootprofiles", _profile(
        name, env=[{"name": "REEF_ROLE", "value": "x"}]))
    try:
        def get() -> dict[str, Any]:
            return admin.get("bootprofiles", name)

        bad = wait_for(_until(get, _is("Stalled")), what="invalid profile Stalled",
                       operator=operator)
        judged = verdict(bad)
        assert (judged.health, judged.kstatus) == ("Degraded", "Failed")
        assert judged.message.startswith("Invalid: env[0] (REEF_ROLE): names starting with "
                                         "REEF_ are reserved")
        assert find_condition(bad, "Valid")["status"] == "False"
        assert find_condition(bad, "Ready")["status"] == "False"

        admin.custom.patch_cluster_custom_object(GROUP, VERSION, "bootprofiles", name, {
            "spec": {"env": [{"name": "ROLE", "value": "x"}]}})
        fixed = wait_for(_until(get, _is("Ready")), what="fixed profile Ready", operator=operator)
        judged = verdict(fixed)
        assert (judged.health, judged.kstatus) == ("Healthy", "Current")
        assert find_condition(fixed, "Stalled")["status"] == "False"
        assert fixed["status"]["observedGeneration"] == 2
        assert all(c["observedGeneration"] == 2 for c in fixed["status"]["conditions"])

        quick = verdict(admin.get("bootprofiles", QUICK))
        assert (quick.health, quick.kstatus) == ("Healthy", "Current")
    finally:
        admin.custom.delete_cluster_custom_object(GROUP, VERSION, "bootprofiles", name)


def test_vmnode_created_ready_paused_resumed_destroyed(
    admin: Kube, namespace: str, operator: OperatorProcess, quick_profile: str
) -> None:
    def get() -> dict[str, Any]:
        return admin.get("vmnodes", "api", namespace)

    def patch(state: str) -> None:
        admin.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "vmnodes", "api",
                                                    {"spec": {"state": state}})

    with Recorder(admin.kubeconfig, "vmnodes", namespace) as recorder:
        admin.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "vmnodes",
                                                     _node("api", quick_profile))
        ready = verdict(wait_for(_until(get, _is("Ready")), what="Ready", operator=operator))
        assert (ready.health, ready.kstatus) == ("Healthy", "Current")
        assert ready.message.startswith("Running: VM ")
        created = _verdicts(recorder, "api")
        # Before the operator wrote anything, and while it created the VM.
        assert created[0] == Verdict("Progressing", "waiting for the operator to report status",
                                     "Current")
        # Reported before the boot script runs (or while the VM boots), not only after.
        assert any((v.health, v.kstatus) == ("Progressing", "InProgress")
                   and v.message.startswith("Booting: ") for v in created), created

        patch("Paused")
        paused = verdict(wait_for(_until(get, _is("Paused")), what="Paused", operator=operator))
        assert (paused.health, paused.kstatus) == ("Suspended", "Current")

        patch("Running")
        resumed = verdict(wait_for(_until(get, _is("Ready")), what="Ready again",
                                   operator=operator))
        assert (resumed.health, resumed.kstatus) == ("Healthy", "Current")

        patch("Destroyed")
        gone = verdict(wait_for(_until(get, _is("Ready", "False", "Destroyed")),
                                what="Destroyed", operator=operator))
        assert (gone.health, gone.kstatus) == ("Healthy", "Current")
        everything = _verdicts(recorder, "api")
    # Each spec change is Progressing (not yet observed) before it is acted on.
    waiting = [v for v in everything if v.message.startswith("waiting for the operator to act")]
    assert {v.kstatus for v in waiting} == {"InProgress"} and len(waiting) >= 3
    assert {v.health for v in everything} == {"Progressing", "Healthy", "Suspended"}


def test_vmnode_with_an_unknown_profile_is_degraded_until_the_profile_exists(
    admin: Kube, namespace: str, operator: OperatorProcess
) -> None:
    profile = f"argo-late-{SUFFIX}"

    def get() -> dict[str, Any]:
        return admin.get("vmnodes", "early", namespace)

    with Recorder(admin.kubeconfig, "vmnodes", namespace) as recorder:
        admin.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "vmnodes",
                                                     _node("early", profile))
        stalled = verdict(wait_for(_until(get, _is("Stalled")), what="Stalled", operator=operator))
        assert (stalled.health, stalled.kstatus) == ("Degraded", "Failed")
        assert stalled.message == (f"ProfileNotFound: BootProfile '{profile}' does not exist; "
                                   "create it or set spec.profileRef.name to an existing "
                                   "profile (kubectl get bootprofiles)")
        admin.custom.create_cluster_custom_object(GROUP, VERSION, "bootprofiles",
                                                  _profile(profile, bootScript="sleep 2"))
        try:
            ready = wait_for(_until(get, _is("Ready")), what="Ready once the profile exists",
                             operator=operator)
            assert (verdict(ready).health, verdict(ready).kstatus) == ("Healthy", "Current")
            assert find_condition(ready, "Stalled")["status"] == "False"
            journey = _verdicts(recorder, "early")
        finally:
            admin.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "vmnodes",
                                                         "early")
            wait_for(lambda: "early" not in _names(admin, "vmnodes", namespace),
                     what="node deleted", operator=operator)
            admin.custom.delete_cluster_custom_object(GROUP, VERSION, "bootprofiles", profile)
    # Degraded until the profile appears; then no Stalled is left over while the VM is
    # made (Progressing, kstatus InProgress), then Healthy.
    healths = [v.health for v in journey]
    last_degraded = len(healths) - 1 - healths[::-1].index("Degraded")
    assert "Healthy" not in healths[:last_degraded], healths
    after = journey[last_degraded + 1:]
    assert any(v.message.startswith("Booting") and v.kstatus == "InProgress" for v in after)
    assert "Degraded" not in [v.health for v in after], healths


def test_lieutenants_that_cannot_start_are_degraded(
    admin: Kube, namespace: str, operator: OperatorProcess
) -> None:
    lieutenants = {
        "lost": {"profileRef": {"name": f"argo-missing-{SUFFIX}"}},
        "nokey": {"profileRef": {"name": "local"},
                  "credentialsSecretRef": {"name": "not-there"}},
    }
    with Recorder(admin.kubeconfig, "lieutenants", namespace) as recorder:
        for name, spec in lieutenants.items():
            body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Lieutenant",
                    "metadata": {"name": name}, "spec": {"role": "r", **spec}}
            admin.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(body))
        failed = {name: wait_for(_until(_getter(admin, "lieutenants", name, namespace),
                                        _is("Stalled")), what=f"{name} Stalled", operator=operator)
                  for name in lieutenants}
        journeys = {name: _verdicts(recorder, name) for name in lieutenants}
    lost, nokey = verdict(failed["lost"]), verdict(failed["nokey"])
    assert (lost.health, lost.kstatus) == ("Degraded", "Failed")
    assert lost.message.startswith(f"ProfileNotFound: VMNode lost: BootProfile "
                                   f"'argo-missing-{SUFFIX}' does not exist")
    assert (nokey.health, nokey.kstatus) == ("Degraded", "Failed")
    assert nokey.message == (f"MissingInput: Secret not-there (credentialsSecretRef) not found "
                             f"in namespace {namespace}")
    for obj in failed.values():
        assert obj["status"]["phase"] == "Error"
        assert find_condition(obj, "Degraded")["status"] == "True"
        assert find_condition(obj, "Reconciling")["status"] == "False"
    # Starting (waiting for the VM) came first, and was Progressing.
    for journey in journeys.values():
        first = next(v for v in journey if v.message.startswith("WaitingForVM"))
        assert (first.health, first.kstatus) == ("Progressing", "InProgress")


def test_an_operator_that_is_down_or_behind_is_never_taken_for_healthy(
    admin: Kube, namespace: str, operator: OperatorProcess, quick_profile: str
) -> None:
    def get(name: str) -> Callable[[], dict[str, Any]]:
        return _getter(admin, "vmnodes", name, namespace)

    admin.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "vmnodes",
                                                 _node("steady", quick_profile))
    wait_for(_until(get("steady"), _is("Ready")), what="steady Ready", operator=operator)
    operator.kill()
    try:
        admin.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "vmnodes",
                                                     _node("fresh", quick_profile))
        admin.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "vmnodes",
                                                    "steady", {"spec": {"heartbeat": {
                                                        "intervalSeconds": 7}}})
        fresh, steady = verdict(get("fresh")()), verdict(get("steady")())
        assert fresh == Verdict("Progressing", "waiting for the operator to report status",
                                "Current")  # kstatus cannot tell a status never written
        assert steady == Verdict("Progressing", "waiting for the operator to act on "
                                 "generation 2 (observed 1)", "InProgress")
    finally:
        operator.start()
    for name in ("fresh", "steady"):
        judged = verdict(wait_for(_until(get(name), _is("Ready")), what=f"{name} Ready",
                                  operator=operator))
        assert (judged.health, judged.kstatus) == ("Healthy", "Current")

    # A management pause (reconciliation stopped by annotation) shows as Suspended.
    admin.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "vmnodes", "steady", {
        "metadata": {"annotations": {f"{GROUP}/paused": "maintenance"}}})
    assert verdict(get("steady")()).health == "Suspended"


def test_the_argocd_cm_patch_merges_into_an_existing_argocd_cm(admin: Kube) -> None:
    """The documented install step, on a real apiserver: the user's settings stay."""
    namespace = "argocd"
    existing = [n.metadata.name for n in admin.core.list_namespace().items if n.metadata]
    if namespace not in existing:
        admin.core.create_namespace(client.V1Namespace(
            metadata=client.V1ObjectMeta(name=namespace)))
    try:
        admin.core.create_namespaced_config_map(namespace, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="argocd-cm"),
            data={"url": "https://argo.example",
                  "resource.customizations.health.example.com_Widget": "hs = {}\nreturn hs\n"}))
        admin.kubectl("-n", namespace, "patch", "configmap", "argocd-cm", "--patch-file",
                      str(REPO_ROOT / CM_PATCH))
        data = admin.core.read_namespaced_config_map("argocd-cm", namespace).data or {}
        assert data["url"] == "https://argo.example"
        assert "resource.customizations.health.example.com_Widget" in data
        script = (REPO_ROOT / HEALTH_LUA).read_text()
        for kind in ("Lieutenant", "VMNode", "BootProfile"):
            assert data[f"resource.customizations.health.{GROUP}_{kind}"] == script
        assert yaml.safe_load(data[f"resource.customizations.ignoreResourceUpdates.{GROUP}"
                                   "_Lieutenant"]) == {"jsonPointers": [
            "/status/currentTask", "/status/session", "/status/lastActivityTime",
            "/status/usage"]}
    finally:
        admin.core.delete_namespace(namespace)
