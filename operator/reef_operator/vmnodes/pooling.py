"""A node with spec.poolRef takes a warm member's VM: the claim and the handover.

The steps, each safe to repeat after a crash at any point (pools/members.py: why the
claim is atomic):

1. claim: a resourceVersion-guarded write on the member (the node's uid, the node as
   the member's owner). A 409 means a rival took it: the next member is tried. After a
   crash the node finds the member by its own uid and goes on from step 2.
2. check: the member's VM must exist and run, labelled for the member (or already for
   this node); otherwise the member is deleted (the pool replaces it) and never handed
   out, and the next pass claims another.
3. relabel the VM for this node on the platform (the proof of ownership every later
   action checks), then write the VM and its boot into this node's status, then delete
   the member (its finalizer releases nothing: the VM is not its own any more).

Only a node that never asked for a VM of its own claims (no vm-requested-at mark: a
node that went cold may have a create in flight). So a node gets at most one VM.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from reef_operator.constants import (
    ANNOTATION_CLAIMED_BY,
    ANNOTATION_VM_REQUESTED,
    API_VERSION,
    LABEL_FROM_POOL,
)
from reef_operator.pools.members import (
    Member,
    claim_patch,
    claimable,
    claimed_by,
    handed_over,
    handover_status,
    members_of,
    pool_profile,
)
from reef_operator.providers.base import Provider, VmOwner, VmRequest

PLURAL = "vmnodes"
Key = tuple[str, str]


@dataclass(frozen=True)
class Outcome:
    """`claimed`: the VM is the node's (`status` holds what it took over); `cold`: boot a
    VM of its own (`message` says why); `again`: a rival or an unfit member was in the
    way, try again in a moment."""

    kind: Literal["claimed", "cold", "again"]
    message: str = ""
    vm_id: str = ""
    status: Mapping[str, Any] | None = None


def wants_pool(body: Mapping[str, Any]) -> str:
    """The pool the node would claim from now ("" when it would not): not once it asked
    for a VM of its own, nor when it boots from a source of its own (a commit, a fork),
    which no member booted from."""
    meta, spec = body.get("metadata") or {}, body.get("spec") or {}
    if ANNOTATION_VM_REQUESTED in (meta.get("annotations") or {}) or spec.get("source"):
        return ""
    return str((spec.get("poolRef") or {}).get("name") or "")


def owner_lieutenant(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The node's lieutenant as an object to post Events on, if a lieutenant owns it."""
    meta = body.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") == "Lieutenant" and ref.get("controller"):
            return {"apiVersion": API_VERSION, "kind": "Lieutenant",
                    "metadata": {"name": ref.get("name"), "uid": ref.get("uid"),
                                 "namespace": meta.get("namespace")}}
    return None


class PoolClaims:
    def __init__(self, kube: Any, nodes: Mapping[Key, Mapping[str, Any]],
                 pools: Callable[[str, str], Mapping[str, Any] | None]) -> None:
        self.kube = kube
        self.nodes = nodes          # every VMNode as the watch last showed it
        self.pools = pools          # (namespace, name) -> the VMPool, if it exists
        # What this process handed over, by node: a pass may start from a body older than
        # the handover's status write, and must neither miss the VM nor claim another.
        self._handed: dict[Key, Mapping[str, Any]] = {}

    def handed(self, namespace: str, name: str,
               status: Mapping[str, Any]) -> Mapping[str, Any]:
        """The handover's status when `status` (the pass's body) does not show it yet."""
        done = self._handed.get((namespace, name))
        if done is None or status.get("vmId"):
            return {}
        return done

    def took(self, namespace: str, name: str) -> bool:
        return (namespace, name) in self._handed

    def forget(self, namespace: str, name: str) -> None:
        self._handed.pop((namespace, name), None)

    def profile_of(self, namespace: str, pool: str) -> str | None:
        return pool_profile(self.pools(namespace, pool))

    async def take(self, body: Mapping[str, Any], pool: str, profile: str,
                   provider: Provider, request: VmRequest) -> Outcome:
        meta = body.get("metadata") or {}
        namespace, uid = str(meta.get("namespace", "")), str(meta.get("uid", ""))
        now = datetime.datetime.now(datetime.UTC)
        members = members_of(pool, namespace, self.nodes.values(), now)
        taken = claimed_by(members, uid)
        if taken is None:
            if self.pools(namespace, pool) is None:
                return Outcome("cold", f"VMPool {pool!r} does not exist in namespace "
                               f"{namespace!r}; booting a VM of its own")
            candidates = claimable(members, profile, uid)
            if not candidates:
                return Outcome("cold", f"VMPool {pool!r} has no ready member of profile "
                               f"{profile!r}; booting a VM of its own")
            for candidate in candidates:
                if await self.kube.patch_guarded(PLURAL, namespace, candidate.name,
                                                 claim_patch(candidate, body)):
                    taken = candidate
                    break
            else:
                return Outcome("again", f"rivals claimed the ready members of VMPool "
                               f"{pool!r} first; trying again")
        return await self._hand_over(body, pool, taken, provider, request)

    async def _hand_over(self, body: Mapping[str, Any], pool: str, taken: Member,
                         provider: Provider, request: VmRequest) -> Outcome:
        meta = body.get("metadata") or {}
        namespace, uid = str(meta.get("namespace", "")), str(meta.get("uid", ""))
        member_body = self.nodes.get((namespace, taken.name)) or {}
        member_uid = str((member_body.get("metadata") or {}).get("uid", ""))
        observed = await provider.observe(taken.vm_id) if taken.vm_id else None
        usable = observed is not None and observed.state == "running" and \
            observed.owner in (VmOwner(namespace, member_uid), VmOwner(namespace, uid))
        if observed is None or not usable:
            await self.kube.delete_object(PLURAL, namespace, taken.name)
            state = "no VM" if observed is None else f"VM {taken.vm_id} {observed.state}"
            return Outcome("again", f"member {taken.name} of VMPool {pool!r} is unhealthy "
                           f"({state}); it is replaced, and another is claimed")
        if observed.owner != VmOwner(namespace, uid):
            await provider.claim(taken.vm_id, request)
        status = handover_status(member_body.get("status") or {})
        await self.kube.patch_metadata(PLURAL, namespace, str(meta.get("name")),
                                       {"labels": {LABEL_FROM_POOL: pool}})
        self._handed[(namespace, str(meta.get("name")))] = status
        await self.kube.patch_status(PLURAL, namespace, str(meta.get("name")), dict(status))
        await self.kube.delete_object(PLURAL, namespace, taken.name)
        return Outcome("claimed", f"took VM {taken.vm_id} of VMPool {pool!r} (member "
                       f"{taken.name}), booted ahead", taken.vm_id, status)

    async def settle_member(self, body: Mapping[str, Any]) -> None:
        """A claimed member's pass: it does nothing but go once its VM is handed over
        (normally its claimer deletes it; this covers a crash in between)."""
        meta = body.get("metadata") or {}
        namespace = str(meta.get("namespace", ""))
        claimer_uid = (meta.get("annotations") or {}).get(ANNOTATION_CLAIMED_BY)
        owner = next((ref for ref in meta.get("ownerReferences") or []
                      if ref.get("uid") == claimer_uid), None)
        claimer = self.nodes.get((namespace, str((owner or {}).get("name"))))
        if claimer is not None and (claimer.get("metadata") or {}).get("uid") != claimer_uid:
            claimer = None
        if handed_over(body, claimer):
            await self.kube.delete_object(PLURAL, namespace, str(meta.get("name")))
