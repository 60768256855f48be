"""An exclusive lock on a file that holds across processes, awaited without blocking the loop.

`fcntl.flock` locks belong to an open file description: a second open of the
same file, in this process or in another, waits until the first is closed. So
the operator and `kubectl reef exec` on the same host exclude each other, and
the kernel drops the lock when its holder dies: a crashed holder never leaves
the file locked.

An uncontended lock is taken at once; a contended one is waited for in a worker
thread of the event loop's pool (flock has no asynchronous form). Callers queue
their own coroutines on an asyncio lock in front, so a process spends at most
one pool thread per file waiting for another process, never one per coroutine.

The descriptor is close-on-exec and subprocesses close inherited descriptors,
so no command started while the lock is held keeps it alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path


def _wait(descriptor: int) -> None:
    """Block until the lock is ours (in a worker thread)."""
    fcntl.flock(descriptor, fcntl.LOCK_EX)


@contextlib.asynccontextmanager
async def held(path: Path) -> AsyncIterator[None]:
    """Hold the exclusive lock on `path` (created if missing) for the block.

    FileNotFoundError when the directory of `path` does not exist.
    """
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        await _lock(descriptor)
    except asyncio.CancelledError:
        raise  # `_lock` closes the descriptor once its thread is done with it
    except BaseException:
        os.close(descriptor)
        raise
    try:
        yield
    finally:
        os.close(descriptor)  # releases the lock


async def _lock(descriptor: int) -> None:
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    waiting = asyncio.ensure_future(asyncio.to_thread(_wait, descriptor))
    try:
        await asyncio.shield(waiting)
    except asyncio.CancelledError:
        # The thread cannot be interrupted and takes the lock eventually. The
        # descriptor stays open while the thread may use it (a closed number may
        # be reused for another file); closed after, it releases that lock.
        waiting.add_done_callback(lambda _: os.close(descriptor))
        raise
