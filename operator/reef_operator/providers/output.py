"""A command's output, read with a bound: what runs on a VM prints whatever it likes.

Both shells (Vers over SSH, Local) read stdout and stderr through `bounded`: the first
OUTPUT_LIMIT bytes are kept, the rest is read and discarded (so the command is never
blocked on a full pipe) and a marker at the end says how much was cut.
"""

from __future__ import annotations

from typing import Protocol

# The operator's own commands print a few lines (a heartbeat, the sent-log of task ids,
# a file's size); `kubectl reef exec` shows a person a command's output. 8 MiB holds any
# of them, and many lieutenants' commands at once stay small beside the operator's memory.
OUTPUT_LIMIT = 8 * 1024 * 1024
CHUNK = 1 << 16


class Readable(Protocol):
    async def read(self, n: int = -1, /) -> bytes: ...


async def bounded(stream: Readable, limit: int = OUTPUT_LIMIT) -> str:
    """All of `stream` up to `limit` bytes, decoded; a marker says what was cut."""
    kept = bytearray()
    cut = 0
    while chunk := await stream.read(CHUNK):
        room = max(0, limit - len(kept))
        kept += chunk[:room]
        cut += len(chunk) - min(room, len(chunk))
    text = kept.decode(errors="replace")
    if cut:
        text += f"\n[output cut: {cut:,} bytes beyond the {limit:,}-byte bound]\n"
    return text
