"""Finding, stopping, continuing and killing the processes of one Local VM.

A process belongs to a VM when its environment holds `REEF_LOCAL_VM=<vm_id>`:
every command a VM's shell starts carries the marker, and children (a tmux
server and its panes, a `setsid nohup` daemon) inherit it. Without root there
are no namespaces or cgroups to group processes by; the marker needs neither.
Its limits: a process that execs with a scrubbed environment (`env -i`, sudo)
leaves the VM, and only processes the operator's uid may read are seen.

All functions here block (they read /proc and sleep briefly); async callers
run them in a thread.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Collection
from dataclasses import dataclass

MARKER = "REEF_LOCAL_VM"
PROC = "/proc"
# States of a process that runs no code: stopped, traced, zombie, dead.
_HALTED = frozenset("TtZXx")


@dataclass(frozen=True)
class Process:
    pid: int
    ppid: int
    state: str

    @property
    def halted(self) -> bool:
        return self.state in _HALTED


def marker(vm_id: str) -> str:
    """The environment entry that ties a process to the VM."""
    return f"{MARKER}={vm_id}"


def scan(vm_id: str) -> dict[int, Process]:
    """The live processes of the VM, by pid.

    A zombie's environment reads empty, so finished processes are not listed
    even while nobody has reaped them. The calling process is never listed:
    the operator must not stop itself should it ever run inside a VM.
    """
    wanted = marker(vm_id).encode()
    own = os.getpid()
    found: dict[int, Process] = {}
    for name in os.listdir(PROC):
        if not name.isdigit() or int(name) == own:
            continue
        try:
            with open(f"{PROC}/{name}/environ", "rb") as file:
                if wanted not in file.read().split(b"\0"):
                    continue
            with open(f"{PROC}/{name}/stat", "rb") as file:
                stat = file.read()
        except OSError:  # exited meanwhile, or another user's process
            continue
        # The command name (in parentheses) may itself hold spaces and ")".
        fields = stat[stat.rfind(b")") + 2:].split()
        found[int(name)] = Process(int(name), int(fields[1]), fields[0].decode())
    return found


def stop_all(vm_id: str, *, within: float = 5.0, poll: float = 0.002) -> set[int]:
    """SIGSTOP every process of the VM; return the pids this call stopped.

    Scans again until a pass finds no process still running, so a child forked
    while its parent was being stopped is stopped too. A process is stopped only
    once its parent (if in the VM) no longer runs: a job-control shell (bash in a
    tmux pane) that saw its foreground job stop would take the terminal back and
    leave the job stopped in the background after `continue_all`. Past `within`
    (a process stuck in uninterruptible sleep) the rest are signalled at once;
    their stop is pending and takes effect when they wake.
    """
    stopped: set[int] = set()
    deadline = time.monotonic() + within
    while True:
        processes = scan(vm_id)
        running = {pid for pid, process in processes.items() if not process.halted}
        if not running:
            return stopped
        late = time.monotonic() > deadline
        for pid in running:
            if (late or processes[pid].ppid not in running) and _signal(pid, signal.SIGSTOP):
                stopped.add(pid)
        if late:
            return stopped
        time.sleep(poll)


def continue_all(vm_id: str, only: Collection[int] | None = None) -> None:
    """SIGCONT the VM's processes (`only` these pids, if given), children first.

    Children go first so that a parent shell, when it runs again, finds its
    job running and not stopped (see `stop_all`). SIGCONT takes effect when
    sent, so the order of sending is the order of continuing.
    """
    processes = scan(vm_id)
    targets = [pid for pid in processes if only is None or pid in only]
    for pid in sorted(targets, key=lambda pid: _depth(pid, processes), reverse=True):
        _signal(pid, signal.SIGCONT)


def kill_all(vm_id: str, *, within: float = 10.0, poll: float = 0.01) -> list[int]:
    """SIGKILL every process of the VM until none is left; return the survivors.

    Kills again on each pass because a process may fork until it dies. Stopped
    processes die of SIGKILL too, so a paused VM needs no resume first.
    Survivors (after `within`) are processes stuck in uninterruptible sleep.
    """
    deadline = time.monotonic() + within
    while True:
        processes = scan(vm_id)
        if not processes:
            return []
        if time.monotonic() > deadline:
            return sorted(processes)
        for pid in processes:
            _signal(pid, signal.SIGKILL)
        time.sleep(poll)


def _depth(pid: int, processes: dict[int, Process]) -> int:
    """How many of the process's ancestors belong to the VM."""
    depth, seen = 0, {pid}
    parent = processes[pid].ppid
    while parent in processes and parent not in seen:
        depth += 1
        seen.add(parent)
        parent = processes[parent].ppid
    return depth


def _signal(pid: int, number: signal.Signals) -> bool:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, number)
        return True
    return False
