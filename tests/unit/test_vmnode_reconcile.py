"""The VM node decision tree: fed what the object says and what the provider observes.

Each test sets up one situation (the node's spec and status, the VM as the
in-memory provider has it), runs one pass and asserts what a user sees: the
provider calls made, the status and conditions written, the Events, and when the
next pass is due. No processes, no apiserver.
"""

from __future__ import annotations

import copy
import datetime
import re
from collections.abc import Mapping
from typing import Any

import pytest

from reef_operator.constants import ANNOTATION_PAUSED, ANNOTATION_VM_REQUESTED, GROUP, VERSION
from reef_operator.kube.conditions import now_iso
from reef_operator.providers.base import CommandResult, VmOwner
from reef_operator.providers.errors import HostKeyMismatch, ServerError, ShellError
from reef_operator.retry import RetryLater
from reef_operator.vmnodes.fleet import Fleet
from reef_operator.vmnodes.profiles import ProfileBook
from reef_operator.vmnodes.reconcile import BOOT_POLL, IDLE, VmNodeReconciler
from tests.unit.memory_provider import Journal, MemoryKube, MemoryProvider, MemoryVm

PROFILE = {"metadata": {"name": "agent"},
           "spec": {"provider": "Vers", "bootScript": "echo hello",
                    "env": [{"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {
                        "namespace": "reef-system", "name": "tokens", "key": "api"}}}]}}


def _ago(seconds: float) -> str:
    return now_iso(datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=seconds))


class Node:
    """One VM node, its operator-side memory and the world it talks to."""

    def __init__(self, spec: Mapping[str, Any] | None = None,
                 annotations: Mapping[str, str] | None = None,
                 parents: list[dict[str, Any]] | None = None,
                 adoption_namespaces: tuple[str, ...] = ()) -> None:
        self.journal: Journal = []
        self.events: list[tuple[str, str, str]] = []
        self.body: dict[str, Any] = {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "VMNode",
            "metadata": {"name": "n", "namespace": "team-a", "uid": "uid-n", "generation": 1,
                         "annotations": dict(annotations or {})},
            "spec": dict(spec or {}), "status": {}}
        self.provider = MemoryProvider(self.journal)
        self.kube = MemoryKube(self.journal, self.body)
        self.fleet = Fleet()
        for parent in parents or []:
            self.fleet.upsert(parent)
        self.fleet.upsert(self.body)
        self.profiles = ProfileBook()
        self.profiles.upsert(PROFILE)
        self.secrets: dict[tuple[str, str], dict[str, str]] = {
            ("reef-system", "tokens"): {"api": "s3cr3t"}}
        self.reconciler = VmNodeReconciler(self.kube, {"vers": self.provider}, self.fleet,
                                           self.profiles, "agent", self._event,
                                           self._read_secret,
                                           adoption_namespaces=adoption_namespaces)

    def _event(self, body: Mapping[str, Any], kind: str, reason: str, message: str) -> None:
        self.events.append((kind, reason, message))

    async def _read_secret(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.secrets.get((namespace, name))

    async def reconcile(self) -> float:
        """One pass over the object as the watch last delivered it."""
        return await self.reconciler.reconcile(copy.deepcopy(self.body))

    async def running(self) -> None:
        """Bring the node to Ready (a first pass), then start a fresh record."""
        await self.reconcile()
        assert self.condition("Ready")["status"] == "True"
        self.journal.clear()
        self.events.clear()

    def set_spec(self, **spec: Any) -> None:
        self.body["spec"].update(spec)
        self.fleet.upsert(self.body)

    @property
    def status(self) -> dict[str, Any]:
        return dict(self.body["status"])

    def condition(self, type_: str) -> dict[str, Any]:
        return next(c for c in self.status["conditions"] if c["type"] == type_)

    def summary(self) -> tuple[str, str, str, str]:
        """Ready, Reconciling, Stalled and their shared reason."""
        ready = self.condition("Ready")
        return (ready["status"], self.condition("Reconciling")["status"],
                self.condition("Stalled")["status"], ready["reason"])

    def calls(self) -> list[str]:
        return [entry[0] for entry in self.journal]

    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in self.events]


