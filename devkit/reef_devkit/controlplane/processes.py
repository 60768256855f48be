"""Daemon processes recorded by pid file: start detached, check, stop for good."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path


def start_daemon(argv: list[str], pid_file: Path, log_file: Path, env: dict[str, str]) -> int:
    """Start `argv` in its own session so it outlives the caller; record its pid."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            close_fds=True,
        )
    pid_file.write_text(f"{process.pid}\n{argv[0]}\n")
    # The Popen object is dropped on purpose: the daemon belongs to the pid file now.
    process.returncode = 0
    return process.pid


def running_pid(pid_file: Path) -> int | None:
    """The pid recorded in `pid_file` if that process still runs the recorded binary."""
    try:
        pid_text, binary = pid_file.read_text().splitlines()[:2]
        pid = int(pid_text)
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid, binary) else None


def stop_daemon(pid_file: Path, grace_seconds: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after the grace period; returns once the process is gone."""
    pid = running_pid(pid_file)
    if pid is not None:
        binary = pid_file.read_text().splitlines()[1]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        while _alive(pid, binary) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid, binary):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            while _alive(pid, binary):
                time.sleep(0.05)
    pid_file.unlink(missing_ok=True)


def _alive(pid: int, binary: str) -> bool:
    # Reap it if it happens to be our child (tests start daemons in-process).
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    if state in ("Z", "X"):
        return False
    # An empty command line means exec() is still setting up the new image (a
    # window right after Popen returns); otherwise guard against pid reuse.
    return not cmdline or cmdline.split(b"\0", 1)[0] == binary.encode()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_listening(port: int) -> bool:
    """Whether any process listens on TCP `port` (read from /proc, so TIME_WAIT doesn't count)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                local, state = fields[1], fields[3]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    return True
    return False


def log_tail(log_file: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log_file.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
