"""The Local provider: VMs as directories and ordinary processes on this host.

Every test gets a provider on a fresh root; the fixture deletes every VM left
under it (killing its processes) whether the test passed or not.

The root is a short directory from `tempfile.mkdtemp`, not pytest's tmp_path:
a tmux socket in a VM's TMPDIR (<root>/<uuid>/tmp/...) must fit the 107 bytes
of a unix socket path, which pytest's long tmp_path names can exceed.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from reef_operator.providers.base import Provider, Shell, VmOwner, VmRequest
from reef_operator.providers.errors import BadRequest, NotFound, ShellError
from reef_operator.providers.local import LocalProvider, filelock, processes
from reef_operator.providers.local.layout import is_id, new_id, remove_tree

# A loop that records its pid once and a growing counter every 50 ms.
COUNTER = ('echo $$ > "$HOME/{name}.pid"; n=0; '
           'while :; do n=$((n+1)); echo $n > "$HOME/{name}"; sleep 0.05; done')


@pytest.fixture
async def provider() -> AsyncIterator[LocalProvider]:
    root = Path(tempfile.mkdtemp(prefix="reef-local-"))
    local = LocalProvider(root)
    try:
        yield local
    finally:
        for name in os.listdir(root):
            if is_id(name):
                await local.delete(name)
        remove_tree(root)


def request(owner: str = "uid-1", *, commit_id: str | None = None, tag: str | None = None,
            ref: str | None = None) -> VmRequest:
    return VmRequest(owner_uid=owner, name=f"vm-{owner}", namespace="default",
                     commit_id=commit_id, tag=tag, ref=ref)


async def start_counter(shell: Shell, name: str = "count") -> None:
    """A daemon in the VM, detached the usual way (it outlives the command)."""
    script = COUNTER.format(name=name)
    result = await shell.run(
        f"setsid nohup bash -c '{script}' >/dev/null 2>&1 </dev/null &")
    assert result.ok, result.stderr


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def read_int(path: Path) -> int:
    try:
        return int(path.read_text() or 0)
    except (FileNotFoundError, ValueError):  # not written yet, or caught mid-write
        return 0


async def advances(path: Path) -> bool:
    """Whether the counter in `path` grows within half a second."""
    before = read_int(path)
    await asyncio.sleep(0.5)
    return read_int(path) > before


def state(pid: int) -> str:
    """A process's state letter; "gone" once it is dead (a zombie counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError):  # reaped, or exiting right now
        return "gone"
    letter = stat[stat.rfind(b")") + 2:].split()[0].decode()
    return "gone" if letter in "ZXx" else letter


def home(provider: LocalProvider, vm_id: str) -> Path:
    return provider.root / vm_id / "root"


