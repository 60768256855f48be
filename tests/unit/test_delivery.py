"""Delivering tasks into pi (lieutenants/delivery.py): which command a task becomes, and
what travels to the VM. The shell script itself runs in tests/integration/
test_delivery_script.py and the e2e and resilience suites."""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest

from reef_operator.agent.session import PRELUDE
from reef_operator.lieutenants import delivery
from reef_operator.providers.base import CommandResult


class _Shell:
    """Records commands; answers each with the next prepared result."""

    def __init__(self, *results: CommandResult) -> None:
        self.results = list(results)
        self.commands: list[str] = []
        self.stdins: list[str | None] = []

    @property
    def host_key_fingerprint(self) -> str:
        return ""

    async def run(self, command: str, *, stdin: str | None = None,
                  within: float | None = 60.0) -> CommandResult:
        self.commands.append(command)
        self.stdins.append(stdin)
        return self.results.pop(0)

    async def stream(self, command: str) -> Any:
        raise AssertionError("delivery never streams")


def _arguments(command: str) -> list[str]:
    """The positional arguments the delivery command sets (`set -- id length`)."""
    assert command.startswith(PRELUDE) and command.endswith("; " + delivery.DELIVER)
    words = shlex.split(command[len(PRELUDE):-len("; " + delivery.DELIVER)])
    assert words[:2] == ["set", "--"]
    return words[2:]


def test_a_prompt_to_an_idle_agent_is_a_plain_prompt() -> None:
    assert delivery.task_command("hi", "prompt", working=False) == (
        {"type": "prompt", "message": "hi"}, "prompt", "")


def test_a_prompt_never_interrupts_a_working_agent() -> None:
    assert delivery.task_command("hi", "prompt", working=True) is None


@pytest.mark.parametrize(("mode", "behaviour"), [("steer", "steer"), ("followUp", "followUp")])
def test_steer_and_follow_up_use_pis_own_queues(mode: str, behaviour: str) -> None:
    assert delivery.task_command("hi", mode, working=True) == (
        {"type": "prompt", "message": "hi", "streamingBehavior": behaviour}, behaviour, "")
    command, delivered_as, note = delivery.task_command("hi", mode, working=False) or ({}, "", "")
    assert (command, delivered_as) == ({"type": "prompt", "message": "hi"}, "prompt")
    assert note == "the agent was idle: it started right away"


async def test_the_command_travels_on_stdin_with_its_length_in_the_arguments() -> None:
    """Whatever it says and however long: the arguments carry only the id and the line's
    length in bytes, which the VM checks before it records anything."""
    shell = _Shell(CommandResult(0, "", ""))
    message = "it's \"quoted\"; $(rm -rf /) `x` \\ and\nnewlines 語" * 1000
    await delivery.deliver(shell, "task-a", {"type": "prompt", "message": message})
    identifier, length = _arguments(shell.commands[0])
    line = shell.stdins[0] or ""
    assert identifier == "task-a" and int(length) == len(line.encode())
    assert json.loads(line) == {"id": "task-a", "type": "prompt", "message": message}
    assert line.endswith("\n") and line.count("\n") == 1    # one line in pi's input
    assert len(shell.commands[0]) < 2000


async def test_a_refused_write_is_an_error_with_the_vms_reason() -> None:
    shell = _Shell(CommandResult(75, "", "pi is not running\n"))
    with pytest.raises(delivery.DeliveryError, match="pi is not running"):
        await delivery.deliver(shell, "task-a", {"type": "prompt", "message": "hi"})


async def test_delivered_ids_are_the_sent_logs_lines_in_delivery_order() -> None:
    shell = _Shell(CommandResult(0, "task-b\n\n  task-a  \n", ""))
    assert await delivery.delivered_ids(shell) == ["task-b", "task-a"]


def test_a_tasks_command_id_is_derived_from_its_name() -> None:
    assert delivery.command_id("build") == "task-build"
