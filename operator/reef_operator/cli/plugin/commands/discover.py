"""`kubectl reef discover`: every VM the operator manages, the lieutenant on it, and how
the operator holds it (created, adopted, re-attached)."""

from __future__ import annotations

import argparse

from reef_operator.cli.plugin import fleet, output
from reef_operator.cli.plugin.cluster import Cluster
from reef_operator.cli.plugin.command import Command, all_namespaces, output_format, say


def _arguments(parser: argparse.ArgumentParser) -> None:
    all_namespaces(parser)
    output_format(parser)


def _run(cluster: Cluster, args: argparse.Namespace) -> int:
    rows = fleet.discover_rows(
        cluster.items("lieutenants", all_namespaces=args.all_namespaces),
        cluster.items("vmnodes", all_namespaces=args.all_namespaces))
    if args.output != "table":
        say(output.structured(rows, args.output))
    else:
        say(fleet.discover_table(rows) if rows else "No VMs managed here.")
    return 0


COMMAND = Command("discover", "what the operator manages: VMs, lieutenants, re-attachments",
                  _arguments, _run)
