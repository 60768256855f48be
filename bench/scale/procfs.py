"""What processes on this machine use, from /proc: the operator's peak memory and CPU,
and the simulated VMs' memory (PSS) and CPU."""

from __future__ import annotations

import os
from pathlib import Path


def usage(pid: int) -> tuple[float, float]:
    """(peak RSS in MiB, CPU seconds) of one process."""
    status = Path(f"/proc/{pid}/status").read_text()
    peak_kib = next(int(line.split()[1]) for line in status.splitlines()
                    if line.startswith("VmHWM:"))
    return peak_kib / 1024, _cpu_seconds(_stat_fields(pid), children=False)


def simulated_vms_usage(state_dir: Path) -> tuple[int, float]:
    """(PSS bytes, CPU seconds) of every process below the simulator whose state is in
    `state_dir`: its VMs' sshd (and pi, tmux, node on a lieutenant's VM). PSS, not RSS,
    because the VMs share the sshd and node binaries; CPU with what their exited children
    used (an SSH command's, say)."""
    children: dict[int, list[int]] = {}
    for pid in (int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()):
        fields = _stat_fields(pid)
        if fields:
            children.setdefault(int(fields[1]), []).append(pid)
    marker = str(state_dir).encode()
    simulators = [pid for pid in children.get(os.getpid(), []) if marker in _cmdline(pid)]
    pending = [pid for simulator in simulators for pid in children.get(simulator, [])]
    pss, cpu = 0, 0.0
    while pending:
        pid = pending.pop()
        pss += _pss_bytes(pid)
        cpu += _cpu_seconds(_stat_fields(pid), children=True)
        pending.extend(children.get(pid, []))
    return pss, cpu


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the command name: [0] state, [1] ppid, [11:15] CPU ticks
    (utime, stime, cutime, cstime); empty if the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return text[text.rfind(")") + 2:].split()


def _cpu_seconds(fields: list[str], *, children: bool) -> float:
    if not fields:
        return 0.0
    ticks = fields[11:15] if children else fields[11:13]
    return sum(int(t) for t in ticks) / os.sysconf("SC_CLK_TCK")


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _pss_bytes(pid: int) -> int:
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) * 1024 for line in rollup.splitlines()
                 if line.startswith("Pss:")), 0)