async def test_a_new_node_is_marked_then_created_booted_and_ready() -> None:
    node = Node()
    delay = await node.reconcile()

    # Marked before the create; Reconciling said before the long boot; one write at the end.
    assert node.calls() == ["patch_metadata", "create", "patch_status", "run", "run",
                            "patch_status"]
    mark = node.journal[0][1]
    assert ANNOTATION_VM_REQUESTED in mark["annotations"]
    assert mark["labels"][f"{GROUP}/root"] == "n"
    progress = node.journal[2][1]
    assert progress["vmId"] == "vm-1"  # recorded before the boot, which may take minutes
    assert [(c["type"], c["status"]) for c in progress["conditions"]] == [
        ("Ready", "False"), ("Reconciling", "True"), ("Stalled", "False")]
    assert node.summary() == ("True", "False", "False", "Running")
    status = node.status
    assert (status["vmId"], status["vmState"], status["address"]) == ("vm-1", "running",
                                                                       "10.0.0.7")
    assert status["hostKeyFingerprint"] == "SHA256:memory"
    assert status["lineage"] == {"root": "n", "depth": 0}
    assert status["boot"]["profileHash"] == node.profiles.get("agent").hash  # type: ignore[union-attr]
    assert "lastHeartbeatTime" in status
    assert [node.condition(t)["status"] for t in ("Booted", "UpToDate", "Alive", "Paused")] == [
        "True", "True", "True", "False"]
    assert node.reasons() == ["Created", "Booted"]
    assert delay == 60.0  # the heartbeat interval


async def test_a_quiet_pass_over_a_ready_node_beats_and_writes_nothing() -> None:
    node = Node()
    await node.running()
    assert await node.reconcile() == 60.0
    assert node.calls() == ["run"]  # the heartbeat only: no boot, no write
    assert node.events == []


async def test_secret_values_reach_the_boot_script_on_stdin_only() -> None:
    node = Node()
    await node.reconcile()
    [boot] = [entry for entry in node.journal if entry[0] == "run" and entry[3]]
    _, _, command, stdin = boot
    assert stdin == "API_TOKEN=s3cr3t\n"
    assert "s3cr3t" not in command


async def test_a_missing_secret_holds_the_boot_and_says_which() -> None:
    node = Node()
    node.secrets.clear()
    with pytest.raises(RetryLater):
        await node.reconcile()
    assert node.summary()[2:] == ("True", "SecretNotFound")
    assert "Secret reef-system/tokens key api (env API_TOKEN" in node.condition("Ready")["message"]
    assert node.status["vmId"] == "vm-1"  # the VM made before is recorded


async def test_a_request_marked_before_a_restart_is_looked_up_before_any_create() -> None:
    node = Node(annotations={ANNOTATION_VM_REQUESTED: _ago(30)})
    # made, then the operator died
    node.provider.vms["vm-0"] = MemoryVm(owner_uid="uid-n", namespace="team-a")
    await node.reconcile()
    assert "find" in node.calls() and "create" not in node.calls()
    assert node.status["vmId"] == "vm-0"
    assert node.reasons()[0] == "Recovered"


async def test_a_marked_request_with_no_vm_found_is_created() -> None:
    node = Node(annotations={ANNOTATION_VM_REQUESTED: _ago(30)})
    await node.reconcile()
    calls = node.calls()
    assert calls.index("find") < calls.index("create")
    assert node.reasons()[0] == "Created"


async def test_a_booting_vm_is_polled_without_a_shell() -> None:
    node = Node()
    node.provider.new_vm_state = "booting"
    assert await node.reconcile() == BOOT_POLL
    assert "run" not in node.calls()
    assert node.summary() == ("False", "True", "False", "Booting")


async def test_a_paused_spec_pauses_the_vm() -> None:
    node = Node()
    await node.running()
    node.set_spec(state="Paused")
    assert await node.reconcile() == IDLE
    assert node.calls() == ["pause", "patch_status"]
    assert node.status["vmState"] == "paused"
    assert node.condition("Paused")["status"] == "True"
    assert node.summary() == ("False", "False", "False", "Paused")
    assert node.events == [("Normal", "Paused", "paused VM vm-1")]


