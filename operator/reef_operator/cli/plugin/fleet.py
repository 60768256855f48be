"""Views of the VM fleet: discover (what the operator manages), tree (lineage), diff (DNA)."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reef_operator.cli.plugin import output
from reef_operator.cli.plugin.cluster import Obj

# An attach this long after pi was started means the operator found pi already running
# (after an operator restart, an SSH drop or a resume) and re-attached to it.
REATTACH_AFTER = datetime.timedelta(seconds=5)


def discover_rows(lieutenants: list[Obj], vmnodes: list[Obj]) -> list[dict[str, Any]]:
    """One row per managed VM: its node, the lieutenant on it (if any), how the operator
    holds it (created, adopted, re-attached) and its last sign of life."""
    by_node = {(lt["metadata"]["namespace"], (lt.get("status") or {}).get("vmNodeName")): lt
               for lt in lieutenants}
    rows = []
    for node in vmnodes:
        meta, spec, status = node["metadata"], node.get("spec") or {}, node.get("status") or {}
        lieutenant = by_node.get((meta["namespace"], meta["name"]))
        session = ((lieutenant or {}).get("status") or {}).get("session") or {}
        rows.append({
            "namespace": meta["namespace"],
            "vmnode": meta["name"],
            "category": spec.get("category", ""),
            "lieutenant": (lieutenant or {}).get("metadata", {}).get("name", ""),
            "vmId": status.get("vmId", ""),
            "vmState": status.get("vmState", ""),
            "held": _held(spec, session),
            "attachedAt": session.get("attachedAt", ""),
            "lastHeartbeat": status.get("lastHeartbeatTime", ""),
        })
    return rows


def _held(spec: Mapping[str, Any], session: Mapping[str, Any]) -> str:
    how = "adopted" if spec.get("vmId") else "created"
    started, attached = session.get("startedAt"), session.get("attachedAt")
    if started and attached and _time(attached) - _time(started) > REATTACH_AFTER:
        return f"{how}, re-attached"
    return how


def _time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def discover_table(rows: list[dict[str, Any]]) -> str:
    headers = ["namespace", "vmnode", "category", "lieutenant", "vm", "state", "held",
               "attached", "heartbeat"]
    return output.table(headers, [
        [r["namespace"], r["vmnode"], r["category"], r["lieutenant"], r["vmId"], r["vmState"],
         r["held"], output.age(r["attachedAt"]) and f"{output.age(r['attachedAt'])} ago",
         output.age(r["lastHeartbeat"]) and f"{output.age(r['lastHeartbeat'])} ago"]
        for r in rows])


def category_of(node: Mapping[str, Any]) -> str:
    return str((node.get("spec") or {}).get("category", "Agent"))


def with_lieutenants_awaiting_a_vm(vmnodes: list[Obj], lieutenants: list[Obj]) -> list[Obj]:
    """The VMNodes, and in the place its VMNode will take a row for each lieutenant that has
    none yet (just created by its parent, waiting for room, stalled), so a lieutenant's
    children are all below it from the start. A lieutenant's VMNode carries its name and
    its parentRef."""
    have = {(n["metadata"].get("namespace"), n["metadata"]["name"]) for n in vmnodes}
    waiting: list[Obj] = []
    for lieutenant in lieutenants:
        meta, spec = lieutenant["metadata"], lieutenant.get("spec") or {}
        if (meta.get("namespace"), meta["name"]) in have:
            continue
        node_spec: Obj = {"category": "Lieutenant", "state": "no VM yet"}
        parent = (spec.get("parentRef") or {}).get("name")
        if parent:
            node_spec["parentRef"] = {"name": parent}
        waiting.append({"metadata": {"name": meta["name"], "namespace": meta.get("namespace")},
                        "spec": node_spec, "status": {}})
    return vmnodes + waiting


def state_of(node: Mapping[str, Any]) -> str:
    """The VM's state as the platform reports it, else the state asked for."""
    return str((node.get("status") or {}).get("vmState")
               or (node.get("spec") or {}).get("state", "Running"))


def dna(node: Mapping[str, Any]) -> dict[str, list[str]]:
    """The node's resolved DNA (status), falling back to what its spec asks for."""
    found = (node.get("status") or {}).get("dna") or {}
    spec = node.get("spec") or {}
    return {"modules": sorted(found.get("modules", spec.get("modules") or [])),
            "capabilities": sorted(found.get("capabilities", spec.get("capabilities") or []))}


@dataclass
class Branch:
    """A node of the lineage with its children; `repeated` marks a node met again below
    itself (a cycle, flagged by the operator's condition): drawn once more, not descended."""

    node: Obj
    children: list[Branch] = field(default_factory=list)
    repeated: bool = False


