"""`kubectl reef tree [ROOT]`: the VMNode lineage, filtered by category, module or
capability (a match keeps its ancestors, so each shown node stays in its place). A
lieutenant whose VMNode is not made yet is shown where it will be, below its parent."""

from __future__ import annotations

import argparse

from reef_operator.cli.plugin import fleet, output
from reef_operator.cli.plugin.cluster import Cluster, Obj, PluginError
from reef_operator.cli.plugin.command import Command, all_namespaces, output_format, say


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", nargs="?", help="only this node's subtree")
    parser.add_argument("--category", help="only nodes of this category (Lieutenant, Swarm, "
                        "Agent, Infra) and their ancestors")
    parser.add_argument("--module",
                        help="only nodes whose DNA has this module (and ancestors)")
    parser.add_argument("--capability",
                        help="only nodes whose DNA has this capability (and ancestors)")
    all_namespaces(parser)
    output_format(parser)


def _run(cluster: Cluster, args: argparse.Namespace) -> int:
    nodes = fleet.with_lieutenants_awaiting_a_vm(
        cluster.items("vmnodes", all_namespaces=args.all_namespaces),
        cluster.items("lieutenants", all_namespaces=args.all_namespaces))
    if args.root and not any(n["metadata"]["name"] == args.root for n in nodes):
        raise PluginError(f"vmnode {args.root!r} not found in namespace {cluster.namespace}")
    wanted = None
    if args.category or args.module or args.capability:
        wanted = fleet.selector(args.category, args.module, args.capability)
    if args.output != "table":
        say(output.structured([summary(n) for n in fleet.flatten(
            fleet.shown(nodes, args.root, wanted))], args.output))
    else:
        say("\n".join(fleet.tree(nodes, args.root, wanted)) or
            ("No VMNodes match." if wanted else "No VMNodes found."))
    return 0


def summary(node: Obj) -> Obj:
    """What `-o json|yaml` shows of a node: its place in the tree, state and DNA."""
    meta, spec = node["metadata"], node.get("spec") or {}
    status = node.get("status") or {}
    return {"name": meta["name"], "namespace": meta.get("namespace"),
            "parent": (spec.get("parentRef") or {}).get("name"),
            "category": spec.get("category"), "state": status.get("vmState"),
            "vmId": status.get("vmId"), "dna": fleet.dna(node)}


COMMAND = Command("tree", "the VM lineage as a tree: category, state, DNA", _arguments, _run)
