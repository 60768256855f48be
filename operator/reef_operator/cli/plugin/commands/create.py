"""`kubectl reef create NAME --role …`: a new lieutenant, with first tasks if given."""

from __future__ import annotations

import argparse

from reef_operator.cli.plugin import lieutenants
from reef_operator.cli.plugin.cluster import Cluster
from reef_operator.cli.plugin.command import Command, say
from reef_operator.cli.plugin.wait_target import ConditionTarget


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name")
    parser.add_argument("--role", required=True, help="the lieutenant's job (system prompt)")
    parser.add_argument("--profile", help="BootProfile name (default: the operator's)")
    parser.add_argument("--model", help="PROVIDER/ID, e.g. anthropic/claude-sonnet-4-5")
    parser.add_argument("--credentials", metavar="SECRET",
                        help="Secret whose keys become the agent's environment; it must "
                             "carry the label reef.vers.sh/agent-credentials=true")
    parser.add_argument("--providers", metavar="CONFIGMAP",
                        help="ConfigMap with pi's models.json, for custom model providers")
    parser.add_argument("--instructions", help="extra system-prompt text")
    parser.add_argument("--history-limit", type=int, help="responses kept in status.history")
    parser.add_argument("--task", action="append", default=[], metavar="MESSAGE",
                        help="a first task (repeatable: run one after another)")
    parser.add_argument("--wait", action="store_true", help="wait until it accepts tasks")
    parser.add_argument("--timeout", type=float, default=300, help="seconds for --wait")


def _run(cluster: Cluster, args: argparse.Namespace) -> int:
    say(lieutenants.create(cluster, args.name, args.role, profile=args.profile,
                           model=args.model, credentials=args.credentials,
                           providers=args.providers, instructions=args.instructions,
                           tasks=args.task, history_limit=args.history_limit))
    if args.wait:
        lieutenants.wait_for(cluster, args.name, ConditionTarget("Ready"), args.timeout)
        say(f"lieutenant/{args.name} is ready")
    return 0


COMMAND = Command("create", "create a lieutenant (then send it tasks)", _arguments, _run)
