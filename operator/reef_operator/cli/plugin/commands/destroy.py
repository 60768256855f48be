"""`kubectl reef destroy NAME|'*'`: stop lieutenants and release their VMs, after asking
(`'*'` is every lieutenant and nothing else: other VMNodes are not touched)."""

from __future__ import annotations

import argparse

from reef_operator.cli.plugin import lieutenants
from reef_operator.cli.plugin.cluster import Cluster
from reef_operator.cli.plugin.command import Command, all_namespaces, say


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="a lieutenant, or '*'")
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--delete", action="store_true",
                        help="also delete the objects (default: keep them and their history)")
    all_namespaces(parser)


def _run(cluster: Cluster, args: argparse.Namespace) -> int:
    for line in lieutenants.destroy(cluster, args.name, yes=args.yes, delete=args.delete,
                                    all_namespaces=args.all_namespaces,
                                    confirm=lieutenants.ask):
        say(line)
    return 0


COMMAND = Command("destroy", "destroy lieutenants ('*' = every lieutenant, nothing else)",
                  _arguments, _run)
