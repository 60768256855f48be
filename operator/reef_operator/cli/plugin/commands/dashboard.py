"""`kubectl reef dashboard`: the lieutenants and the VM tree in a browser, served from
this machine until Ctrl-C."""

from __future__ import annotations

import argparse

from reef_operator.cli.plugin import dashboard
from reef_operator.cli.plugin.cluster import Cluster
from reef_operator.cli.plugin.command import Command, all_namespaces, say


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", default="127.0.0.1",
                        help="address to listen on (default: %(default)s, this machine only)")
    parser.add_argument("--port", type=int, default=8474,
                        help="port (default: %(default)s; 0 picks a free one)")
    all_namespaces(parser)


def _run(cluster: Cluster, args: argparse.Namespace) -> int:
    dashboard.serve(cluster, args.address, args.port, args.all_namespaces, say)
    return 0


COMMAND = Command("dashboard", "the lieutenants and the VM tree in a browser, live "
                  "(read-only, served from this machine)", _arguments, _run)
