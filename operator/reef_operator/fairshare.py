"""Shared capacity handed out fairly between tenants (namespaces).

One operator serves many teams, and three things it holds are scarce: calls to
the platform (the rate limit), SSH commands in flight and agent starts in
flight. Each is a bounded number of slots; when they are all taken, waiters
are served round-robin across tenants and first-come-first-served within one
tenant. A namespace that asks for fifty slots at once therefore takes turns
with a namespace that asks for one, instead of queueing it behind all fifty.

`RoundRobin` is the order alone (pure, no clock, no event loop); `FairSlots`
holds the slots and wakes waiters in that order.

The tenant of the code running now is a context variable, set once where a
controller starts working on an object (`acting_for`): the provider interface
then needs no namespace parameter, and tasks started from there inherit it.
Work done for no object (fleet sweeps, startup) is the tenant "".
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from typing import Generic, TypeVar

T = TypeVar("T")

TENANT: ContextVar[str] = ContextVar("reef_tenant", default="")


@contextlib.contextmanager
def acting_for(namespace: str) -> Iterator[None]:
    """Everything awaited inside (and tasks started from it) queues as `namespace`."""
    token = TENANT.set(namespace)
    try:
        yield
    finally:
        TENANT.reset(token)


class RoundRobin(Generic[T]):
    """Waiters in the order they are served: one per tenant in turn, FIFO within a tenant.

    A tenant joins the end of the turn order when its first waiter arrives and
    leaves it when its last waiter is served.
    """

    def __init__(self) -> None:
        # Tenants in turn order, each with its waiters in arrival order.
        self._turns: OrderedDict[str, deque[T]] = OrderedDict()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def arrive(self, tenant: str, waiter: T) -> None:
        self._turns.setdefault(tenant, deque()).append(waiter)
        self._count += 1

    def next(self) -> T | None:
        """The waiter served next, removed; its tenant goes to the end of the turn order."""
        if not self._turns:
            return None
        tenant, waiters = self._turns.popitem(last=False)
        waiter = waiters.popleft()
        self._count -= 1
        if waiters:
            self._turns[tenant] = waiters
        return waiter

    def leave(self, tenant: str, waiter: T) -> None:
        """A waiter that gave up (cancelled) before its turn."""
        waiters = self._turns.get(tenant)
        if waiters is None:
            return
        if waiter in waiters:
            waiters.remove(waiter)
            self._count -= 1
        if not waiters:
            del self._turns[tenant]


class FairSlots:
    """At most `limit` holders at once; waiters are let in by `RoundRobin`."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = limit
        self._free = limit
        self._waiting: RoundRobin[asyncio.Future[None]] = RoundRobin()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def held(self) -> int:
        return self.limit - self._free

    async def acquire(self, tenant: str | None = None) -> None:
        """Take a slot for `tenant` (default: the current context's), waiting its turn."""
        if self._free > 0 and not self._waiting:
            self._free -= 1
            return
        who = TENANT.get() if tenant is None else tenant
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.arrive(who, turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release()  # the slot was handed over just as the waiter gave up
            else:
                self._waiting.leave(who, turn)
            raise

    def release(self) -> None:
        """Hand the slot to the next waiter in turn, or free it."""
        while (turn := self._waiting.next()) is not None:
            if not turn.done():
                turn.set_result(None)
                return
        self._free += 1

    @contextlib.asynccontextmanager
    async def slot(self, tenant: str | None = None) -> AsyncIterator[None]:
        await self.acquire(tenant)
        try:
            yield
        finally:
            self.release()
