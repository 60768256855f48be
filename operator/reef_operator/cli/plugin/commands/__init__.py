"""The commands of `kubectl reef`, one module each, in the order `--help` lists them."""

from reef_operator.cli.plugin.command import Command
from reef_operator.cli.plugin.commands import (
    checkpoint,
    config,
    cp,
    create,
    dashboard,
    destroy,
    diff,
    discover,
    exec_,
    fork,
    history,
    pause,
    policy,
    prune,
    read,
    resume,
    send,
    status,
    tree,
    wait,
)

COMMANDS: tuple[Command, ...] = (
    create.COMMAND, fork.COMMAND, checkpoint.COMMAND, send.COMMAND, read.COMMAND,
    history.COMMAND, status.COMMAND,
    pause.COMMAND, resume.COMMAND, prune.COMMAND, destroy.COMMAND, discover.COMMAND,
    tree.COMMAND, diff.COMMAND, exec_.COMMAND, cp.COMMAND, wait.COMMAND, dashboard.COMMAND,
    policy.COMMAND, config.COMMAND,
)
