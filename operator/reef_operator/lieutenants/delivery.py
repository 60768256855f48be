"""Exactly-once delivery of tasks into pi's FIFO.

Each delivery is one shell command on the VM, with hangups ignored so a dropped
SSH connection or a killed operator cannot stop it half way once it has begun
to act. The command line travels on the command's stdin, so a message of any
length the schema admits is delivered (in the arguments, a long one in
multi-byte characters hits the kernel's limit on one argument). A connection cut
while stdin is in flight gives an early end of input, so the line is staged in a
file first and its length checked against the one given in the arguments: a cut
line stops the command before anything is recorded. Only then the command id is
appended to `$RUN/sent`, and the staged line to the FIFO. A task whose id is in
the sent-log was delivered (the FIFO's keeper holds the data for pi even if pi
restarts); one whose id is not there was not, and is sent again. An id already
in the sent-log is refused before anything is written: a task name delivered on
this VM never reaches pi twice, whatever the operator remembers (ledger.py decides
whether that was its own unsure attempt or a reused name).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from reef_operator.agent.session import PRELUDE
from reef_operator.providers.base import Shell

# $1 the command id, $2 the line's length in bytes (its newline included), the line on
# stdin. An id already in the sent-log is never written again (exit 65). Only a running pi
# reads the FIFO: without one the write would block, so check first, bound the write, and
# take the id back out of the sent-log if pi did not take it.
DELIVER = (
    "trap '' HUP INT TERM PIPE; "
    "grep -qxF -- \"$1\" \"$RUN/sent\" 2>/dev/null && "
    "{ cat > /dev/null; echo 'already delivered' >&2; exit 65; }; "
    "$T has-session -t pi-rpc 2>/dev/null || { echo 'pi is not running' >&2; exit 75; }; "
    "staged=\"$RUN/deliver-$1\"; "
    "( umask 077; cat > \"$staged\" ) && [ \"$(wc -c < \"$staged\")\" -eq \"$2\" ] || { "
    "rm -f \"$staged\"; echo 'the command arrived cut: not delivered' >&2; exit 75; }; "
    "printf '%s\\n' \"$1\" >> \"$RUN/sent\" && "
    "if ! timeout 10 sh -c 'cat \"$1\" >> \"$0\"' \"$RUN/in\" \"$staged\"; then "
    "sed -i \"/^$1\\$/d\" \"$RUN/sent\"; rm -f \"$staged\"; "
    "echo 'pi did not take the command' >&2; exit 75; fi; rm -f \"$staged\""
)


ALREADY_DELIVERED = 65


def command_id(task_name: str) -> str:
    return f"task-{task_name}"


def task_command(message: str, mode: str, working: bool
                 ) -> tuple[dict[str, Any], str, str] | None:
    """The RPC command for a task, how it is delivered and the note to show the user;
    None while it must wait.

    A `prompt` never interrupts: while the agent works it waits and runs right
    after (pi would keep a queued follow-up stuck if the current run failed).
    `steer` and `followUp` go to pi at once and use its own queues.
    """
    if mode == "prompt":
        if working:
            return None
        return {"type": "prompt", "message": message}, "prompt", ""
    if not working:
        return ({"type": "prompt", "message": message}, "prompt",
                "the agent was idle: it started right away")
    behaviour = "steer" if mode == "steer" else "followUp"
    return {"type": "prompt", "message": message, "streamingBehavior": behaviour}, behaviour, ""


async def deliver(shell: Shell, command_id_: str, command: Mapping[str, Any]) -> None:
    line = json.dumps({"id": command_id_, **command}, separators=(",", ":")) + "\n"
    size = len(line.encode())
    result = await shell.run(PRELUDE + f"set -- {_quote(command_id_)} {size}; {DELIVER}",
                             stdin=line, within=30)
    if result.exit_status == ALREADY_DELIVERED:
        raise AlreadyDelivered(f"{command_id_} is in the VM's sent-log: not written again")
    if result.exit_status != 0:
        raise DeliveryError(f"could not write to pi's input: {result.stderr.strip()[-300:]}")


async def delivered_ids(shell: Shell) -> list[str]:
    """The ids in the VM's sent-log, in the order they were delivered."""
    result = await shell.run(PRELUDE + 'cat "$RUN/sent" 2>/dev/null; true', within=30)
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


class DeliveryError(RuntimeError):
    pass


class AlreadyDelivered(DeliveryError):
    """The command id is in the VM's sent-log: this name was delivered on this VM before."""


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"
