"""`kubectl reef checkpoint NAME [--label L] [--wait]`: a named checkpoint of the
lieutenant's VM, recorded in its status.checkpoints, to fork from later."""

from __future__ import annotations

import argparse

from reef_operator.cli.plugin import forks
from reef_operator.cli.plugin.cluster import Cluster
from reef_operator.cli.plugin.command import Command, say


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name")
    parser.add_argument("--label", help="the checkpoint's name, a DNS label (default: "
                                        "cp-<UTC date>-<time>)")
    parser.add_argument("--wait", action="store_true", help="wait until it is taken")
    parser.add_argument("--timeout", type=float, default=600, help="seconds for --wait")


def _run(cluster: Cluster, args: argparse.Namespace) -> int:
    label = args.label or forks.default_label()
    say(forks.ask_checkpoint(cluster, args.name, label))
    if args.wait:
        commit = forks.wait_for_checkpoint(cluster, args.name, label, args.timeout)
        say(f"checkpoint {label} of lieutenant/{args.name} taken: commit {commit}")
    return 0


COMMAND = Command("checkpoint", "checkpoint a lieutenant's VM under a label (to fork later)",
                  _arguments, _run)
