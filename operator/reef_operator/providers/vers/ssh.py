"""SSH to Vers VMs: SSH inside TLS on port 443, routed by SNI, host key pinned on first use.

One multiplexed connection per VM is kept and reused by every command; a
dropped connection is replaced on the next use. A global bound on how many
commands run at once across all VMs is shared by namespace in turn
(`fairshare`), so one namespace's many VMs do not crowd out another's one.

This is the boundary of the shells the Vers provider hands out: asyncssh's and
the socket's errors leave it as the provider errors `ShellError` and
`HostKeyMismatch`. Errors of the key source (the platform API) pass through
unchanged; `VersProvider.shell` converts those.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import contextlib
import logging
import math
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import asyncssh

from reef_operator.fairshare import FairSlots
from reef_operator.providers.base import CommandResult
from reef_operator.providers.errors import HostKeyMismatch, ShellError
from reef_operator.providers.output import bounded
from reef_operator.secret import Secret

logger = logging.getLogger(__name__)

KeySource = Callable[[str], Awaitable[Secret]]


@dataclass(frozen=True)
class SshSettings:
    """How VMs are reached. `vm_domain` is what follows the VM id in the host name."""

    vm_domain: str = "vm.vers.sh"
    port: int = 443
    # Where to open the TCP connection; default: the VM's own host name. The
    # simulator (and a port-forward) use 127.0.0.1 while SNI keeps the VM name.
    connect_host: str | None = None
    # The platform's TLS certificate is not verifiable by any client seen; the
    # pinned SSH host key authenticates the VM. True or a CA bundle turns it on.
    tls_verify: bool | Path = False
    connect_timeout: float = 20.0
    keepalive_interval: float = 15.0
    keepalive_count_max: int = 3
    max_concurrent_commands: int = 32

    def host_name(self, vm_id: str) -> str:
        return f"{vm_id}.{self.vm_domain}"

    def tls_context(self) -> ssl.SSLContext:
        if self.tls_verify is False:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        if self.tls_verify is True:
            return ssl.create_default_context()
        return ssl.create_default_context(cafile=str(self.tls_verify))


class _LeanTlsProtocol(asyncio.sslproto.SSLProtocol):
    """asyncio's TLS protocol reading into 16 KiB (a TLS record's largest plaintext) instead
    of 256 KiB. The operator keeps one connection per VM, and the stock buffer alone held
    ≈240 KiB resident per connection: half the operator's memory at 1000 VMs."""

    max_size = 16 * 1024


class _TlsTunnel:
    """What asyncssh calls to open its transport: a TLS connection with the VM's SNI."""

    def __init__(self, address: str, port: int, context: ssl.SSLContext, server_name: str,
                 timeout: float) -> None:
        self._address, self._port = address, port
        self._context, self._server_name = context, server_name
        self._timeout = timeout

    async def create_connection(self, session_factory: Callable[[], Any], _host: str,
                                _port: int) -> tuple[asyncio.BaseTransport, Any]:
        # What loop.create_connection(ssl=...) does, with the lean protocol in its place.
        loop = asyncio.get_running_loop()
        session = session_factory()
        handshake: asyncio.Future[None] = loop.create_future()
        tls = _LeanTlsProtocol(loop, session, self._context, handshake,
                               server_hostname=self._server_name,
                               ssl_handshake_timeout=math.ceil(self._timeout))
        transport, _ = await loop.create_connection(lambda: tls, self._address, self._port)
        try:
            await handshake
        except BaseException:
            transport.close()
            raise
        app_transport: asyncio.BaseTransport = cast(Any, tls)._get_app_transport()
        return app_transport, session


class _PinningClient(asyncssh.SSHClient):
    """Accepts the host key the caller pinned, or any key when nothing is pinned yet."""

    def __init__(self, vm_id: str, pinned: str | None) -> None:
        self.vm_id = vm_id
        self.pinned = pinned
        self.seen: str | None = None
        self.mismatch: str | None = None
        self.lost = asyncio.Event()

    def validate_host_public_key(self, host: str, addr: str, port: int,
                                 key: asyncssh.SSHKey) -> bool:
        self.seen = key.get_fingerprint("sha256")
        if self.pinned is not None and self.seen != self.pinned:
            self.mismatch = self.seen
            return False
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set()


class VmShell:
    """One live SSH connection to one VM."""

    def __init__(self, vm_id: str, connection: asyncssh.SSHClientConnection,
                 client: _PinningClient, limit: FairSlots) -> None:
        self.vm_id = vm_id
        self.host_key_fingerprint = client.seen or ""
        self._connection = connection
        self._client = client
        self._limit = limit

    @property
    def closed(self) -> bool:
        return self._client.lost.is_set()

    async def run(self, command: str, *, stdin: str | None = None,
                  within: float | None = 60.0) -> CommandResult:
        """Run a shell command; a non-zero exit is a result, not an exception."""
        async with self._limit.slot():
            try:
                status, stdout, stderr = await asyncio.wait_for(
                    self._collect(command, stdin), within)
            except TimeoutError:
                raise ShellError(f"command timed out after {within}s on VM {self.vm_id}",
                                 endpoint="ssh") from None
            except (asyncssh.Error, OSError) as error:
                raise ShellError(f"command failed on VM {self.vm_id}: {_reason(error)}",
                                 endpoint="ssh") from None
        return CommandResult(exit_status=status if status is not None else 255,
                             stdout=stdout, stderr=stderr)

    async def _collect(self, command: str, stdin: str | None) -> tuple[int | None, str, str]:
        """The exit status and the bounded stdout and stderr (providers/output.py)."""
        process = await self._connection.create_process(command, encoding=None)
        try:
            if stdin:
                process.stdin.write(stdin.encode())
            # Empty input must still close stdin, or `cat > file` waits forever.
            process.stdin.write_eof()
            stdout, stderr = await asyncio.gather(bounded(process.stdout),
                                                  bounded(process.stderr))
            await process.wait_closed()
            return process.exit_status, stdout, stderr
        finally:
            process.close()

    async def stream(self, command: str) -> SshStream:
        """A long-running command (e.g. following a file) whose stdout is read as it comes."""
        try:
            process = await self._connection.create_process(command, encoding=None)
        except (asyncssh.Error, OSError) as error:
            raise ShellError(f"cannot start a process on VM {self.vm_id}: {_reason(error)}",
                             endpoint="ssh") from None
        return SshStream(process)

    def close(self) -> None:
        self._connection.close()


