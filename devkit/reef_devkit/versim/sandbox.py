"""One simulated VM: a real sshd in its own mount and PID namespace, frozen by a cgroup.

Layout of a VM directory:
    root/   bind-mounted over /root inside the VM (its private home and workspace)
    tmp/    bind-mounted over /tmp inside the VM (two VMs' /tmp/pi-rpc never collide)
    etc/    sshd_config, the VM's host key, authorized_keys (the VM's client key)
Host binaries (tmux, node, pi, bash) are visible as on a golden image.

Pause freezes every process of the VM with the cgroup freezer, so processes
keep their memory and pids, and an SSH connection to a paused VM hangs as on
a frozen microVM. Delete kills the whole PID namespace and removes the files.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
from pathlib import Path

import asyncssh

from reef_devkit.controlplane.processes import free_port, port_listening
from reef_operator.providers.local.copying import copy_tree

SSHD = "/usr/sbin/sshd"
PR_SET_PDEATHSIG = 1

# Runs as PID 1 of the new namespaces until it execs sshd (which then reaps orphans).
_INIT = r"""
set -e
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/versim /run/sshd
mount --bind "$1" /run/versim
mount --bind /run/versim/root /root
mount --bind /run/versim/tmp /tmp
cd /root
exec {sshd} -D -e -f /run/versim/etc/sshd_config
"""

_SSHD_CONFIG = """\
ListenAddress 127.0.0.1:{port}
HostKey /run/versim/etc/host_key
AuthorizedKeysFile /run/versim/etc/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
PrintMotd no
ClientAliveInterval 0
MaxSessions 64
MaxStartups 64:30:128
Subsystem sftp internal-sftp
"""


class SandboxError(RuntimeError):
    pass


class Freezer:
    """A freezer cgroup (v1 `freezer.state` or v2 `cgroup.freeze`) for one VM."""

    def __init__(self, group: str) -> None:
        v1 = Path("/sys/fs/cgroup/freezer")
        v2 = Path("/sys/fs/cgroup")
        if (v1 / "freezer.state").exists() or (v1 / "cgroup.procs").exists():
            self.path, self.v2 = v1 / group, False
        elif (v2 / "cgroup.controllers").exists():
            self.path, self.v2 = v2 / group, True
        else:
            raise SandboxError("no cgroup freezer on this machine (need cgroup v1 freezer or "
                               "cgroup v2); the Vers simulator cannot pause VMs without it")

    def create(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)

    @property
    def procs_file(self) -> Path:
        return self.path / "cgroup.procs"

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in self.procs_file.read_text().split()]
        except FileNotFoundError:
            return []

    def freeze(self) -> None:
        self._set(True)

    def thaw(self) -> None:
        self._set(False)

    def frozen(self) -> bool:
        if self.v2:
            return (self.path / "cgroup.freeze").read_text().strip() == "1"
        return (self.path / "freezer.state").read_text().strip() == "FROZEN"

    def _set(self, frozen: bool) -> None:
        if self.v2:
            (self.path / "cgroup.freeze").write_text("1" if frozen else "0")
        else:
            (self.path / "freezer.state").write_text("FROZEN" if frozen else "THAWED")

    async def wait_settled(self, frozen: bool) -> None:
        """v1 freezing is asynchronous (FREEZING → FROZEN); wait for the end state."""
        if self.v2:
            return
        want = "FROZEN" if frozen else "THAWED"
        for _ in range(200):
            if (self.path / "freezer.state").read_text().strip() == want:
                return
            await asyncio.sleep(0.01)

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError, OSError):
            self.path.rmdir()


class Sandbox:
    """The processes and files of one simulated VM."""

    def __init__(self, directory: Path, cgroup: str) -> None:
        self.directory = directory
        self.freezer = Freezer(cgroup)
        self.port = 0
        self._process: asyncio.subprocess.Process | None = None

    @property
    def root(self) -> Path:
        return self.directory / "root"

    def prepare(self, client_key: asyncssh.SSHKey, host_key: asyncssh.SSHKey,
                root_from: Path | None = None) -> None:
        """Write the VM's files; `root_from` seeds /root from a snapshot."""
        if not os.path.exists(SSHD):
            raise SandboxError(f"{SSHD} not found (apt package openssh-server)")
        etc = self.directory / "etc"
        etc.mkdir(parents=True, exist_ok=True)
        if root_from is not None:
            copy_tree(root_from, self.root)
        self.root.mkdir(exist_ok=True)
        self.root.chmod(0o700)
        tmp = self.directory / "tmp"
        tmp.mkdir(exist_ok=True)
        tmp.chmod(0o1777)
        self.port = free_port()
        host_key.write_private_key(str(etc / "host_key"))
        (etc / "host_key").chmod(0o600)
        (etc / "authorized_keys").write_bytes(client_key.export_public_key("openssh"))
        (etc / "sshd_config").write_text(_SSHD_CONFIG.format(port=self.port))

    async def start(self) -> None:
        self.freezer.create()
        log = (self.directory / "sshd.log").open("ab")
        # The shell joins the VM's cgroup before exec'ing unshare, so every
        # process of the VM is born inside it.
        self._process = await asyncio.create_subprocess_exec(
            "sh", "-c",
            'echo $$ > "$0" && exec unshare --mount --pid --fork --mount-proc '
            '--propagation private --kill-child=SIGKILL sh -c "$1" sandbox "$2"',
            str(self.freezer.procs_file), _INIT.format(sshd=SSHD), str(self.directory),
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
            preexec_fn=_die_with_parent,
        )
        log.close()

    async def wait_listening(self, within: float = 10.0) -> None:
        deadline = asyncio.get_running_loop().time() + within
        while not port_listening(self.port):
            if self._process is not None and self._process.returncode is not None:
                raise SandboxError(f"sshd of {self.directory.name} exited: {self.log_tail()}")
            if asyncio.get_running_loop().time() > deadline:
                raise SandboxError(f"sshd of {self.directory.name} not listening: "
                                   f"{self.log_tail()}")
            await asyncio.sleep(0.02)

    def log_tail(self) -> str:
        try:
            return " | ".join((self.directory / "sshd.log").read_text().splitlines()[-5:])
        except FileNotFoundError:
            return "(no log)"

    async def freeze(self) -> None:
        self.freezer.freeze()
        await self.freezer.wait_settled(True)

    async def thaw(self) -> None:
        self.freezer.thaw()
        await self.freezer.wait_settled(False)

    async def kill(self) -> None:
        """Kill every process of the VM (frozen or not); files stay."""
        for _ in range(100):
            pids = self.freezer.pids()
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                self.freezer.thaw()
            await asyncio.sleep(0.02)
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
            await self._process.wait()
        self.freezer.remove()

    async def destroy(self) -> None:
        await self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
