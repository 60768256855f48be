"""`kubectl reef pause NAME`: spec.state Paused; after the current task the VM freezes."""

from __future__ import annotations

import argparse

from reef_operator.cli.plugin import lieutenants
from reef_operator.cli.plugin.cluster import Cluster
from reef_operator.cli.plugin.command import Command, say
from reef_operator.cli.plugin.wait_target import ConditionTarget


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name")
    parser.add_argument("--wait", action="store_true", help="wait until it has happened")
    parser.add_argument("--timeout", type=float, default=600, help="seconds for --wait")


def _run(cluster: Cluster, args: argparse.Namespace) -> int:
    say(lieutenants.set_state(cluster, args.name, "Paused"))
    if args.wait:
        lieutenants.wait_for(cluster, args.name, ConditionTarget("Paused"), args.timeout)
        say(f"lieutenant/{args.name} is paused")
    return 0


COMMAND = Command("pause", "pause: after the current task the VM freezes", _arguments, _run)
