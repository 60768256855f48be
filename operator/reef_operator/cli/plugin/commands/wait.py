"""`kubectl reef wait NAME --for=condition=TYPE[=STATUS]|phase=PHASE`: block until a
lieutenant (or `vmnode/NAME`) meets the target, or fail when the timeout passes."""

from __future__ import annotations

import argparse

from reef_operator.cli.plugin import lieutenants, wait_target
from reef_operator.cli.plugin.cluster import Cluster, PluginError
from reef_operator.cli.plugin.command import Command, say


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="a lieutenant, or vmnode/NAME")
    parser.add_argument("--for", dest="target", required=True, type=target,
                        metavar="condition=TYPE[=STATUS]")
    parser.add_argument("--timeout", type=float, default=300, help="seconds (default 300)")


def target(text: str) -> wait_target.WaitTarget:
    """`--for`'s value as a typed target; bad input is argparse's usage error (exit 2)."""
    try:
        return wait_target.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _run(cluster: Cluster, args: argparse.Namespace) -> int:
    plural, name = "lieutenants", args.name
    if "/" in name:
        plural, name = "vmnodes", name.split("/", 1)[1]
    if plural == "vmnodes" and isinstance(args.target, wait_target.PhaseTarget):
        raise PluginError(f"vmnode/{name} has no phase: wait for a condition "
                          "(--for=condition=Ready)", exit_code=2)
    lieutenants.wait_for(cluster, name, args.target, args.timeout, plural=plural)
    say(f"{plural[:-1]}/{name} condition met")
    return 0


COMMAND = Command("wait", "wait for a condition: --for=condition=Ready[=false] or "
                  "--for=phase=Idle", _arguments, _run)
