"""What a `kubectl reef` command is: its name, help, arguments and handler, in one value.

Each module of `commands/` builds one `Command`, so a command's arguments and what
it does with them are read, and changed, in one place; `main` only assembles the
parser from them and calls the chosen one. The work itself lives in the modules
named after what it is about (`lieutenants`, `fleet`, `vm`, `settings`, `dashboard`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass

from reef_operator.cli.plugin import output
from reef_operator.cli.plugin.cluster import Cluster


@dataclass(frozen=True)
class Command:
    """One subcommand. `run` gets the connected cluster and the parsed arguments and
    returns the exit code; a failure a user can act on is raised as `PluginError`."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[Cluster, argparse.Namespace], int]


def say(text: str) -> None:
    """One answer on stdout, flushed at once (a follower or a pipe sees it as it comes)."""
    print(text, flush=True)


def write(text: str) -> None:
    """Streamed output as it arrives, without an added newline."""
    sys.stdout.write(text)
    sys.stdout.flush()


def say_aside(text: str) -> None:
    """A note beside streamed output (a tool call while following), on stderr."""
    sys.stderr.write(text)
    sys.stderr.flush()


def output_format(parser: argparse.ArgumentParser) -> None:
    """`-o table|json|yaml`, spelled as kubectl spells it."""
    parser.add_argument("-o", "--output", choices=output.FORMATS, default="table",
                        help="output format (default: %(default)s)")


def all_namespaces(parser: argparse.ArgumentParser) -> None:
    """`-A`, as kubectl's."""
    parser.add_argument("-A", "--all-namespaces", action="store_true",
                        help="every namespace")
