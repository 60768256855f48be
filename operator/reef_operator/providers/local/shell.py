"""Commands on a Local VM: ordinary local processes carrying the VM's marker and paths."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import signal
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from reef_operator.providers.base import CommandResult
from reef_operator.providers.errors import ShellError
from reef_operator.providers.local.layout import VmDirectory
from reef_operator.providers.local.processes import MARKER
from reef_operator.providers.output import bounded

ENDPOINT = "local"

# Entered around starting a command: checks (under the VM's lock) that the VM
# exists and runs, so a pause cannot slip in between the check and the start.
Admission = Callable[[], AbstractAsyncContextManager[VmDirectory]]


def environment(vm: VmDirectory) -> dict[str, str]:
    """The environment of every process the VM's shell starts.

    Built from scratch rather than inherited: the operator's own environment
    holds its credentials (kubeconfig, API keys), which a VM must not see. PATH
    is the operator's, so the host's tools (bash, tmux, node, pi) are found.
    """
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a uid without a passwd entry (containers)
        user = str(os.getuid())
    return {
        MARKER: vm.vm_id,
        "HOME": str(vm.home),
        "TMPDIR": str(vm.tmp),
        # tmux puts its default socket under TMUX_TMPDIR (not TMPDIR): without
        # this, two VMs' `tmux` would share one server in /tmp.
        "TMUX_TMPDIR": str(vm.tmp),
        "PATH": os.environ.get("PATH") or os.defpath,
        "USER": user,
        "LOGNAME": user,
        "SHELL": "/bin/bash",
        "LANG": os.environ.get("LANG") or "C.UTF-8",
    }


class LocalShell:
    """A `Shell` on a Local VM: `bash -c` in the VM's HOME with the VM's environment.

    Commands run as the operator's user (the `Shell` protocol's "as root" holds
    only where the operator is root). Each command gets its own session and
    process group, so a timeout kills the command with everything it started in
    the foreground, and no terminal signal of the operator reaches the VM.
    """

    def __init__(self, vm_id: str, admit: Admission) -> None:
        self.vm_id = vm_id
        self._admit = admit

    @property
    def host_key_fingerprint(self) -> str:
        return ""  # a local process has no endpoint to pin

    async def run(self, command: str, *, stdin: str | None = None,
                  within: float | None = 60.0) -> CommandResult:
        """Run a command; a non-zero exit is a result. Raises ShellError on a timeout
        or a paused VM and NotFound on a missing one, as the Vers shell would."""
        async with self._admit() as vm:
            process = await self._start(vm, command, stdin=stdin is not None)
        try:
            stdout, stderr = await asyncio.wait_for(_collect(process, stdin), within)
        except TimeoutError:
            raise ShellError(f"command timed out after {within}s on VM {self.vm_id}",
                             endpoint=ENDPOINT) from None
        finally:
            # Reached on success too, where it is harmless: the group is gone or
            # holds only background jobs that would outlive the command over SSH.
            if process.returncode is None:
                _kill_group(process)
                await process.wait()
        status = process.returncode
        assert status is not None  # _collect() returns once the process has exited
        return CommandResult(
            # Killed by a signal: the shell's convention, 128 + the signal's number.
            exit_status=status if status >= 0 else 128 - status,
            stdout=stdout, stderr=stderr)

    async def stream(self, command: str) -> LocalStream:
        """Start a long-running command whose stdout is read as it comes (stderr is dropped)."""
        async with self._admit() as vm:
            process = await self._start(vm, command, stdin=False, stderr=False)
        return LocalStream(process)

    async def _start(self, vm: VmDirectory, command: str, *, stdin: bool,
                     stderr: bool = True) -> asyncio.subprocess.Process:
        try:
            return await asyncio.create_subprocess_exec(
                "bash", "-c", command, cwd=vm.home, env=environment(vm),
                stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE if stderr else asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as error:
            raise ShellError(f"cannot start a process on VM {self.vm_id}: {error}",
                             endpoint=ENDPOINT) from None


async def _collect(process: asyncio.subprocess.Process, stdin: str | None
                   ) -> tuple[str, str]:
    """stdout and stderr, each bounded, while stdin is written; then the exit."""
    assert process.stdout is not None and process.stderr is not None

    async def feed() -> None:
        if process.stdin is None:
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            process.stdin.write((stdin or "").encode())
            await process.stdin.drain()
        process.stdin.close()

    stdout, stderr, _ = await asyncio.gather(bounded(process.stdout), bounded(process.stderr),
                                             feed())
    await process.wait()
    return stdout, stderr


class LocalStream:
    """stdout of a local process, read in chunks; `close()` kills it."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process

    async def read(self, size: int) -> bytes:
        assert self._process.stdout is not None
        return await self._process.stdout.read(size)

    def close(self) -> None:
        # The event loop reaps the process and closes its pipes once it is dead.
        if self._process.returncode is None:
            _kill_group(self._process)

    async def wait_closed(self) -> None:
        await self._process.wait()


def _kill_group(process: asyncio.subprocess.Process) -> None:
    # start_new_session made the process the leader of its own group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
