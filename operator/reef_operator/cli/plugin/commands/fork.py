"""`kubectl reef fork SRC NEW [--role R] [--checkpoint L]`: a lieutenant that continues
SRC's conversation, with its files and memory, on a copy of its VM."""

from __future__ import annotations

import argparse

from reef_operator.cli.plugin import forks, lieutenants
from reef_operator.cli.plugin.cluster import Cluster
from reef_operator.cli.plugin.command import Command, say
from reef_operator.cli.plugin.wait_target import ConditionTarget


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="the lieutenant to fork")
    parser.add_argument("name", help="the new lieutenant")
    parser.add_argument("--role", help="the fork's job (default: the source's role)")
    parser.add_argument("--checkpoint", metavar="LABEL",
                        help="fork this named checkpoint of the source (default: a "
                             "checkpoint taken now, between two of its tasks)")
    parser.add_argument("--wait", action="store_true", help="wait until it accepts tasks")
    parser.add_argument("--timeout", type=float, default=300, help="seconds for --wait")


def _run(cluster: Cluster, args: argparse.Namespace) -> int:
    say(forks.fork(cluster, args.source, args.name, role=args.role,
                   checkpoint=args.checkpoint))
    if args.wait:
        lieutenants.wait_for(cluster, args.name, ConditionTarget("Ready"), args.timeout)
        say(f"lieutenant/{args.name} is ready")
    return 0


COMMAND = Command("fork", "fork a lieutenant: a new one continuing its conversation",
                  _arguments, _run)
