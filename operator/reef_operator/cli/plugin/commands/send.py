"""`kubectl reef send NAME MESSAGE`: a task appended to the lieutenant's spec.tasks."""

from __future__ import annotations

import argparse

from reef_operator.cli.plugin import lieutenants
from reef_operator.cli.plugin.cluster import Cluster
from reef_operator.cli.plugin.command import Command, say


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name")
    parser.add_argument("message")
    parser.add_argument("--mode", default="prompt", help="prompt (default), steer or followUp")
    parser.add_argument("--task-name", help="task name (default: task-N)")


def _run(cluster: Cluster, args: argparse.Namespace) -> int:
    say(lieutenants.send(cluster, args.name, args.message, args.mode, args.task_name))
    return 0


COMMAND = Command("send", "send a task: append it to spec.tasks", _arguments, _run)
