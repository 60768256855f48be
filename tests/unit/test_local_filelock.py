"""The Local provider's file lock: exclusive across open files, awaited, never leaked.

Each `held` opens the file afresh, as another process would: two holders in one
process exclude each other exactly as the operator and `kubectl reef exec` do.
A waiter is seen waiting through the thread it blocks in (no sleeps).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from reef_operator.providers.local import filelock


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Set when a holder has to wait for the lock."""
    waiting = threading.Event()
    wait = filelock._wait

    def noted(descriptor: int) -> None:
        waiting.set()
        wait(descriptor)

    monkeypatch.setattr(filelock, "_wait", noted)
    yield waiting


async def test_a_second_holder_waits_until_the_first_lets_go(
        tmp_path: Path, waits: threading.Event) -> None:
    lock, order = tmp_path / "lock", []

    async def second() -> None:
        async with filelock.held(lock):
            order.append("second")

    async with filelock.held(lock):
        waiter = asyncio.create_task(second())
        assert await asyncio.to_thread(waits.wait, 5)
        order.append("first")
    await asyncio.wait_for(waiter, 5)
    assert order == ["first", "second"]


async def test_an_uncontended_lock_is_taken_without_waiting(
        tmp_path: Path, waits: threading.Event) -> None:
    for _ in range(2):
        async with filelock.held(tmp_path / "lock"):
            pass
    assert not waits.is_set()


async def test_a_cancelled_waiter_does_not_keep_the_lock(
        tmp_path: Path, waits: threading.Event) -> None:
    lock = tmp_path / "lock"
    async with filelock.held(lock):
        waiter = asyncio.create_task(filelock.held(lock).__aenter__())
        assert await asyncio.to_thread(waits.wait, 5)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    # The cancelled waiter's thread takes the lock once it is free, then lets it go.
    async with asyncio.timeout(5), filelock.held(lock):
        pass


async def test_a_lock_in_a_missing_directory_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        async with filelock.held(tmp_path / "gone" / "lock"):
            pass
