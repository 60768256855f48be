"""Heartbeats: is a VM node's VM answering, and when is that worth a status write.

Pure: the reconciler runs the command and writes the verdicts.

A heartbeat is a trivial command on the VM's shell. Liveness is kept in memory at
every beat, but status.lastHeartbeatTime is written only every half stale-after
interval (or when the node was not alive before): written at every beat, the time
alone would be most of an idle fleet's writes, and the Alive condition changes the
moment liveness does either way. A node is stale once no beat was heard for
longer than staleAfterSeconds, counting from the later of the written time and
the one remembered.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reef_operator.providers.base import CommandResult
from reef_operator.vmnodes.fleet import Key

COMMAND = "echo reef-heartbeat"
REPLY = "reef-heartbeat"
COMMAND_TIMEOUT = 10.0  # at most; less when the interval is shorter


@dataclass(frozen=True)
class HeartbeatPolicy:
    """spec.heartbeat with its defaults."""

    interval: float = 60.0
    stale_after: float = 300.0

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> HeartbeatPolicy:
        heartbeat = spec.get("heartbeat") or {}
        return cls(float(heartbeat.get("intervalSeconds", 60)),
                   float(heartbeat.get("staleAfterSeconds", 300)))

    @property
    def command_timeout(self) -> float:
        return min(COMMAND_TIMEOUT, self.interval)

    def time_to_write(self, now: datetime.datetime, written: datetime.datetime | None,
                      alive_before: bool) -> bool:
        """Whether a beat at `now` goes into status.lastHeartbeatTime."""
        return not alive_before or written is None or \
            (now - written).total_seconds() >= self.stale_after / 2

    def stale_message(self, now: datetime.datetime, last: datetime.datetime | None,
                      reason: str) -> str | None:
        """Why the node counts as stale after a failed beat; None while it is not yet."""
        if last is None:
            return f"no heartbeat yet: {reason}"
        age = (now - last).total_seconds()
        if age <= self.stale_after:
            return None
        return f"no heartbeat for {age:.0f}s (stale after {self.stale_after:.0f}s): {reason}"


def answered(result: CommandResult) -> bool:
    return result.ok and REPLY in result.stdout


class Heartbeats:
    """The last beat each node answered, remembered between writes of its time."""

    def __init__(self) -> None:
        self._last: dict[Key, datetime.datetime] = {}

    def beat(self, key: Key, now: datetime.datetime) -> None:
        self._last[key] = now

    def last(self, key: Key, written: datetime.datetime | None) -> datetime.datetime | None:
        """The latest beat known: remembered here or written in status."""
        known = [moment for moment in (written, self._last.get(key)) if moment is not None]
        return max(known) if known else None

    def forget(self, key: Key) -> None:
        self._last.pop(key, None)
