"""A provider that counts and times every operation of the provider it wraps.

The operator wraps each of its providers once at startup, so the Local provider's work
(directories and processes) shows in the same metrics as the Vers provider's.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import TypeVar

from reef_operator import metrics
from reef_operator.providers.base import Provider, Shell, VmObservation, VmOwner, VmRequest
from reef_operator.providers.errors import ProviderError

T = TypeVar("T")


def outcome_of(error: BaseException) -> str:
    """A bounded label for a failure: the provider error's class, else `other`."""
    return type(error).__name__ if isinstance(error, ProviderError) else "other"


class InstrumentedProvider:
    def __init__(self, inner: Provider) -> None:
        self.inner = inner
        self.name = inner.name

    async def _timed(self, operation: str, call: Awaitable[T]) -> T:
        started = time.monotonic()
        try:
            result = await call
        except Exception as error:
            metrics.provider_operation(self.name, operation, outcome_of(error),
                                       time.monotonic() - started)
            raise
        metrics.provider_operation(self.name, operation, "ok", time.monotonic() - started)
        return result

    async def create(self, request: VmRequest) -> str:
        return await self._timed("create", self.inner.create(request))

    async def find(self, request: VmRequest) -> str | None:
        return await self._timed("find", self.inner.find(request))

    async def observe(self, vm_id: str) -> VmObservation:
        return await self._timed("observe", self.inner.observe(vm_id))

    async def claim(self, vm_id: str, request: VmRequest) -> None:
        await self._timed("claim", self.inner.claim(vm_id, request))

    async def pause(self, vm_id: str) -> None:
        await self._timed("pause", self.inner.pause(vm_id))

    async def resume(self, vm_id: str) -> None:
        await self._timed("resume", self.inner.resume(vm_id))

    async def delete(self, vm_id: str) -> None:
        await self._timed("delete", self.inner.delete(vm_id))

    async def snapshot(self, vm_id: str) -> str:
        return await self._timed("snapshot", self.inner.snapshot(vm_id))

    async def snapshot_owner(self, snapshot_id: str) -> VmOwner | None:
        return await self._timed("snapshot_owner", self.inner.snapshot_owner(snapshot_id))

    async def delete_snapshot(self, snapshot_id: str) -> None:
        await self._timed("delete_snapshot", self.inner.delete_snapshot(snapshot_id))

    async def shell(self, vm_id: str, pinned_fingerprint: str | None = None) -> Shell:
        return await self._timed("shell", self.inner.shell(vm_id, pinned_fingerprint))

    def forget(self, vm_id: str) -> None:
        self.inner.forget(vm_id)