async def test_a_paused_ancestor_pauses_the_node_without_touching_its_spec() -> None:
    parent = {"metadata": {"name": "p", "namespace": "team-a", "uid": "uid-p"},
              "spec": {"state": "Paused"}}
    node = Node(spec={"parentRef": {"name": "p"}}, parents=[parent])
    await node.reconcile()
    assert "pause" in node.calls()
    assert node.condition("Ready")["message"] == "the VM is paused (an ancestor is paused)"
    assert node.body["spec"] == {"parentRef": {"name": "p"}}
    assert node.status["lineage"] == {"root": "p", "depth": 1}


async def test_a_running_spec_resumes_a_paused_vm() -> None:
    node = Node()
    await node.running()
    node.provider.vms["vm-1"].state = "paused"
    await node.reconcile()
    assert node.calls()[0] == "resume"
    assert node.status["vmState"] == "running"
    assert node.reasons() == ["Resumed"]


async def test_a_vm_gone_behind_our_back_stalls_with_one_warning() -> None:
    node = Node()
    await node.running()
    node.provider.vms.clear()
    assert await node.reconcile() == IDLE
    assert node.summary() == ("False", "False", "True", "VMNotFound")
    assert node.status["vmState"] == "dead"
    assert "create" not in node.calls()  # never a second VM for the node by itself
    await node.reconcile()
    assert node.reasons() == ["VMNotFound"]  # said once


async def test_destroyed_releases_the_vm_and_keeps_the_object() -> None:
    node = Node()
    await node.running()
    node.set_spec(state="Destroyed")
    assert await node.reconcile() == IDLE
    assert node.calls() == ["delete", "patch_metadata", "patch_status"]
    assert node.journal[1][1] == {"annotations": {ANNOTATION_VM_REQUESTED: None}}
    assert not {"vmId", "vmState", "address", "boot"} & set(node.status)
    assert node.summary() == ("False", "False", "False", "Destroyed")
    assert node.reasons() == ["Destroyed"]


async def test_a_failing_boot_script_is_retried_then_stalls() -> None:
    node = Node()
    node.provider.boot_result = CommandResult(2, "step 1\nno network\n", "")
    for attempt, stalled in ((1, "False"), (2, "False"), (3, "True")):
        with pytest.raises(RetryLater):
            await node.reconcile()
        assert node.status["boot"]["attempts"] == attempt
        assert node.summary()[2:] == (stalled, "BootScriptFailed")
    assert node.condition("Booted")["message"] == \
        "boot script failed (exit 2, attempt 3):\nstep 1\nno network"
    assert node.reasons().count("BootFailed") == 3
    assert node.calls().count("create") == 1


async def test_a_missed_heartbeat_is_not_stale_until_stale_after() -> None:
    node = Node()
    await node.running()
    node.provider.heartbeat_answers = False
    assert await node.reconcile() == 60.0
    assert node.condition("Alive")["status"] == "True"
    assert node.events == []


async def test_a_heartbeat_missing_past_stale_after_stalls_with_a_warning() -> None:
    node = Node()
    await node.running()
    node.body["status"]["lastHeartbeatTime"] = _ago(600)
    node.reconciler.heartbeats.forget(("team-a", "n"))  # as after a restart
    node.provider.shell_error = ShellError("connection refused")
    assert await node.reconcile() == 60.0
    alive = node.condition("Alive")
    assert (alive["status"], alive["reason"]) == ("False", "HeartbeatStale")
    assert re.fullmatch(r"no heartbeat for 60[01]s \(stale after 300s\): .*connection refused",
                        alive["message"])
    assert node.summary() == ("False", "False", "True", "HeartbeatStale")
    assert node.reasons() == ["HeartbeatStale"]


async def test_a_node_answering_again_is_alive_and_says_so() -> None:
    node = Node()
    await node.running()
    node.body["status"]["lastHeartbeatTime"] = _ago(600)
    node.reconciler.heartbeats.forget(("team-a", "n"))
    node.provider.heartbeat_answers = False
    await node.reconcile()
    node.provider.heartbeat_answers = True
    await node.reconcile()
    assert node.condition("Alive")["status"] == "True"
    assert node.reasons() == ["HeartbeatStale", "HeartbeatRecovered"]


