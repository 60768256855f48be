"""`reef-operator`: the operator's command line.

    reef-operator run                      run the operator
    reef-operator dev up|down|env|status   a real local control plane (from the dev kit)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from importlib.metadata import entry_points

from reef_operator.cli import run as run_command

# Commands other distributions add: each entry point of this group names a function that
# adds its subcommand to the subparsers it is given and sets `handler` (arguments to exit
# code) as that subcommand's default. The development kit brings `dev` this way, so the
# operator finds it at run time and never imports it.
COMMAND_GROUP = "reef_operator.commands"
DEV_KIT_COMMAND = "dev"

Handler = Callable[[argparse.Namespace], int]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="reef-operator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_command.add_parser(commands)
    commands.choices["run"].set_defaults(handler=run_command.run)
    for entry in entry_points(group=COMMAND_GROUP):
        add_parser: Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]
        add_parser = entry.load()
        add_parser(commands)
    if DEV_KIT_COMMAND not in commands.choices:
        _add_dev_kit_notice(commands)
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


def _add_dev_kit_notice(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`dev` without the dev kit: accept any arguments and say where the command comes from."""
    dev = commands.add_parser(
        DEV_KIT_COMMAND, add_help=False,
        help="a real local control plane (comes with the development kit, not installed)")
    dev.add_argument("arguments", nargs=argparse.REMAINDER)
    dev.set_defaults(handler=_dev_kit_missing)


def _dev_kit_missing(_args: argparse.Namespace) -> int:
    print("reef-operator dev: the local control plane comes with the development kit "
          "(distribution reef-devkit, in devkit/ of the reef-operator repository), which is "
          "not installed here: ./scripts/setup installs it, or pip install ./devkit",
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
