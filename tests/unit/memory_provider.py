"""An in-memory VM provider and apiserver for unit tests of the VM node reconciler.

They record every call in one shared journal, in order, so a test can assert
what the reconciler did and in which order (for example: the request is marked
on the object before a create is sent). Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reef_operator.providers.base import (
    CommandResult,
    ObservedState,
    StreamingProcess,
    VmObservation,
    VmOwner,
    VmRequest,
)
from reef_operator.vmnodes.heartbeat import REPLY

Journal = list[tuple[Any, ...]]


@dataclass
class MemoryVm:
    state: ObservedState = "running"
    address: str = "10.0.0.7"
    owner_uid: str = ""
    namespace: str = ""

    @property
    def owner(self) -> VmOwner | None:
        return VmOwner(self.namespace, self.owner_uid) if self.owner_uid else None


class MemoryShell:
    """A shell whose boot script and heartbeat answer as its provider says."""

    def __init__(self, provider: MemoryProvider, vm_id: str) -> None:
        self.provider, self.vm_id = provider, vm_id

    @property
    def host_key_fingerprint(self) -> str:
        return "SHA256:memory"

    async def run(self, command: str, *, stdin: str | None = None,
                  within: float | None = 60.0) -> CommandResult:
        self.provider.journal.append(("run", self.vm_id, command, stdin))
        if command.startswith("echo"):
            if self.provider.heartbeat_error is not None:
                raise self.provider.heartbeat_error
            return CommandResult(0, REPLY + "\n", "") if self.provider.heartbeat_answers \
                else CommandResult(1, "", "no reply")
        return self.provider.boot_result

    async def stream(self, command: str) -> StreamingProcess:
        raise NotImplementedError("the reconciler streams nothing")


@dataclass
class MemoryProvider:
    """VMs in a dict; errors and answers set by the test."""

    journal: Journal
    name: str = "vers"
    vms: dict[str, MemoryVm] = field(default_factory=dict)
    snapshots: list[str] = field(default_factory=list)
    snapshot_owners: dict[str, VmOwner | None] = field(default_factory=dict)
    boot_result: CommandResult = field(default_factory=lambda: CommandResult(0, "booted", ""))
    heartbeat_answers: bool = True
    heartbeat_error: Exception | None = None
    shell_error: Exception | None = None
    observe_error: Exception | None = None
    new_vm_state: ObservedState = "running"

    async def create(self, request: VmRequest) -> str:
        vm_id = f"vm-{len(self.vms) + 1}"
        self.journal.append(("create", request.owner_uid))
        self.vms[vm_id] = MemoryVm(self.new_vm_state, owner_uid=request.owner_uid,
                                   namespace=request.namespace)
        return vm_id

    async def find(self, request: VmRequest) -> str | None:
        self.journal.append(("find", request.owner_uid))
        return next((vm_id for vm_id, vm in self.vms.items()
                     if vm.owner_uid == request.owner_uid), None)

    async def observe(self, vm_id: str) -> VmObservation:
        if self.observe_error is not None:
            raise self.observe_error
        vm = self.vms.get(vm_id)
        return VmObservation(vm_id, "gone") if vm is None else \
            VmObservation(vm_id, vm.state, vm.address, vm.owner)

    async def claim(self, vm_id: str, request: VmRequest) -> None:
        self.journal.append(("claim", vm_id))
        self.vms[vm_id].owner_uid, self.vms[vm_id].namespace = request.owner_uid, request.namespace

    async def pause(self, vm_id: str) -> None:
        self.journal.append(("pause", vm_id))
        self.vms[vm_id].state = "paused"

    async def resume(self, vm_id: str) -> None:
        self.journal.append(("resume", vm_id))
        self.vms[vm_id].state = "running"

    async def delete(self, vm_id: str) -> None:
        self.journal.append(("delete", vm_id))
        self.vms.pop(vm_id, None)

    async def snapshot(self, vm_id: str) -> str:
        snapshot = f"snap-{len(self.snapshots) + 1}"
        self.journal.append(("snapshot", vm_id))
        self.snapshot_owners[snapshot] = self.vms[vm_id].owner
        self.snapshots.append(snapshot)
        return snapshot

    async def snapshot_owner(self, snapshot_id: str) -> VmOwner | None:
        self.journal.append(("snapshot_owner", snapshot_id))
        return self.snapshot_owners.get(snapshot_id)

    async def delete_snapshot(self, snapshot_id: str) -> None:
        self.journal.append(("delete_snapshot", snapshot_id))
        self.snapshots.remove(snapshot_id)

    async def shell(self, vm_id: str, pinned_fingerprint: str | None = None) -> MemoryShell:
        if self.shell_error is not None:
            raise self.shell_error
        return MemoryShell(self, vm_id)

    def forget(self, vm_id: str) -> None:
        pass


@dataclass
class MemoryKube:
    """The writes the reconciler makes, applied to one object and journaled; `others` are
    the other VMNodes (a pool's members) for the guarded claim and deletes."""

    journal: Journal
    body: dict[str, Any]
    others: dict[str, dict[str, Any]] = field(default_factory=dict)

    async def patch_guarded(self, plural: str, namespace: str, name: str,
                            patch: Mapping[str, Any]) -> bool:
        """As the apiserver: refused unless the resourceVersion is the object's current."""
        self.journal.append(("patch_guarded", name))
        target = self.others.get(name)
        meta = dict(patch["metadata"])
        if target is None or \
                target["metadata"].get("resourceVersion") != meta.pop("resourceVersion"):
            return False
        target["metadata"]["annotations"] = {**(target["metadata"].get("annotations") or {}),
                                             **meta.get("annotations", {})}
        target["metadata"]["ownerReferences"] = meta["ownerReferences"]
        target["metadata"]["resourceVersion"] = \
            str(int(target["metadata"]["resourceVersion"]) + 1)
        return True

    async def delete_object(self, plural: str, namespace: str, name: str) -> None:
        self.journal.append(("delete_object", name))
        self.others.pop(name, None)

    async def patch_metadata(self, plural: str, namespace: str, name: str,
                             patch: Mapping[str, Any]) -> None:
        self.journal.append(("patch_metadata", dict(patch)))
        meta = self.body["metadata"]
        for key in ("labels", "annotations"):
            merged = {**(meta.get(key) or {}), **(patch.get(key) or {})}
            if key in patch:
                meta[key] = {k: v for k, v in merged.items() if v is not None}
        for key in ("ownerReferences", "finalizers"):
            if key in patch:
                meta[key] = patch[key]

    async def patch_status(self, plural: str, namespace: str, name: str,
                           patch: Mapping[str, Any]) -> None:
        self.journal.append(("patch_status", dict(patch)))
        status = {**(self.body.get("status") or {}), **patch}
        self.body["status"] = {k: v for k, v in status.items() if v is not None}
