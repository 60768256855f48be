"""Typed answers of the Vers API."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any, Literal, NewType

from reef_operator.secret import Secret

VmId = NewType("VmId", str)
CommitId = NewType("CommitId", str)
VmState = Literal["booting", "running", "paused", "sleeping", "dead"]
DesiredVmState = Literal["Running", "Paused"]


def _time(value: Any) -> datetime.datetime | None:
    if not value:
        return None
    return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@dataclass(frozen=True)
class Vm:
    vm_id: VmId
    state: VmState
    owner_id: str = ""
    created_at: datetime.datetime | None = None
    labels: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Vm:
        return cls(
            vm_id=VmId(data["vm_id"]),
            state=data["state"],
            owner_id=data.get("owner_id", ""),
            created_at=_time(data.get("created_at")),
            labels=dict(data.get("labels") or {}),
        )


@dataclass(frozen=True)
class VmMetadata:
    vm_id: VmId
    state: VmState
    owner_id: str = ""
    created_at: datetime.datetime | None = None
    ip: str = ""
    deleted_at: datetime.datetime | None = None
    parent_commit_id: CommitId | None = None
    grandparent_vm_id: VmId | None = None

    @classmethod
    def parse(cls, data: dict[str, Any]) -> VmMetadata:
        return cls(
            vm_id=VmId(data["vm_id"]),
            state=data["state"],
            owner_id=data.get("owner_id", ""),
            created_at=_time(data.get("created_at")),
            ip=data.get("ip") or "",
            deleted_at=_time(data.get("deleted_at")),
            parent_commit_id=data.get("parent_commit_id"),
            grandparent_vm_id=data.get("grandparent_vm_id"),
        )


@dataclass(frozen=True)
class Commit:
    commit_id: CommitId
    name: str = ""
    owner_id: str = ""
    is_public: bool = False
    created_at: datetime.datetime | None = None
    description: str = ""
    parent_vm_id: VmId | None = None

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Commit:
        return cls(
            commit_id=CommitId(data["commit_id"]),
            name=data.get("name") or "",
            owner_id=data.get("owner_id", ""),
            is_public=bool(data.get("is_public")),
            created_at=_time(data.get("created_at")),
            description=data.get("description") or "",
            parent_vm_id=data.get("parent_vm_id"),
        )


@dataclass(frozen=True)
class CommitPage:
    commits: list[Commit]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class SshKey:
    private_key: Secret
    port: int
