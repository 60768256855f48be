"""Delegation: what a lieutenant's own agent may do in the cluster (spec.delegation), pure.

A delegating lieutenant's agent acts as the ServiceAccount `reef-delegate-<lieutenant>` of
its namespace. RBAC (`DELEGATE_RULES`, bound by a Role in that namespace alone) lets it
write Lieutenants and VMNodes at all; admission (`delegated_write_problems`, asked by the
webhook of controllers/delegation_admission.py with the caller's identity) narrows that to
its own children:

- a child is a Lieutenant or VMNode whose spec.parentRef names the delegating lieutenant
  (for a VMNode: the lieutenant's VMNode, which carries its name). A child lieutenant's
  own VMNode is the operator's to make and keep, not the delegate's;
- at most maxChildren of them are alive (not Destroyed, not being deleted) at once:
  a child Lieutenant and the VMNode the operator makes for it count once;
- a child boots only from a listed profile, uses the delegating lieutenant's credentials
  Secret or none, and may not delegate in turn (so maxChildren bounds the whole subtree);
- everything else (another parent, a sibling's or an unrelated object, another namespace,
  any other kind) is refused, each with a message naming the rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reef_operator.constants import GROUP, LABEL_LIEUTENANT

SERVICE_ACCOUNT_PREFIX = "reef-delegate-"
SERVICE_ACCOUNT_USER = "system:serviceaccount:"
DELEGATED_KINDS = ("Lieutenant", "VMNode")

# The ServiceAccount's rights in its namespace: the tools (extensions/pi-reef) read and
# write Lieutenants and VMNodes and read TaskRecords; admission narrows the writes.
DELEGATE_RULES: list[dict[str, Any]] = [
    {"apiGroups": [GROUP], "resources": ["lieutenants", "vmnodes"],
     "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
    {"apiGroups": [GROUP], "resources": ["taskrecords"], "verbs": ["get", "list", "watch"]},
]


def service_account(lieutenant: str) -> str:
    """The name of the lieutenant's ServiceAccount, Role, RoleBinding and token Secret."""
    return SERVICE_ACCOUNT_PREFIX + lieutenant


def delegate_of(username: str) -> tuple[str, str] | None:
    """(namespace, lieutenant) when the caller is a delegate's ServiceAccount, else None."""
    if not username.startswith(SERVICE_ACCOUNT_USER):
        return None
    namespace, _, account = username[len(SERVICE_ACCOUNT_USER):].partition(":")
    if not account.startswith(SERVICE_ACCOUNT_PREFIX) or not namespace:
        return None
    return namespace, account[len(SERVICE_ACCOUNT_PREFIX):]


@dataclass(frozen=True)
class Delegation:
    max_children: int
    profiles: tuple[str, ...]


def delegation_of(lieutenant: Mapping[str, Any], default_profile: str) -> Delegation | None:
    """The lieutenant's delegation, None when it has none (or is destroyed or going)."""
    spec = lieutenant.get("spec") or {}
    given = spec.get("delegation")
    if given is None or spec.get("state") == "Destroyed" or \
            (lieutenant.get("metadata") or {}).get("deletionTimestamp"):
        return None
    profiles = tuple(given.get("profiles") or ()) or (profile_of(spec, default_profile),)
    return Delegation(int(given.get("maxChildren", 1)), profiles)


def profile_of(spec: Mapping[str, Any], default_profile: str) -> str:
    return str((spec.get("profileRef") or {}).get("name") or default_profile)


def parent_of(body: Mapping[str, Any]) -> str | None:
    name = ((body.get("spec") or {}).get("parentRef") or {}).get("name")
    return str(name) if name else None


def alive(body: Mapping[str, Any]) -> bool:
    return (body.get("spec") or {}).get("state") != "Destroyed" and \
        not (body.get("metadata") or {}).get("deletionTimestamp")


def is_child_lieutenants_node(node: Mapping[str, Any]) -> bool:
    """A VMNode the operator made for a lieutenant (labelled with it)."""
    return bool(((node.get("metadata") or {}).get("labels") or {}).get(LABEL_LIEUTENANT))


def children_alive(leader: str, lieutenants: Iterable[Mapping[str, Any]],
                   vmnodes: Iterable[Mapping[str, Any]], leaving: str | None = None) -> int:
    """Children of `leader` alive now, one per child lieutenant (its VMNode not counted
    apart); `leaving` (kind/name) is left out: the object the write replaces."""
    count = 0
    for kind, objects in (("Lieutenant", lieutenants), ("VMNode", vmnodes)):
        for body in objects:
            name = (body.get("metadata") or {}).get("name")
            if parent_of(body) != leader or not alive(body) or f"{kind}/{name}" == leaving:
                continue
            if kind == "VMNode" and is_child_lieutenants_node(body):
                continue
            count += 1
    return count


@dataclass(frozen=True)
class Write:
    """One admission request from a delegate."""

    operation: str                          # CREATE, UPDATE, DELETE
    kind: str
    namespace: str
    name: str
    old: Mapping[str, Any]
    new: Mapping[str, Any]


def delegated_write_problems(caller: tuple[str, str], leader: Mapping[str, Any] | None,
                             write: Write, alive_children: int,
                             default_profile: str) -> list[str]:
    """Why a delegate may not make this write; [] when it may. `alive_children` counts the
    leader's children alive now, the written object left out."""
    namespace, name = caller
    who = f"the agent of lieutenant {name}"
    if write.namespace != namespace:
        return [f"{who} may act only in its namespace {namespace}, not in {write.namespace}"]
    if write.kind not in DELEGATED_KINDS:
        return [f"{who} may write only Lieutenants and VMNodes, not {write.kind}"]
    delegation = None if leader is None else delegation_of(leader, default_profile)
    if leader is None or delegation is None:
        return [f"{who} has no delegation (the lieutenant is gone, destroyed or its "
                "spec.delegation removed): it may create nothing"]
    target = f"{write.kind} {write.name}"
    problems = []
    for body in (write.old, write.new):
        if body and parent_of(body) != name:
            problems.append(
                f"{target}: {who} may only touch objects whose spec.parentRef.name is {name} "
                f"(its own children); this one's is {parent_of(body) or 'not set'}")
    if problems:
        return problems[:1]
    if write.kind == "VMNode" and any(is_child_lieutenants_node(b) for b in (write.old, write.new)):
        return [f"{target} belongs to lieutenant {write.name}: change that lieutenant instead"]
    if write.operation == "DELETE":
        return []
    spec = write.new.get("spec") or {}
    if alive(write.new) and not (write.old and alive(write.old)) and \
            alive_children >= delegation.max_children:
        problems.append(f"{target}: lieutenant {name} already has {alive_children} children "
                        f"alive, its spec.delegation.maxChildren is {delegation.max_children}; "
                        "destroy or delete one first")
    profile = profile_of(spec, default_profile)
    if profile not in delegation.profiles:
        problems.append(f"{target}: profile {profile} is not in the profiles lieutenant {name} "
                        f"may use ({', '.join(delegation.profiles)}); set spec.profileRef.name "
                        "to one of them")
    if write.kind == "Lieutenant":
        if spec.get("delegation") is not None:
            problems.append(f"{target}: a child lieutenant may not delegate in turn; leave out "
                            "spec.delegation")
        wanted = (spec.get("credentialsSecretRef") or {}).get("name")
        own = ((leader.get("spec") or {}).get("credentialsSecretRef") or {}).get("name")
        if wanted and wanted != own:
            problems.append(f"{target}: spec.credentialsSecretRef may name only lieutenant "
                            f"{name}'s own Secret ({own or 'none'}), not {wanted}")
    return problems
