"""`kubectl reef config`: the operator configuration with where each value comes from;
`config set KEY VALUE` / `config unset KEY` change the operator's ConfigMap."""

from __future__ import annotations

import argparse
import os

from reef_operator.cli.plugin import output, settings
from reef_operator.cli.plugin.cluster import Cluster, PluginError
from reef_operator.cli.plugin.command import Command, output_format, say


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("change", nargs="*", metavar="set KEY VALUE | unset KEY",
                        help="change one key in the operator's ConfigMap (checked first)")
    parser.add_argument("--from-deployment", metavar="NAME", nargs="?",
                        const="reef-operator",
                        help="use the environment of the operator's Deployment (default "
                        "name reef-operator) instead of this shell's")
    parser.add_argument("--operator-namespace", default="reef-system",
                        help="where the operator's ConfigMap/Secret live "
                        "(default: %(default)s)")
    output_format(parser)


def _run(cluster: Cluster, args: argparse.Namespace) -> int:
    env = (settings.deployment_env(cluster, args.from_deployment, args.operator_namespace)
           if args.from_deployment else dict(os.environ))
    if args.change:
        key, value = change(args.change)
        for line in settings.change(cluster, env, args.operator_namespace, key, value):
            say(line)
        return 0
    rows = settings.resolved(cluster, env, args.operator_namespace)
    say(output.structured(rows, args.output) if args.output != "table" else
        output.table(["key", "value", "source"],
                     [[r["key"], r["value"], r["source"]] for r in rows]))
    return 0


def change(words: list[str]) -> tuple[str, str | None]:
    """(KEY, VALUE) for `set KEY VALUE`, (KEY, None) for `unset KEY`."""
    if len(words) == 3 and words[0] == "set":
        return words[1], words[2]
    if len(words) == 2 and words[0] == "unset":
        return words[1], None
    raise PluginError(f"config {' '.join(words)}: expected `config set KEY VALUE` or "
                      "`config unset KEY`", exit_code=2)


COMMAND = Command("config", "the operator configuration, with where each value comes from; "
                  "`config set KEY VALUE` / `config unset KEY` change its ConfigMap",
                  _arguments, _run)
