"""A pool's members as the watch shows them, and which of them a claim may take.

A member is a VMNode labelled `reef.vers.sh/pool: <pool>`, made and owned by the pool.
A claim is one write on the member, guarded by the resourceVersion the claimer read: it
sets the claimer's uid (annotation `reef.vers.sh/claimed-by`) and makes the claimer the
member's controller owner. The apiserver lets one such write through per version, so two
claimers never take one member; the loser hears 409 and tries another. The claim is the
first thing written, so after a crash the claimer finds its member by its own uid.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reef_operator.constants import ANNOTATION_CLAIMED_BY, API_VERSION, LABEL_POOL
from reef_operator.kube.conditions import find_condition, parse_time

STALE_AFTER_DEFAULT = 300   # VMNode spec.heartbeat.staleAfterSeconds' default


@dataclass(frozen=True)
class Member:
    name: str
    created: str
    resource_version: str
    profile: str
    vm_id: str
    claimed_by: str          # the claimer's uid; "" while the member is the pool's
    deleting: bool
    ready: bool              # booted, Ready, heartbeat fresh: may be handed out
    unhealthy: bool          # Stalled (VM gone, dead, unanswering, boot keeps failing)

    @property
    def free(self) -> bool:
        """Unclaimed and not on its way out: counts as the pool's."""
        return not self.claimed_by and not self.deleting


def member(body: Mapping[str, Any], now: datetime.datetime) -> Member:
    meta, spec = body.get("metadata") or {}, body.get("spec") or {}
    status = body.get("status") or {}
    ready = find_condition(body, "Ready").get("status") == "True"
    stale_after = (spec.get("heartbeat") or {}).get("staleAfterSeconds") or STALE_AFTER_DEFAULT
    beat = parse_time(status.get("lastHeartbeatTime"))
    fresh = beat is not None and (now - beat).total_seconds() < stale_after
    booted = bool((status.get("boot") or {}).get("completedAt"))
    return Member(
        name=str(meta.get("name", "")),
        created=str(meta.get("creationTimestamp") or ""),
        resource_version=str(meta.get("resourceVersion") or ""),
        profile=str((spec.get("profileRef") or {}).get("name") or ""),
        vm_id=str(status.get("vmId") or ""),
        claimed_by=str((meta.get("annotations") or {}).get(ANNOTATION_CLAIMED_BY) or ""),
        deleting=bool(meta.get("deletionTimestamp")),
        ready=ready and fresh and booted and bool(status.get("vmId")),
        unhealthy=find_condition(body, "Stalled").get("status") == "True",
    )


def members_of(pool: str, namespace: str, bodies: Iterable[Mapping[str, Any]],
               now: datetime.datetime) -> list[Member]:
    """The pool's members among the namespace's VMNodes, oldest first."""
    found = [member(body, now) for body in bodies
             if (body.get("metadata") or {}).get("namespace") == namespace and
             ((body.get("metadata") or {}).get("labels") or {}).get(LABEL_POOL) == pool]
    return sorted(found, key=lambda m: (m.created, m.name))


def claimable(members: Iterable[Member], profile: str, claimer_uid: str) -> list[Member]:
    """The members a claimer may try, in the order it tries them.

    Ready, free and of the claimer's profile. Each claimer starts at its own place in the
    line (from its uid), so claimers arriving together mostly try different members
    first instead of all racing for the oldest.
    """
    ready = [m for m in members if m.free and m.ready and m.profile == profile]
    if not ready:
        return []
    start = int(hashlib.sha256(claimer_uid.encode()).hexdigest(), 16) % len(ready)
    return ready[start:] + ready[:start]


def claimed_by(members: Iterable[Member], claimer_uid: str) -> Member | None:
    """The member this claimer already claimed (a claim written before a crash)."""
    return next((m for m in members if claimer_uid and m.claimed_by == claimer_uid), None)


def claim_patch(target: Member, claimer: Mapping[str, Any]) -> dict[str, Any]:
    """The one write that claims `target` for the VMNode `claimer` (a merge patch).

    The resourceVersion makes it conditional: the apiserver refuses it (409) when the
    member changed since it was read, a rival's claim included. The claimer becomes the
    member's only owner, so deleting the claimer before the handover ends deletes the
    member (and its VM) too.
    """
    meta = claimer.get("metadata") or {}
    return {"metadata": {
        "resourceVersion": target.resource_version,
        "annotations": {ANNOTATION_CLAIMED_BY: str(meta.get("uid", ""))},
        "ownerReferences": [{"apiVersion": API_VERSION, "kind": "VMNode",
                             "name": str(meta.get("name", "")), "uid": str(meta.get("uid", "")),
                             "controller": True, "blockOwnerDeletion": True}],
    }}


def handover_status(member_status: Mapping[str, Any]) -> dict[str, Any]:
    """What the claimer's status takes over from the member's: the VM and its boot."""
    keys = ("vmId", "vmState", "address", "hostKeyFingerprint", "boot", "lastHeartbeatTime")
    return {key: member_status[key] for key in keys if member_status.get(key)}


def handed_over(member_body: Mapping[str, Any], claimer: Mapping[str, Any] | None) -> bool:
    """Whether a claimed member's VM is its claimer's now (the member has nothing left to
    do but go): the claimer's status names the VM, or the claimer is gone."""
    vm_id = (member_body.get("status") or {}).get("vmId")
    if claimer is None:
        return True
    return bool(vm_id) and (claimer.get("status") or {}).get("vmId") == vm_id


def pool_profile(pool: Mapping[str, Any] | None) -> str | None:
    """The BootProfile a pool's members boot from, which a node taking from it boots too
    when it names no profile of its own (None: no such pool, or it names none)."""
    name = (((pool or {}).get("spec") or {}).get("profileRef") or {}).get("name")
    return str(name) if name else None
