"""The platform's one TLS port: each connection is routed by SNI to its VM's sshd.

`<vm_id>.vm.<domain>` → that VM's sshd; an unknown or deleted VM gets the
connection closed. A paused VM's sshd is frozen, so its connections hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from pathlib import Path

from reef_devkit.versim.platform import Platform

logger = logging.getLogger(__name__)


class SniRouter:
    def __init__(self, platform: Platform, domain: str, cert: Path, key: Path) -> None:
        self.platform = platform
        self.suffix = f".vm.{domain}"
        self._names: dict[int, str] = {}
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.context.sni_callback = self._remember_name
        self._server: asyncio.Server | None = None

    def _remember_name(self, ssl_object: ssl.SSLObject, name: str | None,
                       _context: ssl.SSLContext) -> None:
        self._names[id(ssl_object)] = name or ""

    async def start(self, port: int) -> None:
        self._server = await asyncio.start_server(self._route, "127.0.0.1", port,
                                                  ssl=self.context, ssl_handshake_timeout=15)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _route(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ssl_object = writer.get_extra_info("ssl_object")
        name = self._names.pop(id(ssl_object), "")
        vm_id = name[: -len(self.suffix)] if name.endswith(self.suffix) else ""
        vm = self.platform.vms.get(vm_id)
        if vm is None or vm.deleted_at is not None or vm.state == "dead":
            logger.info("no VM behind SNI %r: closing", name)
            writer.close()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", vm.sandbox.port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()
