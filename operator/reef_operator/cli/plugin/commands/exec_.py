"""`kubectl reef exec NAME -- COMMAND`: run a command on a lieutenant's VM (or
`vmnode/NAME`); its output and exit status become the plugin's own."""

from __future__ import annotations

import argparse
import asyncio
import sys

from reef_operator.cli.plugin import vm
from reef_operator.cli.plugin.cluster import Cluster, PluginError
from reef_operator.cli.plugin.command import Command


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name")
    parser.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND",
                        help="the command (a single argument is run by the shell)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds")


def _run(cluster: Cluster, args: argparse.Namespace) -> int:
    argv = command_words(args.argv)
    if not argv:
        raise PluginError("exec: no command given (kubectl reef exec NAME -- COMMAND)",
                          exit_code=2)
    result = asyncio.run(vm.run(cluster, args.name, argv, args.timeout))
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.exit_status


def command_words(remainder: list[str]) -> list[str]:
    """The command's words. argparse takes the first `--` after NAME as its own; one more
    (`exec NAME -- -- ls`) still only separates, so it is not passed on either. A `--`
    further on belongs to the command (`exec NAME -- grep -- -x file`)."""
    return remainder[1:] if remainder[:1] == ["--"] else remainder


COMMAND = Command("exec", "run a command on a lieutenant's VM (or vmnode/NAME)",
                  _arguments, _run)
