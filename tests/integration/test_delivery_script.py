"""The delivery script (lieutenants/delivery.py) and pi's run directory (agent/session.py)
on a Local VM: real bash, a real FIFO held open by a keeper under tmux, and a stand-in for
pi that appends what it reads. What pi would receive is what lands in `got`.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from reef_operator.agent.session import PRELUDE, PiSession, SessionSpec
from reef_operator.lieutenants import delivery
from reef_operator.providers.base import Shell, VmRequest
from reef_operator.providers.local import LocalProvider
from reef_operator.providers.local.layout import is_id, remove_tree
from reef_operator.providers.output import OUTPUT_LIMIT

# The layout PiSession.start() makes, with `cat` in pi's place.
STAND_IN = (
    'umask 077 && mkdir -p "$RUN" && mkfifo -m 600 "$RUN/in" && '
    '$T new-session -d -s pi-keeper "exec sleep infinity > \'$RUN/in\'" && '
    '$T new-session -d -s pi-rpc "exec cat < \'$RUN/in\' >> \'$RUN/got\'"')


@pytest.fixture
async def vm() -> AsyncIterator[tuple[Shell, Path]]:
    root = Path(tempfile.mkdtemp(prefix="reef-dl-"))
    local = LocalProvider(root)
    try:
        created = await local.create(VmRequest(owner_uid="uid-1", name="vm", namespace="ns"))
        shell = await local.shell(created)
        result = await shell.run(PRELUDE + STAND_IN)
        assert result.ok, result.stderr
        yield shell, root / created / "root" / ".reef" / "run"
    finally:
        for name in os.listdir(root):
            if is_id(name):
                await local.delete(name)
        remove_tree(root)


async def _received(shell: Shell, lines: int) -> list[str]:
    """pi's input once `lines` lines arrived (the stand-in appends as it reads)."""
    result = await shell.run(PRELUDE + f'for _ in $(seq 100); do [ "$(wc -l < "$RUN/got")" '
                             f'-ge {lines} ] && break; sleep 0.1; done; cat "$RUN/got"')
    return result.stdout.splitlines()


async def test_a_message_at_the_schemas_limit_in_three_byte_characters_is_delivered_once(
        vm: tuple[Shell, Path]) -> None:
    shell, run = vm
    message = "語" * 32_768                  # spec.tasks[].message's maxLength
    await delivery.deliver(shell, "task-big", {"type": "prompt", "message": message})
    await delivery.deliver(shell, "task-small", {"type": "prompt", "message": "next"})
    received = await _received(shell, 2)
    assert [json.loads(line) for line in received] == [
        {"id": "task-big", "type": "prompt", "message": message},
        {"id": "task-small", "type": "prompt", "message": "next"}]
    assert await delivery.delivered_ids(shell) == ["task-big", "task-small"]
    assert sorted(p.name for p in run.iterdir() if p.name.startswith("deliver-")) == []


async def test_an_id_already_in_the_sent_log_is_never_written_again(
        vm: tuple[Shell, Path]) -> None:
    """A task name delivered on this VM never reaches pi twice, whatever the operator
    remembers: the second delivery of its id is refused before anything is written."""
    shell, _ = vm
    await delivery.deliver(shell, "task-once", {"type": "prompt", "message": "first"})
    with pytest.raises(delivery.AlreadyDelivered):
        await delivery.deliver(shell, "task-once", {"type": "prompt", "message": "again"})
    await delivery.deliver(shell, "task-next", {"type": "prompt", "message": "next"})
    assert [json.loads(line)["message"] for line in await _received(shell, 2)] == [
        "first", "next"]
    assert await delivery.delivered_ids(shell) == ["task-once", "task-next"]


async def test_a_line_cut_on_its_way_is_neither_recorded_nor_delivered(
        vm: tuple[Shell, Path]) -> None:
    """A connection cut while stdin is in flight ends the input early: the length given in
    the arguments does not match, so no sent-log entry and no partial line in pi's input."""
    shell, _ = vm
    line = json.dumps({"id": "task-cut", "type": "prompt", "message": "x" * 1000}) + "\n"
    cut = await shell.run(PRELUDE + f"set -- task-cut {len(line)}; {delivery.DELIVER}",
                          stdin=line[:500])
    assert cut.exit_status == 75 and "arrived cut" in cut.stderr
    assert await delivery.delivered_ids(shell) == []
    # A later delivery shows the FIFO got nothing of the cut line.
    await delivery.deliver(shell, "task-whole", {"type": "prompt", "message": "whole"})
    assert [json.loads(line)["id"] for line in await _received(shell, 1)] == ["task-whole"]
    assert await delivery.delivered_ids(shell) == ["task-whole"]


async def test_pis_run_directory_is_private_and_takes_over_the_former_shared_one(
        tmp_path: Path) -> None:
    """PiSession.start() (real pi, which waits on its FIFO) makes $HOME/.reef/run 0700; an
    event log and sent-log under the former ${TMPDIR:-/tmp}/pi-rpc carry over, so stored
    offsets and the exactly-once record stay valid across the upgrade."""
    root = Path(tempfile.mkdtemp(prefix="reef-rd-"))
    local = LocalProvider(root)
    try:
        vm_id = await local.create(VmRequest(owner_uid="uid-1", name="vm", namespace="ns"))
        shell = await local.shell(vm_id)
        old = root / vm_id / "tmp" / "pi-rpc"
        old.mkdir(parents=True)
        (old / "out").write_text('{"type":"agent_end"}\n')
        (old / "sent").write_text("task-before\n")
        session = PiSession(shell, SessionSpec(name="api", provider="none", model="none",
                                               system_prompt="test"))
        assert await session.start()
        run = root / vm_id / "root" / ".reef" / "run"
        for directory in (run, run.parent):
            assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
        assert (run / "out").read_text() == '{"type":"agent_end"}\n'
        assert await delivery.delivered_ids(shell) == ["task-before"]
        assert await session.running()
        await session.stop()
    finally:
        for name in os.listdir(root):
            if is_id(name):
                await local.delete(name)
        remove_tree(root)


async def test_a_commands_output_is_cut_at_the_bound_with_a_marker(
        vm: tuple[Shell, Path]) -> None:
    """A VM printing without end (here 64 MiB) costs the operator OUTPUT_LIMIT at most."""
    shell, _ = vm
    result = await shell.run("head -c 67108864 /dev/zero | tr '\\0' x; echo done >&2")
    assert result.ok and result.stderr == "done\n"
    assert result.stdout.startswith("x" * OUTPUT_LIMIT)
    assert result.stdout[OUTPUT_LIMIT:] == (
        f"\n[output cut: {64 * 1024 * 1024 - OUTPUT_LIMIT:,} bytes beyond the "
        f"{OUTPUT_LIMIT:,}-byte bound]\n")
