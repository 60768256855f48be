"""`kubectl reef status`: the lieutenants as a table, or their spec and status as data.

Below the table, a line for each lieutenant a policy holds (docs/policies.md): its reason
and the operator's message, e.g. `api: IdlePaused: paused after 15m idle; the next task
resumes it`."""

from __future__ import annotations

import argparse

from reef_operator.cli.plugin import lieutenants, output
from reef_operator.cli.plugin.cluster import Cluster, Obj
from reef_operator.cli.plugin.command import Command, all_namespaces, output_format, say


def _arguments(parser: argparse.ArgumentParser) -> None:
    all_namespaces(parser)
    output_format(parser)


def _run(cluster: Cluster, args: argparse.Namespace) -> int:
    found = cluster.items(lieutenants.PLURAL, all_namespaces=args.all_namespaces)
    if args.output != "table":
        say(output.structured([summary(o) for o in found], args.output))
    elif not found:
        say("No lieutenants found" + ("." if args.all_namespaces
                                      else f" in namespace {cluster.namespace}."))
    else:
        policies = lieutenants.namespace_policies(cluster, args.all_namespaces)
        say(output.table(*lieutenants.status_rows(found, args.all_namespaces, policies)))
        notes = lieutenants.held_notes(found, args.all_namespaces)
        if notes:
            say("\n" + "\n".join(notes))
    return 0


def summary(lieutenant: Obj) -> Obj:
    """What `-o json|yaml` shows of a lieutenant: its name, spec and status."""
    meta = lieutenant["metadata"]
    return {"name": meta["name"], "namespace": meta.get("namespace"),
            "spec": lieutenant.get("spec"), "status": lieutenant.get("status") or {}}


COMMAND = Command("status", "a table of lieutenants", _arguments, _run)
