"""The one small interface every VM provider offers the controllers.

The controllers never know whether a VM is a Vers microVM or a directory on
the operator's host: they create, observe, pause, resume, delete and snapshot
VMs and open a shell on them, all through `Provider`. What can go wrong is in
`providers.errors`; neither this module nor that one knows any provider.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

__all__ = [
    "CommandResult",
    "ObservedState",
    "Provider",
    "Shell",
    "StreamingProcess",
    "VmObservation",
    "VmOwner",
    "VmRequest",
]

ObservedState = Literal["booting", "running", "paused", "sleeping", "dead", "gone"]


@dataclass(frozen=True)
class VmRequest:
    """What a VM node asks a provider for."""

    owner_uid: str                      # the VMNode's uid: labels the VM, finds it after a crash
    name: str                           # the VMNode's name (a label for humans)
    namespace: str
    commit_id: str | None = None        # golden image: at most one of commit_id, tag, ref
    tag: str | None = None
    ref: str | None = None
    vcpu: int | None = None             # sizing for a fresh root VM
    memory_mib: int | None = None
    disk_mib: int | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    # When the vm-requested-at mark was written: a VM created after it (minus clock
    # skew) that nobody labelled may be this owner's, half-made before a crash.
    pending_since: datetime.datetime | None = None


@dataclass(frozen=True)
class CommandResult:
    """What a command on a VM did: a non-zero exit is a result, not an error."""

    exit_status: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


@dataclass(frozen=True)
class VmOwner:
    """The node a VM is labelled for: the labels are the only proof of ownership the
    platform keeps, so every action on an existing VM is checked against them."""

    namespace: str
    uid: str


@dataclass(frozen=True)
class VmObservation:
    vm_id: str
    state: ObservedState                # "gone": the provider has no such VM (any more)
    address: str = ""
    owner: VmOwner | None = None        # None: the VM carries no owner labels


class StreamingProcess(Protocol):
    """A long-running command on a VM whose stdout is read as it comes."""

    async def read(self, size: int) -> bytes:
        """Up to `size` bytes of stdout; b"" at end of stream."""
        ...

    def close(self) -> None: ...

    async def wait_closed(self) -> None:
        """Until the command is gone after `close()` (a process reaped, a channel shut),
        so a short-lived caller (the plugin's `read --follow`) leaves nothing half-closed
        behind its event loop."""
        ...


class Shell(Protocol):
    """Commands on one VM."""

    @property
    def host_key_fingerprint(self) -> str:
        """The identity of the VM's endpoint to pin ("" where there is nothing to pin)."""
        ...

    async def run(self, command: str, *, stdin: str | None = None,
                  within: float | None = 60.0) -> CommandResult:
        """Run a shell command as root; a non-zero exit is a result, not an exception.

        Raises `ShellError` when the command cannot be run (unreachable, timed out).
        """
        ...

    async def stream(self, command: str) -> StreamingProcess:
        """Start a long-running command and read its stdout as it comes."""
        ...


class Provider(Protocol):
    """Where VMs come from. Every method is idempotent where the platform allows.

    Failures are `errors.ProviderError`s (and `OSError` from the operator's own host);
    a provider's own exceptions never leave it.
    """

    name: str

    async def create(self, request: VmRequest) -> str:
        """Create a VM for `request` and return its id.

        Raises `errors.OutcomeUnknown` when the VM may or may not exist; the
        caller then calls `find` before trying again. Never creates twice by itself.
        """
        ...

    async def find(self, request: VmRequest) -> str | None:
        """The VM an earlier `create` for this owner made, if any (after a crash)."""
        ...

    async def observe(self, vm_id: str) -> VmObservation:
        """The VM's current state; state "gone" if the provider has no such VM."""
        ...

    async def claim(self, vm_id: str, request: VmRequest) -> None:
        """Label an unlabelled VM for `request`'s owner (adoption); other labels stay."""
        ...

    async def pause(self, vm_id: str) -> None: ...

    async def resume(self, vm_id: str) -> None: ...

    async def delete(self, vm_id: str) -> None:
        """Delete the VM; a VM that is already gone is not an error."""
        ...

    async def snapshot(self, vm_id: str) -> str:
        """Snapshot the VM (a Vers commit) and return the snapshot id; the snapshot records
        the VM's owner, which `snapshot_owner` reads back."""
        ...

    async def snapshot_owner(self, snapshot_id: str) -> VmOwner | None:
        """The node whose VM the snapshot was taken of; None when the provider cannot say
        (no such snapshot, or neither a record nor a labelled parent VM)."""
        ...

    async def delete_snapshot(self, snapshot_id: str) -> None: ...

    async def shell(self, vm_id: str, pinned_fingerprint: str | None = None) -> Shell:
        """A shell on the VM; with a pinned fingerprint the endpoint must match it."""
        ...

    def forget(self, vm_id: str) -> None:
        """Drop cached connections and keys for the VM (it was deleted or replaced)."""
        ...