async def test_a_changed_host_key_needs_a_person() -> None:
    node = Node()
    await node.running()
    node.provider.shell_error = HostKeyMismatch("host key of vm-1 changed")
    assert await node.reconcile() == IDLE
    assert node.summary()[2:] == ("True", "HostKeyMismatch")


async def test_a_platform_error_is_reported_and_retried() -> None:
    node = Node()
    await node.running()
    node.provider.observe_error = ServerError("upstream down", status=503)
    with pytest.raises(RetryLater):
        await node.reconcile()
    assert node.summary() == ("False", "True", "False", "PlatformError")
    assert node.reasons() == ["PlatformError"]


async def test_a_missing_profile_is_reported_and_nothing_is_created() -> None:
    node = Node(spec={"profileRef": {"name": "nope"}})
    assert await node.reconcile() == IDLE
    assert node.calls() == ["patch_status"]
    assert node.summary() == ("False", "False", "True", "ProfileNotFound")
    assert node.reasons() == ["ProfileNotFound"]


async def test_a_disabled_provider_is_named_and_nothing_is_created() -> None:
    node = Node(spec={"profileRef": {"name": "dev"}})
    node.profiles.upsert({"metadata": {"name": "dev"}, "spec": {"provider": "Local"}})
    node.reconciler.disabled = {"local": "the Local provider is disabled in this operator"}
    assert await node.reconcile() == IDLE
    assert node.calls() == ["patch_status"]
    assert node.summary() == ("False", "False", "True", "ProviderDisabled")
    assert node.condition("Stalled")["message"] == (
        "BootProfile 'dev' uses provider local: the Local provider is disabled in this operator")


async def test_a_paused_annotation_stops_reconciliation() -> None:
    node = Node(annotations={ANNOTATION_PAUSED: "true"})
    assert await node.reconcile() == IDLE
    assert node.journal == [] and node.events == []


async def test_spec_vm_id_cannot_change_once_set() -> None:
    node = Node(spec={"vmId": "vm-a"})
    node.provider.vms["vm-a"] = MemoryVm(owner_uid="uid-n", namespace="team-a")
    await node.reconcile()
    assert node.reasons()[0] == "Adopted"
    node.set_spec(vmId="vm-b")
    assert await node.reconcile() == IDLE
    assert node.summary()[2:] == ("True", "VmIdChanged")
    assert node.status["vmId"] == "vm-a"


async def test_a_due_checkpoint_is_taken_and_the_oldest_beyond_retain_deleted() -> None:
    node = Node(spec={"checkpoints": {"intervalSeconds": 600, "retain": 1}})
    await node.running()
    node.provider.snapshots[:] = ["snap-old"]  # the first pass took one: forget it
    node.provider.snapshot_owners["snap-old"] = VmOwner("team-a", "uid-n")
    node.body["status"]["checkpoints"] = [{"commitId": "snap-old", "createdAt": _ago(700)}]
    delay = await node.reconcile()
    assert node.calls() == ["run", "snapshot", "snapshot_owner", "delete_snapshot",
                            "patch_status"]
    assert [c["commitId"] for c in node.status["checkpoints"]] == ["snap-2"]
    assert node.provider.snapshots == ["snap-2"]
    assert "CheckpointTaken" in node.reasons()
    assert delay == 60.0  # the heartbeat comes before the next checkpoint


async def test_a_checkpoint_not_yet_due_sets_the_next_pass() -> None:
    node = Node(spec={"checkpoints": {"intervalSeconds": 90, "retain": 3},
                      "heartbeat": {"intervalSeconds": 120}})
    await node.running()
    node.body["status"]["checkpoints"] = [{"commitId": "snap-1", "createdAt": _ago(60)}]
    delay = await node.reconcile()
    assert "snapshot" not in node.calls()
    assert 0 < delay <= 30.0


@pytest.mark.parametrize("owner", [("team-b", "uid-b"), ("team-a", "uid-other"), ("", "uid-n")],
                         ids=["other namespace", "other node", "half-labelled"])
