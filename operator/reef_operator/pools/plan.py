"""What one pass of a pool does: which members to replace, how many to boot, and the
status that says so.

The pool counts its free members (unclaimed, not being deleted). An unhealthy one
(Stalled: its VM gone, dead or not answering) is deleted and replaced, never handed out.
Booting members count as on their way to ready, so a pool that just lost one to a claim
boots exactly one more. Members never exceed maxSize. Warm members are running VMs, so
they count against the namespace's ReefPolicy maxRunningVMs like any node: the pool
boots one only while the namespace has room (`room`), and a full namespace leaves the
pool short (QuotaExceeded) rather than keeping a lieutenant waiting.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reef_operator.constants import API_VERSION, LABEL_POOL
from reef_operator.pools.members import Member

NAME_ROOM = 56   # a member is named <pool>-<6 hex>, within the 63 of a node name


@dataclass(frozen=True)
class Plan:
    boot: int
    replace: tuple[str, ...]
    ready: int
    size: int
    reason: str           # a VMPool summary row of the catalogue
    message: str


def plan(spec: Mapping[str, Any], members: Sequence[Member], *, profile_exists: bool,
         room: int | None) -> Plan:
    """`room`: running VMs the namespace may still start (None: no limit)."""
    min_ready, max_size = int(spec.get("minReady", 1)), int(spec.get("maxSize", 10))
    profile = (spec.get("profileRef") or {}).get("name")
    free = [m for m in members if m.free]
    replace = tuple(m.name for m in free if m.unhealthy)
    live = [m for m in free if not m.unhealthy]
    ready = sum(1 for m in live if m.ready)

    def done(boot: int, reason: str, message: str) -> Plan:
        return Plan(boot, replace, ready, len(live), reason, message)

    if min_ready > max_size:
        return done(0, "SizeInvalid", f"spec.minReady ({min_ready}) is over spec.maxSize "
                    f"({max_size}); lower minReady or raise maxSize")
    if not profile_exists:
        return done(0, "ProfileNotFound", f"BootProfile {profile!r} does not exist; create it "
                    "or set spec.profileRef.name to an existing profile")
    wanted = max(0, min(min_ready, max_size) - len(live))
    boot = wanted if room is None else min(wanted, max(0, room))
    if boot < wanted:
        return done(boot, "QuotaExceeded", f"{wanted - boot} member(s) wait for room: the "
                    "namespace's ReefPolicy limits.maxRunningVMs is reached (warm members "
                    "count as running VMs)")
    if ready >= min_ready:
        return done(boot, "Filled", f"{ready} member(s) ready")
    return done(boot, "Filling", f"{ready} of {min_ready} member(s) ready; "
                f"{len(live) - ready + boot} booting")


def member_name(pool: str) -> str:
    return f"{pool[:NAME_ROOM].rstrip('-')}-{secrets.token_hex(3)}"


def member_body(pool: Mapping[str, Any], name: str,
                metadata: Mapping[str, Any]) -> dict[str, Any]:
    """A new member: the pool's profile, owned and labelled by the pool; `metadata` adds
    what the node's first passes would otherwise write (finalizer, lineage labels)."""
    meta, spec = pool.get("metadata") or {}, pool.get("spec") or {}
    node_spec: dict[str, Any] = {"state": "Running", "category": "Lieutenant",
                                 "profileRef": dict(spec.get("profileRef") or {})}
    for key in ("resources", "heartbeat"):
        if spec.get(key):
            node_spec[key] = dict(spec[key])
    return {
        "apiVersion": API_VERSION, "kind": "VMNode",
        "metadata": {**metadata, "name": name, "namespace": meta.get("namespace"),
                     "labels": {**(metadata.get("labels") or {}),
                                LABEL_POOL: str(meta.get("name"))},
                     "ownerReferences": [{
                         "apiVersion": API_VERSION, "kind": "VMPool",
                         "name": meta.get("name"), "uid": meta.get("uid"),
                         "controller": True, "blockOwnerDeletion": True}]},
        "spec": node_spec,
    }
