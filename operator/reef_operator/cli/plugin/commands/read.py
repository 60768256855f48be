"""`kubectl reef read NAME`: the live output or the last response, its history, a
finished task's full answer from its record (`--task`), or a stream of the running task
until it ends (`--follow`, whose exit code is the task's)."""

from __future__ import annotations

import argparse

from reef_operator.cli.plugin import follow, lieutenants, records
from reef_operator.cli.plugin.cluster import Cluster, PluginError
from reef_operator.cli.plugin.command import Command, say, say_aside, write


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name")
    parser.add_argument("--tail", type=int, metavar="N", help="only the last N characters")
    parser.add_argument("--history", type=int, metavar="N",
                        help="the last N responses (=== Response i ===), then the current one")
    parser.add_argument("--task", metavar="T",
                        help="task T's full answer, from its record (after it ended)")
    parser.add_argument("--follow", "-f", action="store_true",
                        help="stream the running task from its VM until it ends (needs the "
                             "access `exec` needs; text on stdout, tool calls on stderr)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds for --follow")


def _run(cluster: Cluster, args: argparse.Namespace) -> int:
    if args.task is not None:
        if args.follow or args.history is not None:
            raise PluginError("--task prints a finished task's answer: it goes with neither "
                              "--follow nor --history", exit_code=2)
        text = records.answer(cluster, args.name, args.task)
        if args.tail is not None:
            text = text[-args.tail:] if args.tail > 0 else ""
        say(text)
        return 0
    if args.follow:
        return follow.follow(cluster, args.name, args.timeout, write, say_aside)
    say(lieutenants.read(cluster, args.name, tail=args.tail, history=args.history))
    return 0


COMMAND = Command("read", "the lieutenant's output: live output, or the last response",
                  _arguments, _run)
