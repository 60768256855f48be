"""kubectl reef: lieutenants and their VMs from the command line.

    kubectl reef create api --role "Build the API" --task "Scaffold it"
    kubectl reef fork api api-b [--role "Try GraphQL"] [--checkpoint L] | checkpoint api [--label L]
    kubectl reef send api "Add a /health route" [--mode prompt|steer|followUp]
    kubectl reef read api [--history 3] [--tail 2000] [--follow]
    kubectl reef status | pause api | resume api | destroy api|'*'
    kubectl reef discover | tree | diff A B | exec api -- ls | cp api:/root/x ./x
    kubectl reef wait api --for=condition=Ready | config [set KEY VALUE] | dashboard

Exit codes: 0 done, 1 failed (the message says why), 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from reef_operator.cli.plugin.cluster import Cluster, PluginError
from reef_operator.cli.plugin.commands import COMMANDS

BY_NAME = {command.name: command for command in COMMANDS}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="kubectl reef", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: $KUBECONFIG "
                     "or ~/.kube/config)")
    top.add_argument("--context", default=None, help="kubeconfig context to use")
    top.add_argument("-n", "--namespace", default=None,
                     help="namespace (default: the context's, else default)")
    subparsers = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # The same options after the command (`kubectl reef status -n team`), as kubectl allows.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--kubeconfig", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument("--context", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument("-n", "--namespace", default=argparse.SUPPRESS,
                        help="namespace (default: the context's, else default)")
    for command in COMMANDS:
        command.arguments(subparsers.add_parser(command.name, help=command.help,
                                                description=command.help, parents=[common]))
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Parse (bad usage: argparse's message, exit 2), connect, run the command; a
    `PluginError` from either is one `error:` line on stderr and its exit code."""
    args = parser().parse_args(argv)
    try:
        cluster = Cluster.connect(args.kubeconfig, args.context, args.namespace)
        return BY_NAME[args.command].run(cluster, args)
    except PluginError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
