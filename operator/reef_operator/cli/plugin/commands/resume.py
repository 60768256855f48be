"""`kubectl reef resume NAME`: spec.state Running; the VM thaws and the conversation
goes on where it stopped."""

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
    say(lieutenants.set_state(cluster, args.name, "Running"))
    if args.wait:
        lieutenants.wait_for(cluster, args.name, ConditionTarget("Ready"), args.timeout)
        say(f"lieutenant/{args.name} is running")
    return 0


COMMAND = Command("resume", "resume a paused lieutenant: the conversation goes on",
                  _arguments, _run)
