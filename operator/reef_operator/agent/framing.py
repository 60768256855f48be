"""pi's RPC stream is JSON Lines: records end with "\\n" and nothing else.

Strings inside a record may hold U+2028/U+2029, so `str.splitlines()` would
cut records apart. A VM writes whatever it likes into the event log, so every
record is bounded before it is held: a line longer than `MAX_EVENT_LINE` is
discarded as it streams by (never buffered whole) and reported as `Oversized`;
a record nested deeper than `MAX_JSON_DEPTH` is `Rejected`. The splitter looks
at each byte once, so its cost is linear in the input whatever its chunking.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# The largest legitimate record is an `agent_end`, which repeats every message of the run:
# pi cuts each tool result to 50 KB, a model answer is at most its output limit (128k
# tokens, about 512 KB) and `message_update` repeats one partial message. 16 MiB holds a
# run of hundreds of tool calls; beyond it a line is noise or an attack, and it would cost
# the operator (shared by every lieutenant) its memory.
MAX_EVENT_LINE = 16 * 1024 * 1024
# pi's records nest a few levels (event, message, content block, tool arguments); the
# model's tool arguments may nest more, but not this deep.
MAX_JSON_DEPTH = 64


@dataclass(frozen=True)
class Oversized:
    """A line longer than the cap, skipped; `size` its length in bytes (newline excluded)."""

    size: int


@dataclass(frozen=True)
class Rejected:
    """A record the operator will not read; `reason` says why (for a note on the task)."""

    reason: str


@dataclass
class LineSplitter:
    """Feeds on raw bytes from `offset`; yields complete records and where each ends.

    The offset only moves past complete lines, so a consumer that stores it
    after handling a record resumes exactly at the next one. A line over `limit`
    bytes yields `Oversized` at its end instead of its bytes.
    """

    offset: int = 0
    limit: int = MAX_EVENT_LINE
    _pending: bytearray = field(default_factory=bytearray)
    _skipped: int | None = None          # bytes of the oversized line being discarded

    def feed(self, data: bytes) -> Iterator[tuple[bytes | Oversized, int]]:
        start = 0
        while start < len(data):
            newline = data.find(b"\n", start)
            stop = len(data) if newline < 0 else newline
            self._take(memoryview(data)[start:stop])
            if newline < 0:
                return
            if self._skipped is not None:
                size, self._skipped = self._skipped, None
                self.offset += size + 1
                yield Oversized(size), self.offset
            else:
                line = bytes(self._pending)
                self._pending.clear()
                self.offset += len(line) + 1
                yield line, self.offset
            start = newline + 1

    def _take(self, piece: memoryview) -> None:
        if self._skipped is not None:
            self._skipped += len(piece)
        elif len(self._pending) + len(piece) > self.limit:
            self._skipped = len(self._pending) + len(piece)
            self._pending = bytearray()   # released, not just emptied
        else:
            self._pending += piece

    @property
    def buffered(self) -> int:
        return len(self._pending)


def decode(line: bytes) -> dict[str, Any] | Rejected:
    """One record, or Rejected for a line that is not a JSON object nested at most
    MAX_JSON_DEPTH deep. Numbers are read as they come (NaN included): the few the
    operator keeps are validated where they are read (agent/events.py, `message_usage`)."""
    try:
        record = json.loads(line)
    except RecursionError:
        return Rejected(f"an event nested deeper than {MAX_JSON_DEPTH} levels was skipped")
    except UnicodeDecodeError:
        return Rejected("an event that is not UTF-8 was skipped")
    except ValueError as error:
        return Rejected(f"an event that is not valid JSON was skipped ({str(error)[:80]})")
    if not isinstance(record, dict):
        return Rejected("an event that is not a JSON object was skipped")
    if _depth_exceeds(record, MAX_JSON_DEPTH):
        return Rejected(f"an event nested deeper than {MAX_JSON_DEPTH} levels was skipped")
    return record


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether `value` nests more than `limit` containers deep (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values()
                         if isinstance(child, dict | list))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item if isinstance(child, dict | list))
    return False