def forest(vmnodes: list[Obj], root: str | None = None) -> list[Branch]:
    """The lineage as trees: nodes whose parent is not listed are roots (or only `root`)."""
    names = {(n["metadata"]["namespace"], n["metadata"]["name"]) for n in vmnodes}
    children: dict[tuple[str, str], list[Obj]] = {}
    roots: list[Obj] = []
    for node in vmnodes:
        namespace = node["metadata"]["namespace"]
        parent = ((node.get("spec") or {}).get("parentRef") or {}).get("name")
        if parent and (namespace, parent) in names:
            children.setdefault((namespace, parent), []).append(node)
        else:
            roots.append(node)
    if root is not None:
        roots = [n for n in vmnodes if n["metadata"]["name"] == root]

    drawn: set[tuple[str, str]] = set()

    def grow(node: Obj, seen: frozenset[tuple[str, str]]) -> Branch:
        key = (node["metadata"]["namespace"], node["metadata"]["name"])
        drawn.add(key)
        if key in seen:
            return Branch(node, repeated=True)
        return Branch(node, [grow(child, seen | {key}) for child in children.get(key, [])])

    grown = [grow(node, frozenset()) for node in roots]
    if root is None:
        # Nodes in a parent cycle have no root above them: each cycle is drawn from its
        # first node rather than left out.
        for node in vmnodes:
            if (node["metadata"]["namespace"], node["metadata"]["name"]) not in drawn:
                grown.append(grow(node, frozenset()))
    return grown


def flatten(branches: list[Branch]) -> list[Obj]:
    """Every node of the trees once, parents before children."""
    nodes: list[Obj] = []
    for branch in branches:
        if not branch.repeated:          # a cycle's node is already in the list
            nodes += [branch.node, *flatten(branch.children)]
    return nodes


def matching(branches: list[Branch], wanted: Callable[[Obj], bool]) -> list[Branch]:
    """Only the branches leading to a node that is `wanted` (its ancestors kept for context,
    its own subtree filtered the same way)."""
    kept = []
    for branch in branches:
        children = [] if branch.repeated else matching(branch.children, wanted)
        if children or wanted(branch.node):
            kept.append(Branch(branch.node, children, branch.repeated))
    return kept


def selector(category: str | None, module: str | None,
             capability: str | None) -> Callable[[Obj], bool]:
    """Seed's 'find by role, organ or capability': every given criterion must hold."""
    def wanted(node: Obj) -> bool:
        genes = dna(node)
        return ((category is None or category_of(node).lower() == category.lower())
                and (module is None or module in genes["modules"])
                and (capability is None or capability in genes["capabilities"]))
    return wanted


def shown(vmnodes: list[Obj], root: str | None = None,
          wanted: Callable[[Obj], bool] | None = None) -> list[Branch]:
    """The trees `tree` shows: below `root` if given, only towards `wanted` nodes if given."""
    branches = forest(vmnodes, root)
    return branches if wanted is None else matching(branches, wanted)


def tree(vmnodes: list[Obj], root: str | None = None,
         wanted: Callable[[Obj], bool] | None = None) -> list[str]:
    """Lineage as an indented tree: each line `name [Category] State vm=… dna: …`."""
    branches = shown(vmnodes, root, wanted)
    lines: list[str] = []

    def draw(branch: Branch, prefix: str, connector: str) -> None:
        lines.append(f"{prefix}{connector}{_describe(branch.node)}")
        deeper = prefix + ("" if not connector else ("    " if connector == "└── " else "│   "))
        for index, child in enumerate(branch.children):
            draw(child, deeper, "└── " if index == len(branch.children) - 1 else "├── ")

    for branch in branches:
        draw(branch, "", "")
    return lines


def _describe(node: Obj) -> str:
    status = node.get("status") or {}
    genes = dna(node)
    ready = output.condition(node, "Ready")
    parts = [node["metadata"]["name"], f"[{category_of(node)}]", state_of(node)]
    if ready and ready.get("status") != "True" and ready.get("reason"):
        parts.append(f"({ready['reason']})")
    parts.append(f"vm={status.get('vmId') or '-'}")
    parts.append(f"dna: modules={','.join(genes['modules']) or '-'} "
                 f"capabilities={','.join(genes['capabilities']) or '-'}")
    return " ".join(parts)


def dna_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, dict[str, list[str]]]:
    """What B has that A lacks (added) and what A has that B lacks (removed)."""
    left, right = dna(a), dna(b)
    return {part: {"added": sorted(set(right[part]) - set(left[part])),
                   "removed": sorted(set(left[part]) - set(right[part])),
                   "common": sorted(set(left[part]) & set(right[part]))}
            for part in ("modules", "capabilities")}


def diff_text(a: str, b: str, difference: Mapping[str, Mapping[str, list[str]]]) -> str:
    lines = [f"--- {a}", f"+++ {b}"]
    for part, change in difference.items():
        lines.append(f"{part}:")
        lines += [f"  + {m}" for m in change["added"]]
        lines += [f"  - {m}" for m in change["removed"]]
        lines += [f"    {m}" for m in change["common"]]
    same = all(not c["added"] and not c["removed"] for c in difference.values())
    if same:
        lines.append("(same DNA)")
    return "\n".join(lines)
