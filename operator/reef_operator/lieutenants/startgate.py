"""A bound on agent starts in flight, so a thousand new lieutenants start in waves."""

from __future__ import annotations

from reef_operator.fairshare import FairSlots


class StartGate:
    """At most `limit` lieutenants starting (or re-attaching to) pi at once.

    A start is a handful of SSH commands and pi loading on the VM; it ends when pi
    answers the handshake. Waiting starts take turns by namespace, so a namespace
    starting fifty lieutenants does not hold another namespace's one behind them.
    The counts are for the metrics.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._slots = FairSlots(limit)

    @property
    def waiting(self) -> int:
        return self._slots.waiting

    @property
    def starting(self) -> int:
        return self._slots.held

    async def enter(self, namespace: str) -> None:
        await self._slots.acquire(namespace)

    def leave(self) -> None:
        self._slots.release()
