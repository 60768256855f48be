"""`kubectl reef cp NAME:PATH LOCAL`: a file or directory from a lieutenant's VM to here."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from reef_operator.cli.plugin import vm
from reef_operator.cli.plugin.cluster import Cluster
from reef_operator.cli.plugin.command import Command, say


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="NAME:PATH")
    parser.add_argument("destination", type=Path, metavar="LOCAL")


def _run(cluster: Cluster, args: argparse.Namespace) -> int:
    say(asyncio.run(vm.copy(cluster, args.source, args.destination)))
    return 0


COMMAND = Command("cp", "copy a file or directory from a lieutenant's VM: NAME:PATH LOCAL",
                  _arguments, _run)
