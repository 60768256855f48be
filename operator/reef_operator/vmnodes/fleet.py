"""The operator's in-memory picture of every VM node: the lineage tree and its rules.

Kept up to date from the watch stream, so lineage, inherited pauses and
subtree wake-ups cost no API call. Pure: no I/O here.

The tree rule: a node runs in the state its own spec asks for, except that a
node whose ancestor asks to be Paused is paused too. Resuming the ancestor
lets the subtree return to its own specs. Specs of children are never
rewritten, so GitOps tools see no drift.

Running VMs per namespace (a ReefPolicy's limits.maxRunningVMs): a node counts from the
moment it is given a slot to create or resume its VM until its status says the VM is
paused, released or gone. The slot is handed out here, in memory and without awaiting,
so two nodes waiting for the last one never both take it; the oldest waiting node
(creation time, then name) goes first. After a restart the count is rebuilt from the
nodes' status (a slot given but not yet used is asked for again).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from reef_operator.constants import LABEL_FORKED_FROM

Key = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True)
class NodeInfo:
    namespace: str
    name: str
    uid: str
    parent: str | None
    parent_namespace: str | None
    state: str
    profile: str | None = None
    created: str = ""
    vm_running: bool = False    # its status holds a VM that is not paused, dead or gone
    forked: bool = False        # a fork's node: its source's pause does not pass down

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> NodeInfo:
        meta, spec = body.get("metadata", {}), body.get("spec") or {}
        parent_ref = spec.get("parentRef") or {}
        return cls(
            namespace=meta.get("namespace", ""),
            name=meta.get("name", ""),
            uid=meta.get("uid", ""),
            parent=parent_ref.get("name"),
            parent_namespace=parent_ref.get("namespace"),
            state=spec.get("state", "Running"),
            profile=(spec.get("profileRef") or {}).get("name"),
            created=str(meta.get("creationTimestamp") or ""),
            vm_running=vm_running(body.get("status") or {}),
            forked=LABEL_FORKED_FROM in (meta.get("labels") or {}),
        )


def vm_running(status: Mapping[str, Any]) -> bool:
    """Whether a node's status holds a VM that runs (or boots, or sleeps: it still costs)."""
    return bool(status.get("vmId")) and status.get("vmState") not in ("paused", "dead")


@dataclass(frozen=True)
class Lineage:
    root: str
    depth: int
    ancestors: tuple[NodeInfo, ...]  # nearest first


class LineageError(ValueError):
    """The parent chain is broken; `reason` is the CamelCase condition reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Fleet:
    def __init__(self) -> None:
        self.nodes: dict[Key, NodeInfo] = {}
        # Slots for running VMs given to nodes whose status does not show the VM yet.
        self.granted: set[Key] = set()
        # Nodes waiting for a slot.
        self.waiting: set[Key] = set()

    def upsert(self, body: Mapping[str, Any]) -> NodeInfo:
        info = NodeInfo.from_body(body)
        key = (info.namespace, info.name)
        self.nodes[key] = info
        if info.vm_running or info.state != "Running":
            self.granted.discard(key)      # its status counts it now, or it wants no VM
        if info.state != "Running":
            self.waiting.discard(key)
        return info

    def remove(self, namespace: str, name: str) -> None:
        self.nodes.pop((namespace, name), None)
        self.granted.discard((namespace, name))
        self.waiting.discard((namespace, name))

    # -- running VMs per namespace ------------------------------------------------------
    def occupies(self, key: Key) -> bool:
        """Whether the node counts against its namespace's running VMs."""
        node = self.nodes.get(key)
        return key in self.granted or bool(node and node.vm_running)

    def running(self, namespace: str) -> int:
        """Running VMs of the namespace, slots given but not yet used included."""
        return sum(1 for key in self.nodes if key[0] == namespace and self.occupies(key))

    def take_slot(self, namespace: str, name: str, limit: int | None) -> bool:
        """Whether the node may create or resume its VM now; a yes holds a slot for it.

        Without a limit every node may. Otherwise a node waits while the namespace's
        running VMs and the older waiting nodes fill the limit.
        """
        key = (namespace, name)
        if limit is None or self.occupies(key):
            self.waiting.discard(key)
            return True
        self.waiting.add(key)
        room = limit - self.running(namespace)
        ahead = sum(1 for other in self.waiting
                    if other[0] == namespace and other != key and
                    self._age(other) < self._age(key))
        if ahead >= room:
            return False
        self.waiting.discard(key)
        self.granted.add(key)
        return True

    def stop_waiting(self, namespace: str, name: str) -> None:
        """The node no longer waits for a slot (its pass ended otherwise)."""
        self.waiting.discard((namespace, name))

    def waiting_in(self, namespace: str) -> list[Key]:
        """Nodes of the namespace waiting for a slot, oldest first (to be woken)."""
        return sorted((key for key in self.waiting if key[0] == namespace), key=self._age)

    def _age(self, key: Key) -> tuple[str, str]:
        node = self.nodes.get(key)
        return (node.created if node else "", key[1])

    def lineage(self, namespace: str, name: str) -> Lineage:
        node = self.nodes.get((namespace, name))
        if node is None:
            return Lineage(name, 0, ())
        ancestors: list[NodeInfo] = []
        seen = {name}
        current = node
        while current.parent:
            if current.parent_namespace and current.parent_namespace != current.namespace:
                raise LineageError(
                    "ParentInOtherNamespace",
                    f"parentRef points to namespace {current.parent_namespace!r}: a parent must "
                    f"be in the same namespace ({current.namespace!r}), because ownership "
                    "cannot cross namespaces; remove parentRef.namespace or move the node",
                )
            if current.parent in seen:
                chain = " → ".join([*[a.name for a in [node, *ancestors]], current.parent])
                raise LineageError("ParentCycle",
                                   f"parentRef forms a cycle ({chain}); break it by changing "
                                   "one parentRef")
            parent = self.nodes.get((namespace, current.parent))
            if parent is None:
                raise LineageError(
                    "ParentNotFound",
                    f"parent VMNode {current.parent!r} does not exist in namespace "
                    f"{namespace!r}; create it or fix parentRef.name",
                )
            ancestors.append(parent)
            seen.add(parent.name)
            current = parent
        root = ancestors[-1].name if ancestors else name
        return Lineage(root, len(ancestors), tuple(ancestors))

    def effective_state(self, namespace: str, name: str) -> str:
        """The node's own desired state, or Paused when an ancestor asks to be paused (up
        to the nearest fork: a fork is not paused with its source)."""
        node = self.nodes.get((namespace, name))
        own = node.state if node else "Running"
        if own != "Running":
            return own
        try:
            ancestors = self.lineage(namespace, name).ancestors
        except LineageError:
            return own
        # A fork's node sits under its source but is not its worker: a pause passes down
        # to it and no further up than it.
        below = node is not None and node.forked
        for ancestor in ancestors:
            if below:
                break
            if ancestor.state == "Paused":
                return "Paused"
            below = ancestor.forked
        return own

    def children(self, namespace: str, name: str) -> list[NodeInfo]:
        return [node for node in list(self.nodes.values())
                if node.namespace == namespace and node.parent == name]

    def descendants(self, namespace: str, name: str) -> Iterator[NodeInfo]:
        """Every node below this one (breadth first; safe against cycles)."""
        frontier, seen = [name], {name}
        while frontier:
            parent = frontier.pop(0)
            for node in self.nodes.values():
                if node.namespace == namespace and node.parent == parent and node.name not in seen:
                    seen.add(node.name)
                    frontier.append(node.name)
                    yield node
