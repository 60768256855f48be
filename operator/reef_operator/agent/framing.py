"""pi's RPC stream is JSON Lines: records end with "\\n" and nothing else.

Strings inside a record may hold U+2028/U+2029, so `str.splitlines()` would
cut records apart; and one `message_update` repeats the whole partial message,
so records can be megabytes long: no line-length limit here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LineSplitter:
    """Feeds on raw bytes from `offset`; yields complete records and where each ends.

    The offset only moves past complete lines, so a consumer that stores it
    after handling a record resumes exactly at the next one.
    """

    offset: int = 0
    _pending: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> Iterator[tuple[bytes, int]]:
        self._pending += data
        while True:
            end = self._pending.find(b"\n")
            if end < 0:
                return
            line = bytes(self._pending[:end])
            del self._pending[:end + 1]
            self.offset += end + 1
            yield line, self.offset

    @property
    def buffered(self) -> int:
        return len(self._pending)


def decode(line: bytes) -> dict[str, Any] | None:
    """One record, or None for a line that is not a JSON object (pi prints none, but be safe)."""
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) else None
