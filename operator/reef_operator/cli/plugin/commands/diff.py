"""`kubectl reef diff A B`: the DNA (modules, capabilities) one VMNode has and the other not."""

from __future__ import annotations

import argparse

from reef_operator.cli.plugin import fleet, output
from reef_operator.cli.plugin.cluster import Cluster
from reef_operator.cli.plugin.command import Command, output_format, say


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a")
    parser.add_argument("b")
    output_format(parser)


def _run(cluster: Cluster, args: argparse.Namespace) -> int:
    a, b = cluster.get("vmnodes", args.a), cluster.get("vmnodes", args.b)
    difference = fleet.dna_diff(a, b)
    say(output.structured(difference, args.output) if args.output != "table"
        else fleet.diff_text(args.a, args.b, difference))
    return 0


COMMAND = Command("diff", "DNA difference between two VMNodes", _arguments, _run)
