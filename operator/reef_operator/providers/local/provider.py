"""The Local provider: a "VM" is a directory on the operator's host.

Local mode is for development, demos and single-machine use. A VM is a
directory (HOME, TMPDIR, meta.json) and the ordinary processes its shell
started, found by the marker in their environment (see `processes`). Pause
stops those processes with SIGSTOP, resume continues them, delete kills them
and removes the directory. Nothing needs root: no namespaces, no cgroups.

Isolation is by convention only: a VM's processes see the whole host file
system, so commands must use $HOME and $TMPDIR rather than /root and /tmp.
All state is on disk, so the operator may restart at any time.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

from reef_operator.providers.base import VmObservation, VmOwner, VmRequest
from reef_operator.providers.errors import BadRequest, NotFound, ServerError, ShellError
from reef_operator.providers.local import filelock, processes
from reef_operator.providers.local.copying import copy_tree
from reef_operator.providers.local.layout import Layout, Meta, VmDirectory, new_id, remove_tree
from reef_operator.providers.local.shell import ENDPOINT, LocalShell

OWNER_FILE = "owner.json"  # beside a snapshot's root: the node whose VM it was taken of

logger = logging.getLogger(__name__)

# sun_path holds 107 bytes: <root>/<36-char id>/tmp/tmux-<uid>/default must fit.
_SOCKET_PATH_LIMIT = 107
_SOCKET_PATH_RESERVE = len("/00000000-0000-0000-0000-000000000000/tmp/tmux-1000000/default")


class LocalProvider:
    """VMs as directories under `root` and processes on this host."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self.layout = Layout(self.root)
        # One lock per VM orders pause, resume, snapshot, delete and the start of
        # commands, so no command starts on a VM between its pause's last scan
        # and the "paused" mark. It holds across processes (a lock file in the
        # VM's directory): `kubectl reef exec` over the operator's root waits
        # for the operator's pause. These asyncio locks queue this process's
        # callers in front of the file lock, one waiter per VM.
        self._locks: dict[str, asyncio.Lock] = {}
        if len(str(self.root)) + _SOCKET_PATH_RESERVE > _SOCKET_PATH_LIMIT:
            logger.warning("Local VM root %s is long: unix sockets in a VM's TMPDIR (tmux's) "
                           "may exceed the %d-byte path limit", self.root, _SOCKET_PATH_LIMIT)

    async def create(self, request: VmRequest) -> str:
        """Make the VM's directory, seeded from a snapshot if `commit_id` names one.

        Sizing (vcpu, memory, disk) does not apply: processes share the host.
        meta.json is written last, so a crash midway leaves no VM that `find`
        or `observe` would see, only files.
        """
        if request.tag or request.ref:
            raise BadRequest("the Local provider boots from its own snapshots (commitId) only; "
                             f"got tag={request.tag!r} ref={request.ref!r}", endpoint=ENDPOINT)
        source: Path | None = None
        if request.commit_id:
            snapshot = self.layout.snapshot(request.commit_id)
            source = None if snapshot is None else snapshot / "root"
            if source is None or not await asyncio.to_thread(source.is_dir):
                raise NotFound(f"no Local snapshot {request.commit_id}", endpoint=ENDPOINT)
        vm_id = new_id()
        vm = self.layout.vm(vm_id)
        assert vm is not None
        meta = Meta(owner_uid=request.owner_uid, name=request.name,
                    namespace=request.namespace, labels=dict(request.labels),
                    created_at=datetime.datetime.now(datetime.UTC).isoformat(),
                    source_snapshot=request.commit_id or None)
        await asyncio.to_thread(_make_vm, vm, meta, source)
        logger.info("created Local VM %s for %s/%s%s", vm_id, request.namespace, request.name,
                    f" from snapshot {source.parent.name}" if source else "")
        return vm_id

    async def find(self, request: VmRequest) -> str | None:
        """The oldest VM made for this owner (there is only one unless someone copied one)."""
        def mine() -> str | None:
            found = [(meta.created_at, vm.vm_id) for vm in self.layout.vms()
                     if (meta := vm.read_meta()) is not None
                     and meta.owner_uid == request.owner_uid]
            return min(found)[1] if found else None

        return await asyncio.to_thread(mine)

    async def observe(self, vm_id: str) -> VmObservation:
        vm = self.layout.vm(vm_id)
        meta = None if vm is None else await asyncio.to_thread(vm.read_meta)
        if vm is None or meta is None:
            return VmObservation(vm_id, "gone")
        owner = VmOwner(meta.namespace, meta.owner_uid) if meta.owner_uid else None
        return VmObservation(vm_id, meta.state, str(vm.path), owner)

    async def claim(self, vm_id: str, request: VmRequest) -> None:
        """Record the adopting node in the VM's meta (the Local VM's labels)."""
        async with self._lock(vm_id):
            vm, meta = await self._load(vm_id)
            await asyncio.to_thread(vm.write_meta, replace(
                meta, owner_uid=request.owner_uid, name=request.name,
                namespace=request.namespace))

    async def pause(self, vm_id: str) -> None:
        """Mark the VM paused, then stop its processes (again, if it already was)."""
        async with self._lock(vm_id):
            vm, meta = await self._load(vm_id)
            await asyncio.to_thread(vm.write_meta, meta.with_state("paused"))
            await asyncio.to_thread(processes.stop_all, vm_id)
        logger.info("paused Local VM %s", vm_id)

    async def resume(self, vm_id: str) -> None:
        """Continue every process of the VM, then mark it running."""
        async with self._lock(vm_id):
            vm, meta = await self._load(vm_id)
            await asyncio.to_thread(processes.continue_all, vm_id)
            await asyncio.to_thread(vm.write_meta, meta.with_state("running"))
        logger.info("resumed Local VM %s", vm_id)

    async def delete(self, vm_id: str) -> None:
        """Kill the VM's processes, then remove its files; a missing VM is fine.

        Processes die first and meta.json goes before the other files, so a
        crash midway leaves either a VM that still exists (and is deleted again)
        or files no VM owns, never running processes of a VM observed "gone".
        """
        try:
            async with self._lock(vm_id) as vm:
                survivors = await asyncio.to_thread(processes.kill_all, vm_id)
                if survivors:
                    raise ServerError(f"processes {survivors} of Local VM {vm_id} survive "
                                      "SIGKILL (uninterruptible sleep?); try again",
                                      endpoint=ENDPOINT)
                await asyncio.to_thread(_remove_vm, vm)
        except NotFound:  # no directory: nothing to delete
            return
        self._locks.pop(vm_id, None)
        logger.info("deleted Local VM %s", vm_id)

    async def snapshot(self, vm_id: str) -> str:
        """Copy the VM's HOME into a new snapshot and return its id.

        A running VM's processes are stopped during the copy so that the files
        are consistent, then continued. TMPDIR is not kept (as /tmp on a VM).
        FIFOs and sockets are skipped: a copy must never open an agent's FIFO.
        """
        async with self._lock(vm_id):
            vm, meta = await self._load(vm_id)
            snapshot_id = new_id()
            target = self.layout.snapshots / snapshot_id
            owner = VmOwner(meta.namespace, meta.owner_uid)
            if meta.state == "paused":
                await asyncio.to_thread(_copy_snapshot, vm, target, owner)
            else:
                await asyncio.to_thread(vm.write_meta, meta.with_frozen(True))
                stopped = await asyncio.to_thread(processes.stop_all, vm_id)
                try:
                    await asyncio.to_thread(_copy_snapshot, vm, target, owner)
                finally:
                    await asyncio.to_thread(processes.continue_all, vm_id, stopped)
                    await asyncio.to_thread(vm.write_meta, meta.with_frozen(False))
        logger.info("snapshot %s of Local VM %s", snapshot_id, vm_id)
        return snapshot_id

    async def snapshot_owner(self, snapshot_id: str) -> VmOwner | None:
        """The owner recorded beside the snapshot's files when it was taken."""
        path = self.layout.snapshot(snapshot_id)
        if path is None:
            return None
        try:
            text = await asyncio.to_thread((path / OWNER_FILE).read_text)
            data = json.loads(text)
            return VmOwner(str(data["namespace"]), str(data["uid"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    async def delete_snapshot(self, snapshot_id: str) -> None:
        """Remove a snapshot; a missing one is fine."""
        path = self.layout.snapshot(snapshot_id)
        if path is not None:
            await asyncio.to_thread(_remove_snapshot, path)

    async def shell(self, vm_id: str, pinned_fingerprint: str | None = None) -> LocalShell:
        """A shell on the VM. There is no host key: `pinned_fingerprint` is ignored."""
        await self._load(vm_id, locked=False)
        return LocalShell(vm_id, lambda: self._admit(vm_id))

    def forget(self, vm_id: str) -> None:
        """Nothing is cached per VM: every command starts a fresh process."""

    @asynccontextmanager
    async def _lock(self, vm_id: str) -> AsyncIterator[VmDirectory]:
        """Hold the VM's lock (see `__init__`); NotFound if the VM has no directory."""
        vm = self.layout.vm(vm_id)
        if vm is None:
            raise NotFound(f"no Local VM {vm_id}", endpoint=ENDPOINT)
        async with self._locks.setdefault(vm_id, asyncio.Lock()), \
                contextlib.AsyncExitStack() as stack:
            try:
                await stack.enter_async_context(filelock.held(vm.lock_file))
            except FileNotFoundError:
                raise NotFound(f"no Local VM {vm_id}", endpoint=ENDPOINT) from None
            yield vm

    async def _load(self, vm_id: str, *, locked: bool = True) -> tuple[VmDirectory, Meta]:
        """The VM's directory and meta (NotFound if gone). Called under the VM's lock
        (`locked`), it also undoes a snapshot's freeze that a crash left behind."""
        vm = self.layout.vm(vm_id)
        meta = None if vm is None else await asyncio.to_thread(vm.read_meta)
        if vm is None or meta is None:
            raise NotFound(f"no Local VM {vm_id}", endpoint=ENDPOINT)
        if meta.frozen_for_snapshot and locked:
            # Under the lock no snapshot of ours is under way: this mark is a
            # crashed operator's. Its freeze stopped processes of a running VM.
            if meta.state == "running":
                await asyncio.to_thread(processes.continue_all, vm_id)
            meta = meta.with_frozen(False)
            await asyncio.to_thread(vm.write_meta, meta)
            logger.warning("continued Local VM %s, left frozen by an interrupted snapshot",
                           vm_id)
        return vm, meta

    @asynccontextmanager
    async def _admit(self, vm_id: str) -> AsyncIterator[VmDirectory]:
        """Hold the VM's lock while a command starts; refuse a paused or missing VM."""
        async with self._lock(vm_id):
            vm, meta = await self._load(vm_id)
            if meta.state == "paused":
                raise ShellError(f"VM {vm_id} is paused", endpoint=ENDPOINT)
            yield vm


def kill_every_vm(root: Path) -> None:
    """Kill the processes of every VM under `root` (blocking).

    For whoever throws a whole root away (the demo, test fixtures) while VMs may
    still run in it: processes outlive their directory otherwise.
    """
    with contextlib.suppress(FileNotFoundError):
        for entry in os.listdir(root):
            if Layout(root).vm(entry) is not None:
                processes.kill_all(entry)


def _make_vm(vm: VmDirectory, meta: Meta, source: Path | None) -> None:
    vm.path.mkdir(parents=True)
    if source is not None:
        copy_tree(source, vm.home)
    vm.workspace.mkdir(parents=True, exist_ok=True)
    vm.home.chmod(0o700)
    vm.tmp.mkdir(mode=0o700)
    vm.write_meta(meta)


def _remove_vm(vm: VmDirectory) -> None:
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        os.unlink(vm.meta_file)
    remove_tree(vm.path)


def _copy_snapshot(vm: VmDirectory, target: Path, owner: VmOwner) -> None:
    # Copied beside its final place and renamed: a crash mid-copy leaves a
    # ".partial" directory, never a snapshot that lacks files.
    partial = target.with_name(f"{target.name}.partial")
    try:
        copy_tree(vm.home, partial / "root")
        (partial / OWNER_FILE).write_text(json.dumps(
            {"namespace": owner.namespace, "uid": owner.uid}))
        os.rename(partial, target)
    except BaseException:
        remove_tree(partial)
        raise


def _remove_snapshot(path: Path) -> None:
    # Renamed first, so `create` never seeds a VM from a half-removed snapshot.
    doomed = path.with_name(f"{path.name}.{new_id()}.deleting")
    try:
        os.rename(path, doomed)
    except FileNotFoundError:
        return
    remove_tree(doomed)