@pytest.mark.parametrize("state", ["Running", "Paused", "Destroyed"])
async def test_a_vm_labelled_for_someone_else_is_never_touched(owner: tuple[str, str],
                                                               state: str) -> None:
    node = Node(spec={"vmId": "vm-x", "state": state,
                      "checkpoints": {"intervalSeconds": 600, "retain": 1}})
    node.provider.vms["vm-x"] = MemoryVm("paused" if state == "Running" else "running",
                                         owner_uid=owner[1], namespace=owner[0])
    assert await node.reconcile() == IDLE
    touched = {"pause", "resume", "delete", "snapshot", "claim", "run"}
    assert not touched & set(node.calls())  # observed, then nothing done to the VM
    assert node.summary()[2:] == ("True", "VMOwnedElsewhere")
    assert "vm-x" in node.condition("Stalled")["message"]
    assert "vmId" not in node.status


async def test_an_unlabelled_vm_is_refused_where_adoption_is_not_allowed() -> None:
    node = Node(spec={"vmId": "vm-x"})
    node.provider.vms["vm-x"] = MemoryVm()
    await node.reconcile()
    assert node.summary()[2:] == ("True", "VMOwnedElsewhere")
    assert "REEF_ADOPTION_NAMESPACES" in node.condition("Stalled")["message"]
    assert node.provider.vms["vm-x"].owner is None


async def test_adoption_where_allowed_labels_the_vm_for_the_node() -> None:
    node = Node(spec={"vmId": "vm-x"}, adoption_namespaces=("team-a",))
    node.provider.vms["vm-x"] = MemoryVm()
    await node.reconcile()
    assert "claim" in node.calls()
    assert node.provider.vms["vm-x"].owner == VmOwner("team-a", "uid-n")
    assert node.summary() == ("True", "False", "False", "Running")
    assert node.reasons()[0] == "Adopted"


@pytest.mark.parametrize("owner", [VmOwner("team-b", "uid-b"), VmOwner("team-a", "uid-other"),
                                   None], ids=["other namespace", "other node", "unknown"])
async def test_rotation_never_deletes_a_checkpoint_another_node_took(
        owner: VmOwner | None) -> None:
    node = Node(spec={"checkpoints": {"intervalSeconds": 600, "retain": 1}})
    await node.running()
    node.provider.snapshots[:] = ["snap-theirs"]
    node.provider.snapshot_owners = {"snap-theirs": owner}
    node.body["status"]["checkpoints"] = [{"commitId": "snap-theirs", "createdAt": _ago(700)}]
    await node.reconcile()
    assert "delete_snapshot" not in node.calls()
    assert node.provider.snapshots == ["snap-theirs", "snap-2"]
    assert [c["commitId"] for c in node.status["checkpoints"]] == ["snap-2"]


@pytest.mark.parametrize("owner", [VmOwner("team-b", "uid-b"), None],
                         ids=["other namespace", "unknown"])
async def test_a_commit_of_another_namespace_is_never_booted(owner: VmOwner | None) -> None:
    node = Node(spec={"source": {"commitId": "c-theirs"}})
    node.provider.snapshot_owners = {"c-theirs": owner}
    assert await node.reconcile() == IDLE
    assert "create" not in node.calls()
    assert node.summary()[2:] == ("True", "CommitNotAllowed")
    assert "source.commitId c-theirs" in node.condition("Stalled")["message"]


async def test_a_checkpoint_of_the_same_namespace_or_a_profiles_golden_image_boots() -> None:
    node = Node(spec={"source": {"commitId": "c-ours"}})
    node.provider.snapshot_owners = {"c-ours": VmOwner("team-a", "uid-sibling")}
    await node.reconcile()
    assert "create" in node.calls()
    golden = Node(spec={"source": {"commitId": "c-golden"}})
    golden.profiles.upsert({"metadata": {"name": "gold"},
                            "spec": {"provider": "Vers", "source": {"commitId": "c-golden"}}})
    await golden.reconcile()
    assert "create" in golden.calls() and "snapshot_owner" not in golden.calls()
