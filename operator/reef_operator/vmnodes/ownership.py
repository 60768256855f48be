"""Whose VM is this: the decision a node makes before it touches an existing VM.

One operator serves many namespaces, and a VM id is only a string a tenant can type
into `spec.vmId`. The VM's labels (namespace and node uid, written when the VM is made
or adopted) are the proof of ownership the platform keeps, so every pass and the
deletion finalizer compare them with the node before any pause, resume, snapshot or
delete. A VM without owner labels was made outside the operator: adopting it is a
cluster admin's decision, granted per namespace (REEF_ADOPTION_NAMESPACES).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from reef_operator.config.table import REEF_ADOPTION_NAMESPACES
from reef_operator.providers.base import VmOwner

__all__ = ["Verdict", "judge"]


@dataclass(frozen=True)
class Verdict:
    """`mine`: act on the VM; `adopt`: label it for this node, then act; `refuse`: never
    touch it (`message` says why and what to do)."""

    outcome: Literal["mine", "adopt", "refuse"]
    message: str = ""


def judge(vm_id: str, owner: VmOwner | None, namespace: str, uid: str,
          adoption_namespaces: Collection[str]) -> Verdict:
    if owner is not None:
        if owner == VmOwner(namespace, uid):
            return Verdict("mine")
        whose = (f"namespace {owner.namespace!r}" if owner.namespace != namespace
                 else f"another node (uid {owner.uid or 'missing'}) in this namespace")
        return Verdict("refuse", f"VM {vm_id} belongs to {whose}; this node leaves it "
                       "untouched: remove spec.vmId (or delete this node) and let the "
                       "operator make a VM of its own")
    if namespace in adoption_namespaces:
        return Verdict("adopt")
    return Verdict("refuse", f"VM {vm_id} carries no owner labels and namespace "
                   f"{namespace!r} may not adopt unlabelled VMs: a cluster admin lists it "
                   f"in {REEF_ADOPTION_NAMESPACES.key} to allow it")