class SshStream:
    """stdout of a remote process, read in chunks."""

    def __init__(self, process: asyncssh.SSHClientProcess[bytes]) -> None:
        self._process = process

    async def read(self, size: int) -> bytes:
        try:
            return await self._process.stdout.read(size)
        except (asyncssh.Error, OSError) as error:
            raise ShellError(f"stream broke: {_reason(error)}", endpoint="ssh") from None

    def close(self) -> None:
        self._process.close()

    async def wait_closed(self) -> None:
        with contextlib.suppress(asyncssh.Error, OSError):
            await self._process.wait_closed()


class VersConnector:
    """Keeps one connection per VM; `shell()` returns it, reconnecting if it dropped."""

    def __init__(self, settings: SshSettings, key_source: KeySource) -> None:
        self.settings = settings
        self._key_source = key_source
        self._keys: dict[str, asyncssh.SSHKey] = {}
        self._shells: dict[str, VmShell] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._limit = FairSlots(settings.max_concurrent_commands)
        # One TLS context for every VM: each context loads the system's CA store, ≈0.8 MiB
        # and ≈25 ms of CPU, and a connection keeps its context alive as long as it lives.
        self._tls = settings.tls_context()

    async def shell(self, vm_id: str, pinned_fingerprint: str | None = None) -> VmShell:
        """The VM's connection. With `pinned_fingerprint` the host key must match it;
        without, the key seen is accepted and offered as `host_key_fingerprint`
        for the caller to pin."""
        lock = self._locks.setdefault(vm_id, asyncio.Lock())
        async with lock:
            shell = self._shells.get(vm_id)
            if shell is not None and not shell.closed:
                if pinned_fingerprint and shell.host_key_fingerprint != pinned_fingerprint:
                    raise HostKeyMismatch(
                        f"VM {vm_id} presented host key {shell.host_key_fingerprint}, "
                        f"pinned {pinned_fingerprint}", endpoint="ssh")
                return shell
            shell = await self._connect(vm_id, pinned_fingerprint)
            self._shells[vm_id] = shell
            return shell

    async def run(self, vm_id: str, command: str, *, pinned_fingerprint: str | None = None,
                  stdin: str | None = None, within: float | None = 60.0) -> CommandResult:
        """Run a command, reconnecting once if the pooled connection turns out dead."""
        shell = await self.shell(vm_id, pinned_fingerprint)
        try:
            return await shell.run(command, stdin=stdin, within=within)
        except ShellError:
            if not shell.closed:
                raise
        shell = await self.shell(vm_id, pinned_fingerprint)
        return await shell.run(command, stdin=stdin, within=within)

    def forget(self, vm_id: str) -> None:
        """Drop the VM's connection and key (it was deleted, or its key changed)."""
        shell = self._shells.pop(vm_id, None)
        if shell is not None:
            shell.close()
        self._keys.pop(vm_id, None)

    async def close(self) -> None:
        for vm_id in list(self._shells):
            self.forget(vm_id)

    async def _connect(self, vm_id: str, pinned: str | None) -> VmShell:
        key = self._keys.get(vm_id)
        if key is None:
            key = asyncssh.import_private_key((await self._key_source(vm_id)).reveal())
            self._keys[vm_id] = key
        settings = self.settings
        host = settings.host_name(vm_id)
        tunnel = _TlsTunnel(settings.connect_host or host, settings.port, self._tls, host,
                            settings.connect_timeout)
        client = _PinningClient(vm_id, pinned)
        try:
            connection = await asyncio.wait_for(asyncssh.connect(
                host, settings.port, tunnel=tunnel, username="root", client_keys=[key],
                known_hosts=lambda *_: ([], [], []), client_factory=lambda: client,
                agent_path=None, config=(), preferred_auth="publickey",
                keepalive_interval=settings.keepalive_interval,
                keepalive_count_max=settings.keepalive_count_max,
            ), settings.connect_timeout)
        except (asyncssh.Error, OSError, TimeoutError) as error:
            if client.mismatch is not None:
                raise HostKeyMismatch(
                    f"VM {vm_id} presented host key {client.mismatch}, pinned {pinned}: "
                    "refusing to connect", endpoint="ssh") from None
            raise ShellError(f"cannot reach VM {vm_id} over SSH: {_reason(error)}",
                             endpoint="ssh") from None
        logger.debug("connected to VM %s (host key %s)", vm_id, client.seen)
        return VmShell(vm_id, connection, client, self._limit)


def _reason(error: BaseException) -> str:
    if isinstance(error, TimeoutError | asyncio.TimeoutError):
        return "timed out"
    text = str(error) or type(error).__name__
    return text.splitlines()[0][:300]


with contextlib.suppress(Exception):  # keep asyncssh's own logging quiet by default
    asyncssh.set_log_level(logging.WARNING)
