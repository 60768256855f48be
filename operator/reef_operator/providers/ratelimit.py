"""One global limit on calls to the platform, shared by every controller.

A token bucket: `rate` calls per second on average, bursts up to `burst`.
Misconfigured objects retry with their own backoff on top of this, so one
bad VMNode cannot hammer the platform for everyone. Callers waiting for a
token take turns by namespace (`fairshare`), so one namespace's burst does
not hold back another's single call.
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType

from reef_operator import metrics
from reef_operator.fairshare import FairSlots


class RateLimiter:
    def __init__(self, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._updated = time.monotonic()
        # One waiter at a time watches the bucket; the next one is chosen fairly.
        self._turn = FairSlots(1)

    async def acquire(self) -> None:
        with metrics.RATE_LIMIT_WAITERS.track_inprogress():
            await self._acquire()

    async def _acquire(self) -> None:
        async with self._turn.slot():
            while True:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        return None
