"""`kubectl reef prune NAME [--keep N]`: finished tasks removed from spec.tasks."""

from __future__ import annotations

import argparse

from reef_operator.cli.plugin import pruning
from reef_operator.cli.plugin.cluster import Cluster
from reef_operator.cli.plugin.command import Command, say


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name")
    parser.add_argument("--keep", type=int, default=0, metavar="N",
                        help="keep the N most recent finished tasks (default: none)")


def _run(cluster: Cluster, args: argparse.Namespace) -> int:
    say(pruning.prune(cluster, args.name, args.keep))
    return 0


COMMAND = Command("prune", "remove finished tasks from spec.tasks (their names stay used)",
                  _arguments, _run)