async def test_create_observe_run_and_find(provider: LocalProvider,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERS_API_KEY", "operator-secret")
    typed: Provider = provider  # the Local provider is a Provider
    vm_id = await typed.create(request("uid-1"))
    directory = provider.root / vm_id

    seen = await provider.observe(vm_id)
    assert (seen.vm_id, seen.state, seen.address) == (vm_id, "running", str(directory))
    assert (directory / "root" / "workspace").is_dir()
    meta = json.loads((directory / "meta.json").read_text())
    assert (meta["owner_uid"], meta["state"], meta["name"]) == ("uid-1", "running", "vm-uid-1")

    shell = await provider.shell(vm_id)
    assert shell.host_key_fingerprint == ""
    result = await shell.run(
        'echo "$HOME|$TMPDIR|$PWD|$REEF_LOCAL_VM"; echo oops >&2; exit 7')
    assert result.exit_status == 7
    vm_home, vm_tmp = directory / "root", directory / "tmp"
    assert result.stdout == f"{vm_home}|{vm_tmp}|{vm_home}|{vm_id}\n"
    assert result.stderr == "oops\n"
    assert (await shell.run("cat", stdin="from stdin")).stdout == "from stdin"
    assert (await shell.run("command -v bash tmux")).ok  # the operator's PATH
    environment = (await shell.run("env")).stdout
    assert "operator-secret" not in environment  # the operator's environment stays outside

    assert await provider.find(request("uid-1")) == vm_id
    assert await provider.find(request("uid-2")) is None
    # An operator restart loses nothing: a new provider on the same root knows the VM.
    again = LocalProvider(provider.root)
    assert await again.find(request("uid-1")) == vm_id
    assert (await again.observe(vm_id)).state == "running"


async def test_pause_stops_processes_and_resume_continues_them(provider: LocalProvider) -> None:
    vm_id = await provider.create(request())
    shell = await provider.shell(vm_id)
    await start_counter(shell)
    count, pid_file = home(provider, vm_id) / "count", home(provider, vm_id) / "count.pid"
    await eventually(lambda: read_int(count) > 2)
    pid = read_int(pid_file)

    await provider.pause(vm_id)
    await provider.pause(vm_id)  # idempotent
    assert (await provider.observe(vm_id)).state == "paused"
    assert state(pid) == "T"
    assert not await advances(count)
    with pytest.raises(ShellError, match=f"VM {vm_id} is paused"):
        await shell.run("true")
    with pytest.raises(ShellError, match="paused"):
        await shell.stream("true")

    await provider.resume(vm_id)
    await provider.resume(vm_id)  # idempotent
    assert (await provider.observe(vm_id)).state == "running"
    assert await advances(count)
    assert read_int(pid_file) == pid  # the same process, continued
    assert (await shell.run("echo back")).stdout == "back\n"


async def test_a_second_provider_over_the_root_waits_for_the_vm_lock(
        provider: LocalProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    """`kubectl reef exec` builds its own provider over the operator's root: its command
    waits while the operator's resume holds the VM, and then finds the VM running.
    Without a lock across the two, it would find the VM still marked paused."""
    vm_id = await provider.create(request())
    await provider.pause(vm_id)
    resuming, finish_resume, exec_waits = threading.Event(), threading.Event(), threading.Event()
    continue_all, wait_for_lock = processes.continue_all, filelock._wait

    def held_continue_all(*args: Any) -> None:  # runs in a thread, under the operator's lock
        resuming.set()
        finish_resume.wait()
        continue_all(*args)

    def noted_wait(descriptor: int) -> None:  # runs in a thread when the lock is taken
        exec_waits.set()
        wait_for_lock(descriptor)

    monkeypatch.setattr(processes, "continue_all", held_continue_all)
    monkeypatch.setattr(filelock, "_wait", noted_wait)
    resume = asyncio.create_task(provider.resume(vm_id))
    try:
        assert await asyncio.to_thread(resuming.wait, 10)
        plugin = LocalProvider(provider.root)
        command = asyncio.create_task((await plugin.shell(vm_id)).run("echo ran"))
        waiting = asyncio.create_task(asyncio.to_thread(exec_waits.wait, 10))
        await asyncio.wait({command, waiting}, return_when=asyncio.FIRST_COMPLETED)
        assert not command.done(), "the command ran while the operator's resume held the VM"
        assert exec_waits.is_set()
    finally:
        finish_resume.set()
        await resume
    assert (await command).stdout == "ran\n"


async def test_a_fork_in_flight_does_not_escape_a_pause(provider: LocalProvider) -> None:
    vm_id = await provider.create(request())
    shell = await provider.shell(vm_id)
    # A process that forks all the time: a pause must catch every child.
    await shell.run("setsid nohup bash -c 'while :; do sleep 0.5 & sleep 0.002; done' "
                    ">/dev/null 2>&1 </dev/null &")
    await eventually(lambda: len(processes.scan(vm_id)) > 20)
    await provider.pause(vm_id)
    frozen = processes.scan(vm_id)
    assert all(process.state == "T" for process in frozen.values()), frozen
    await asyncio.sleep(0.3)
    assert set(processes.scan(vm_id)) == set(frozen)  # nothing new was born
    await provider.delete(vm_id)
    assert processes.scan(vm_id) == {}


async def test_tmux_server_and_its_panes_are_paused_and_killed_with_the_vm(
        provider: LocalProvider) -> None:
    vm_id = await provider.create(request())
    shell = await provider.shell(vm_id)
    tmux = 'tmux -S "$TMPDIR/tmux.sock"'
    started = await shell.run(
        f"{tmux} new-session -d -s agent '{COUNTER.format(name='count')}' && "
        # An interactive shell in a pane with a foreground job, as a person would
        # leave it: a job-control shell that saw its job stop would take the
        # terminal back, leaving the job stopped in the background after resume.
        f"{tmux} new-window -d -t agent 'bash --norc --noprofile -i' && "
        f"{tmux} send-keys -t agent:1 'sleep 600' Enter && "
        f"{tmux} display -p -t agent:0 '#{{pid}} #{{pane_pid}}'")
    assert started.ok, started.stderr
    server, pane = (int(word) for word in started.stdout.split())
    count = home(provider, vm_id) / "count"

    async def foreground() -> str:
        shown = await shell.run(f"{tmux} display -p -t agent:1 '#{{pane_current_command}}'")
        return shown.stdout.strip()

    await eventually(lambda: read_int(count) > 2)
    for _ in range(50):
        if await foreground() == "sleep":
            break
        await asyncio.sleep(0.05)
    assert await foreground() == "sleep"
    assert set(processes.scan(vm_id)) >= {server, pane}  # they carry the VM's marker

    for _ in range(3):  # each cycle is a fresh chance for the shell to see its job stop
        await provider.pause(vm_id)
        assert (state(server), state(pane)) == ("T", "T")
        assert not await advances(count)
        await provider.resume(vm_id)
        assert await advances(count)
        assert await foreground() == "sleep"  # the job still holds the terminal

    await provider.delete(vm_id)
    assert (state(server), state(pane)) == ("gone", "gone")
    assert not (provider.root / vm_id).exists()


async def test_two_vms_have_their_own_home_tmpdir_and_tmux(provider: LocalProvider) -> None:
    first, second = [await provider.create(request(owner)) for owner in ("a", "b")]
    one, two = await provider.shell(first), await provider.shell(second)
    paths = [(await shell.run('echo "$HOME $TMPDIR"')).stdout.split() for shell in (one, two)]
    assert paths[0][0] != paths[1][0] and paths[0][1] != paths[1][1]
    await one.run('echo mine > "$TMPDIR/note"; echo mine > "$HOME/note"')
    assert (await two.run('cat "$TMPDIR/note" "$HOME/note"')).exit_status != 0
    # tmux's default socket lives in the VM's TMPDIR: one server per VM.
    for shell in (one, two):
        assert (await shell.run("tmux new-session -d -s main 'sleep 600'")).ok
    for shell in (one, two):
        assert (await shell.run("tmux ls -F '#{session_name}'")).stdout == "main\n"
    await provider.pause(first)
    assert (await two.run("echo still here")).ok  # pausing one VM leaves the other alone
    assert await provider.find(request("b")) == second


async def test_snapshot_and_create_from_it(provider: LocalProvider) -> None:
    vm_id = await provider.create(request("original"))
    shell = await provider.shell(vm_id)
    await shell.run('echo v1 > "$HOME/workspace/file"; mkfifo "$HOME/fifo"; '
                    'ln -s workspace/file "$HOME/link"')
    await start_counter(shell)
    count = home(provider, vm_id) / "count"
    await eventually(lambda: read_int(count) > 0)

    snapshot_id = await provider.snapshot(vm_id)
    assert is_id(snapshot_id)
    assert await advances(count)  # frozen for the copy only
    assert (await provider.observe(vm_id)).state == "running"
    await shell.run('echo v2 > "$HOME/workspace/file"')

    copy = await provider.create(request("copy", commit_id=snapshot_id))
    copied = home(provider, copy)
    assert (copied / "workspace" / "file").read_text() == "v1\n"
    assert (copied / "link").resolve() == copied / "workspace" / "file"
    assert not (copied / "fifo").exists()  # FIFOs are not copied
    meta = json.loads((provider.root / copy / "meta.json").read_text())
    assert meta["source_snapshot"] == snapshot_id
    copy_shell = await provider.shell(copy)
    await copy_shell.run('echo v3 > "$HOME/workspace/file"')
    assert (home(provider, vm_id) / "workspace" / "file").read_text() == "v2\n"
    third = await provider.create(request("third", commit_id=snapshot_id))
    assert (home(provider, third) / "workspace" / "file").read_text() == "v1\n"

    # A paused VM is copied as it is and stays paused.
    await provider.pause(vm_id)
    await provider.snapshot(vm_id)
    assert (await provider.observe(vm_id)).state == "paused"
    assert not await advances(count)

    await provider.delete_snapshot(snapshot_id)
    await provider.delete_snapshot(snapshot_id)  # a missing snapshot is fine
    with pytest.raises(NotFound):
        await provider.create(request("late", commit_id=snapshot_id))
    with pytest.raises(NotFound):
        await provider.create(request("sneaky", commit_id="../" + vm_id))


async def test_a_snapshot_interrupted_by_a_crash_is_undone_after_restart(
        provider: LocalProvider) -> None:
    vm_id = await provider.create(request())
    await start_counter(await provider.shell(vm_id))
    count = home(provider, vm_id) / "count"
    await eventually(lambda: read_int(count) > 0)
    # What a crash in the middle of `snapshot` leaves: the mark and stopped processes.
    meta_file = provider.root / vm_id / "meta.json"
    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps({**meta, "frozen_for_snapshot": True}))
    processes.stop_all(vm_id)
    assert not await advances(count)

    restarted = LocalProvider(provider.root)
    assert (await (await restarted.shell(vm_id)).run("echo hi")).stdout == "hi\n"
    assert await advances(count)
    assert json.loads(meta_file.read_text())["frozen_for_snapshot"] is False


async def test_delete_kills_everything_and_removes_the_directory(
        provider: LocalProvider) -> None:
    vm_id = await provider.create(request())
    shell = await provider.shell(vm_id)
    await start_counter(shell)
    await shell.run("tmux new-session -d 'sleep 600'")
    await eventually(lambda: read_int(home(provider, vm_id) / "count.pid") > 0)
    pids = set(processes.scan(vm_id))
    assert len(pids) >= 3  # the counter, its sleep, the tmux server and its pane

    await provider.pause(vm_id)  # a paused VM is deleted without resuming it
    await provider.delete(vm_id)
    assert {state(pid) for pid in pids} == {"gone"}
    assert processes.scan(vm_id) == {}
    assert not (provider.root / vm_id).exists()
    assert (await provider.observe(vm_id)).state == "gone"
    await provider.delete(vm_id)  # deleting again is fine
    assert await provider.find(request()) is None
    with pytest.raises(NotFound):
        await shell.run("true")
    with pytest.raises(NotFound):
        await provider.shell(vm_id)
    with pytest.raises(NotFound):
        await provider.pause(vm_id)
    with pytest.raises(NotFound):
        await provider.snapshot(vm_id)


async def test_ids_that_are_not_uuids_name_nothing(provider: LocalProvider) -> None:
    (provider.root / "keep").mkdir()
    for bogus in ("..", "../keep", "keep", ""):
        assert (await provider.observe(bogus)).state == "gone"
        await provider.delete(bogus)
        await provider.delete_snapshot(bogus)
        with pytest.raises(NotFound):
            await provider.shell(bogus)
    assert (provider.root / "keep").is_dir()


async def test_stream_reads_output_as_it_comes(provider: LocalProvider) -> None:
    vm_id = await provider.create(request())
    shell = await provider.shell(vm_id)
    stream = await shell.stream("for i in 1 2 3; do echo $i; sleep 0.1; done")
    chunks: list[tuple[float, bytes]] = []
    started = time.monotonic()
    while chunk := await stream.read(1024):
        chunks.append((time.monotonic() - started, chunk))
    stream.close()
    assert b"".join(chunk for _, chunk in chunks) == b"1\n2\n3\n"
    assert chunks[0][1] == b"1\n"
    assert chunks[-1][0] - chunks[0][0] >= 0.15  # the first line came long before the last

    # close() kills a command that would run on.
    endless = await shell.stream("echo $$; exec sleep 600")
    pid = int((await endless.read(64)).decode())
    endless.close()
    await eventually(lambda: state(pid) == "gone")
    assert await endless.read(64) == b""


async def test_a_command_that_outlives_its_time_is_killed(provider: LocalProvider) -> None:
    vm_id = await provider.create(request())
    shell = await provider.shell(vm_id)
    with pytest.raises(ShellError, match="timed out"):
        await shell.run("sleep 30 & sleep 30", within=0.2)
    assert processes.scan(vm_id) == {}  # the command and what it started
    assert (await shell.run("echo fine")).stdout == "fine\n"


async def test_tags_and_refs_are_refused(provider: LocalProvider) -> None:
    message = r"the Local provider boots from its own snapshots \(commitId\) only"
    with pytest.raises(BadRequest, match=message):
        await provider.create(request(tag="golden"))
    with pytest.raises(BadRequest, match=message):
        await provider.create(request(ref="main"))
    assert os.listdir(provider.root) == []


async def test_a_vm_and_its_snapshots_say_whose_they_are(provider: LocalProvider) -> None:
    vm_id = await provider.create(request("uid-owner"))
    assert (await provider.observe(vm_id)).owner == VmOwner("default", "uid-owner")
    snapshot_id = await provider.snapshot(vm_id)
    assert await provider.snapshot_owner(snapshot_id) == VmOwner("default", "uid-owner")
    assert await provider.snapshot_owner(new_id()) is None

    adopter = VmRequest(owner_uid="uid-adopter", name="adopter", namespace="team")
    await provider.claim(vm_id, adopter)
    assert (await provider.observe(vm_id)).owner == VmOwner("team", "uid-adopter")
    assert await provider.snapshot_owner(snapshot_id) == VmOwner("default", "uid-owner")
