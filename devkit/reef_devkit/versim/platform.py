"""The simulated platform's state: VMs, commits, tags, and the faults it is told to inject.

Methods raise `ApiError` with the status and message the real API would give;
the HTTP layer (api.py) only translates.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from reef_devkit.versim.sandbox import Sandbox
from reef_operator.providers.local.copying import copy_tree

OWNER_ID = "00000000-0000-4000-8000-0000000000aa"
GOLDEN_SIZE = {"vcpu_count": 2, "mem_size_mib": 4096, "fs_size_mib": 8192}


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Faults:
    """What the simulator does wrong on purpose (all off by default)."""

    error_rate: float = 0.0          # share of API requests answered 500/503 before processing
    lose_response_rate: float = 0.0  # share of creates carried out whose answer is then dropped
    rate_limit_burst: int = 0        # the next N requests answer 429
    retry_after_ms: int = 100        # Retry-After-Ms sent with 429s
    latency: float = 0.0             # seconds added to every API request
    max_vms: int = 0                 # > 0: creates beyond this many live VMs answer 403


@dataclass
class SimVm:
    vm_id: str
    created_at: datetime.datetime
    sandbox: Sandbox
    host_key: asyncssh.SSHKey
    client_key: asyncssh.SSHKey
    config: dict[str, Any]
    labels: dict[str, str] | None = None
    state: str = "booting"
    parent_commit_id: str | None = None
    grandparent_vm_id: str | None = None
    deleted_at: datetime.datetime | None = None
    frozen_behind_back: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    booted: asyncio.Event = field(default_factory=asyncio.Event)

    def summary(self) -> dict[str, Any]:
        return {"vm_id": self.vm_id, "owner_id": OWNER_ID, "created_at": _iso(self.created_at),
                "labels": self.labels, "state": self.state}

    def metadata(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "vm_id": self.vm_id, "owner_id": OWNER_ID, "created_at": _iso(self.created_at),
            "state": self.state, "ip": _fake_ip(self.vm_id),
        }
        if self.deleted_at:
            data["deleted_at"] = _iso(self.deleted_at)
        if self.parent_commit_id:
            data["parent_commit_id"] = self.parent_commit_id
        if self.grandparent_vm_id:
            data["grandparent_vm_id"] = self.grandparent_vm_id
        return data


@dataclass
class SimCommit:
    commit_id: str
    created_at: datetime.datetime
    directory: Path
    config: dict[str, Any]
    parent_vm_id: str | None
    name: str = ""
    description: str = ""

    def summary(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "commit_id": self.commit_id, "name": self.name, "owner_id": OWNER_ID,
            "is_public": False, "created_at": _iso(self.created_at),
        }
        if self.description:
            data["description"] = self.description
        if self.parent_vm_id:
            data["parent_vm_id"] = self.parent_vm_id
        return data


class Platform:
    def __init__(self, state_dir: Path, boot_delay: float = 0.5,
                 resume_delay: float = 0.0) -> None:
        self.state_dir = state_dir
        self.boot_delay = boot_delay
        self.resume_delay = resume_delay   # a resume answers after this long, as a real one
        self.faults = Faults()
        self.vms: dict[str, SimVm] = {}
        self.commits: dict[str, SimCommit] = {}
        self.tags: dict[str, str] = {}
        self.request_counts: dict[str, int] = {}
        # One cgroup parent per simulator instance, so a crash leaves a clean handle.
        self.cgroup_parent = "versim-" + hashlib.sha256(str(state_dir).encode()).hexdigest()[:10]
        self._boot_tasks: set[asyncio.Task[None]] = set()

    # -- lookups --------------------------------------------------------------------------
    def live_vm(self, vm_id: str) -> SimVm:
        _check_uuid(vm_id, "VM")
        vm = self.vms.get(vm_id)
        if vm is None or vm.deleted_at is not None:
            raise ApiError(404, f"VM {vm_id} not found")
        return vm

    def awake_vm(self, vm_id: str) -> SimVm:
        vm = self.live_vm(vm_id)
        if vm.state == "sleeping":
            raise ApiError(409, f"VM {vm_id} is sleeping")
        return vm

    def commit_by_id(self, commit_id: str) -> SimCommit:
        _check_uuid(commit_id, "commit")
        commit = self.commits.get(commit_id)
        if commit is None:
            raise ApiError(404, f"commit {commit_id} not found")
        return commit

    def commit_by_tag(self, tag: str) -> SimCommit:
        commit_id = self.tags.get(tag)
        if commit_id is None:
            raise ApiError(404, f"tag {tag} not found")
        return self.commit_by_id(commit_id)

    # -- lifecycle ------------------------------------------------------------------------
    async def new_root(self, config: dict[str, Any], wait_boot: bool) -> SimVm:
        sizing = {**GOLDEN_SIZE, **{k: v for k, v in config.items() if k in GOLDEN_SIZE}}
        for key, value in sizing.items():
            if not isinstance(value, int) or value <= 0:
                raise ApiError(400, f"vm_config.{key} must be a positive integer")
        labels = config.get("labels")
        if labels is not None and not (isinstance(labels, dict) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in labels.items())):
            raise ApiError(400, "vm_config.labels must map strings to strings")
        if config.get("image_name") not in (None, "default"):
            raise ApiError(404, f"image {config['image_name']} not found")
        vm = await self._create(sizing, labels=labels)
        if wait_boot:
            await self.wait_booted(vm)
        return vm

    async def from_commit(self, commit: SimCommit) -> SimVm:
        return await self._create(commit.config, root_from=commit.directory / "root",
                                  parent_commit_id=commit.commit_id,
                                  grandparent_vm_id=commit.parent_vm_id)

    async def _create(self, config: dict[str, Any], *, labels: dict[str, str] | None = None,
                      root_from: Path | None = None, parent_commit_id: str | None = None,
                      grandparent_vm_id: str | None = None) -> SimVm:
        live = sum(1 for vm in self.vms.values() if vm.deleted_at is None)
        if self.faults.max_vms and live >= self.faults.max_vms:
            raise ApiError(403, f"VM limit reached ({self.faults.max_vms})")
        vm_id = str(uuid.uuid4())
        sandbox = Sandbox(self.state_dir / "vms" / vm_id, f"{self.cgroup_parent}/{vm_id}")
        vm = SimVm(
            vm_id=vm_id, created_at=_now(), sandbox=sandbox,
            host_key=asyncssh.generate_private_key("ssh-ed25519"),
            client_key=asyncssh.generate_private_key("ssh-ed25519"),
            config=dict(config), labels=labels, parent_commit_id=parent_commit_id,
            grandparent_vm_id=grandparent_vm_id,
        )
        sandbox.prepare(vm.client_key, vm.host_key, root_from=root_from)
        self.vms[vm_id] = vm
        await sandbox.start()
        task = asyncio.create_task(self._boot(vm))
        self._boot_tasks.add(task)
        task.add_done_callback(self._boot_tasks.discard)
        return vm

    async def _boot(self, vm: SimVm) -> None:
        try:
            await vm.sandbox.wait_listening()
            await asyncio.sleep(self.boot_delay)
            if vm.state == "booting":
                vm.state = "running"
        except Exception:
            vm.state = "dead"
        finally:
            vm.booted.set()

    async def wait_booted(self, vm: SimVm) -> None:
        await vm.booted.wait()

    async def set_state(self, vm: SimVm, desired: str, skip_wait_boot: bool) -> None:
        if desired not in ("Paused", "Running"):
            raise ApiError(400, f"invalid state {desired!r}: expected \"Paused\" or \"Running\"")
        if vm.state == "dead":
            raise ApiError(409, f"VM {vm.vm_id} is dead")
        if not skip_wait_boot:
            await self.wait_booted(vm)
        async with vm.lock:
            if desired == "Paused" and vm.state != "paused":
                await vm.sandbox.freeze()
                vm.state = "paused"
            elif desired == "Running" and vm.state == "paused":
                await asyncio.sleep(self.resume_delay)
                if not vm.frozen_behind_back:
                    await vm.sandbox.thaw()
                vm.state = "running"

    async def commit(self, vm: SimVm, name: str, description: str, keep_paused: bool) -> SimCommit:
        await self.wait_booted(vm)
        commit_id = str(uuid.uuid4())
        directory = self.state_dir / "commits" / commit_id
        async with vm.lock:
            was_paused = vm.state == "paused"
            if not was_paused:
                await vm.sandbox.freeze()
            try:
                await asyncio.to_thread(copy_tree, vm.sandbox.root, directory / "root")
            finally:
                if keep_paused:
                    vm.state = "paused"
                elif not was_paused and not vm.frozen_behind_back:
                    await vm.sandbox.thaw()
        commit = SimCommit(commit_id, _now(), directory, dict(vm.config), vm.vm_id,
                           name=name, description=description)
        self.commits[commit_id] = commit
        return commit

    async def delete(self, vm: SimVm) -> None:
        vm.state = "dead"
        vm.deleted_at = _now()
        await vm.sandbox.destroy()

    def delete_commit(self, commit: SimCommit) -> None:
        in_use = [vm.vm_id for vm in self.vms.values()
                  if vm.deleted_at is None and vm.parent_commit_id == commit.commit_id]
        if in_use:
            raise ApiError(409, f"commit {commit.commit_id} is used by VM {in_use[0]}")
        del self.commits[commit.commit_id]
        for tag in [t for t, c in self.tags.items() if c == commit.commit_id]:
            del self.tags[tag]
        shutil.rmtree(commit.directory, ignore_errors=True)

    # -- behind the operator's back -------------------------------------------------------
    async def freeze_behind_back(self, vm: SimVm) -> None:
        vm.frozen_behind_back = True
        await vm.sandbox.freeze()

    async def thaw_behind_back(self, vm: SimVm) -> None:
        vm.frozen_behind_back = False
        if vm.state != "paused":
            await vm.sandbox.thaw()

    async def kill(self, vm: SimVm) -> None:
        vm.state = "dead"
        await vm.sandbox.kill()

    async def shutdown(self) -> None:
        for task in list(self._boot_tasks):
            task.cancel()
        for vm in self.vms.values():
            if vm.deleted_at is None:
                await vm.sandbox.kill()
        parent = vm_cgroup_parent_path(self.cgroup_parent)
        if parent is not None:
            with contextlib.suppress(OSError):
                parent.rmdir()


def vm_cgroup_parent_path(parent: str) -> Path | None:
    for base in (Path("/sys/fs/cgroup/freezer"), Path("/sys/fs/cgroup")):
        if (base / parent).exists():
            return base / parent
    return None


def _check_uuid(value: str, what: str) -> None:
    try:
        uuid.UUID(value)
    except ValueError:
        raise ApiError(400, f"invalid {what} id {value!r}: expected a UUID") from None


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _iso(moment: datetime.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _fake_ip(vm_id: str) -> str:
    digest = hashlib.sha256(vm_id.encode()).hexdigest()
    return "fd00:" + ":".join(digest[i:i + 4] for i in range(0, 16, 4)) + "::1"
