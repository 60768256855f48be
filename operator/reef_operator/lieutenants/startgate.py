"""A bound on agent starts in flight, so a thousand new lieutenants start in waves."""

from __future__ import annotations

import asyncio


class StartGate:
    """At most `limit` lieutenants starting (or re-attaching to) pi at once.

    A start is a handful of SSH commands and pi loading on the VM; it ends when pi
    answers the handshake. The counts are for the metrics.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._slots = asyncio.Semaphore(limit)
        self.waiting = 0
        self.starting = 0

    async def enter(self) -> None:
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.starting += 1

    def leave(self) -> None:
        self.starting -= 1
        self._slots.release()
