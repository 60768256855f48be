"""Where a Local VM and a Local snapshot live on disk, and the VM's meta.json.

    <root>/<vm_id>/root/        the VM's HOME (with workspace/)
    <root>/<vm_id>/tmp/         the VM's TMPDIR
    <root>/<vm_id>/meta.json    owner, names, labels, state: the VM exists iff this file does
    <root>/<vm_id>/lock         the VM's lock, taken by every process over <root> (see filelock)
    <root>/.snapshots/<id>/root a snapshot of a VM's HOME

Everything the provider knows is in these files, so an operator restart loses nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

LocalState = Literal["running", "paused"]
SNAPSHOTS = ".snapshots"


def is_id(text: str) -> bool:
    """Whether `text` is a canonical uuid, the only form of VM and snapshot ids.

    Ids come back from Kubernetes objects; checking them keeps a crafted id such
    as "../.." from ever naming a path outside the provider's root.
    """
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Meta:
    owner_uid: str
    name: str
    namespace: str
    created_at: str
    state: LocalState = "running"
    labels: Mapping[str, str] = field(default_factory=dict)
    source_snapshot: str | None = None
    # Set while a snapshot holds the VM's processes stopped; still set after a
    # crash mid-snapshot, which tells the next caller to continue them.
    frozen_for_snapshot: bool = False

    def with_state(self, state: LocalState) -> Meta:
        return replace(self, state=state)

    def with_frozen(self, frozen: bool) -> Meta:
        return replace(self, frozen_for_snapshot=frozen)

    def to_json(self) -> str:
        data = asdict(self)
        data["labels"] = dict(self.labels)
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Meta:
        data: dict[str, Any] = json.loads(text)
        state = data.get("state", "running")
        return cls(
            owner_uid=str(data["owner_uid"]), name=str(data.get("name", "")),
            namespace=str(data.get("namespace", "")), created_at=str(data.get("created_at", "")),
            state="paused" if state == "paused" else "running",
            labels={str(k): str(v) for k, v in dict(data.get("labels") or {}).items()},
            source_snapshot=data.get("source_snapshot"),
            frozen_for_snapshot=bool(data.get("frozen_for_snapshot", False)),
        )


@dataclass(frozen=True)
class VmDirectory:
    """The files of one VM."""

    vm_id: str
    path: Path

    @property
    def home(self) -> Path:
        return self.path / "root"

    @property
    def workspace(self) -> Path:
        return self.home / "workspace"

    @property
    def tmp(self) -> Path:
        return self.path / "tmp"

    @property
    def meta_file(self) -> Path:
        return self.path / "meta.json"

    @property
    def lock_file(self) -> Path:
        return self.path / "lock"

    def read_meta(self) -> Meta | None:
        """The VM's meta, or None when the VM does not exist (any more)."""
        try:
            return Meta.from_json(self.meta_file.read_text())
        except (FileNotFoundError, NotADirectoryError):
            return None

    def write_meta(self, meta: Meta) -> None:
        write_atomically(self.meta_file, meta.to_json())


class Layout:
    """Paths under the provider's root; ids that are not uuids name nothing."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def snapshots(self) -> Path:
        return self.root / SNAPSHOTS

    def vm(self, vm_id: str) -> VmDirectory | None:
        return VmDirectory(vm_id, self.root / vm_id) if is_id(vm_id) else None

    def snapshot(self, snapshot_id: str) -> Path | None:
        return self.snapshots / snapshot_id if is_id(snapshot_id) else None

    def vms(self) -> list[VmDirectory]:
        """Every VM directory that has a meta.json (others are half made or half deleted)."""
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        found = (self.vm(name) for name in sorted(names))
        return [vm for vm in found if vm is not None and vm.meta_file.is_file()]


def write_atomically(path: Path, text: str) -> None:
    """Write a file so that readers see the old or the new content, never a torn one."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def remove_tree(path: Path) -> None:
    """Remove a directory tree; a missing one is fine.

    A VM may leave directories without write or read permission behind; a
    non-root operator cannot empty those until it makes them accessible again.
    """
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        return
    except PermissionError:
        # os.walk lists a directory only after the loop below (at its parent)
        # made it accessible, so even a chmod 000 directory is entered.
        with contextlib.suppress(OSError):
            os.chmod(path, 0o700)
        for directory, subdirectories, _files in os.walk(path):
            for name in subdirectories:
                with contextlib.suppress(OSError):
                    child = os.path.join(directory, name)
                    if not os.path.islink(child):
                        os.chmod(child, 0o700)
        shutil.rmtree(path)
