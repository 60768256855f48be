"""`kubectl reef history NAME`: the lieutenant's finished tasks, from their TaskRecords."""

from __future__ import annotations

import argparse

from reef_operator.cli.plugin import output, records
from reef_operator.cli.plugin.cluster import Cluster, PluginError
from reef_operator.cli.plugin.command import Command, output_format, say


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name")
    parser.add_argument("--limit", type=int, metavar="N", help="only the last N records")
    output_format(parser)


def _run(cluster: Cluster, args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 1:
        raise PluginError(f"--limit {args.limit}: expected a positive number of records",
                          exit_code=2)
    cluster.get("lieutenants", args.name)     # an unknown lieutenant is an error, not empty
    found = records.records(cluster, args.name)
    if args.limit is not None:
        found = found[-args.limit:]
    if args.output != "table":
        say(output.structured([records.summary(r) for r in found], args.output))
    elif not found:
        say(f"No task records of lieutenant {args.name} in namespace {cluster.namespace}.")
    else:
        say(output.table(*records.history_rows(found)))
    return 0


COMMAND = Command("history", "a lieutenant's finished tasks, oldest first (its records)",
                  _arguments, _run)
