"""Checkpoints: when a VM node's next snapshot is due, and which snapshots to keep.

Pure: the reconciler takes and deletes the snapshots and writes status.checkpoints
(oldest first, each {"commitId", "createdAt"}).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reef_operator.kube.conditions import parse_time

Checkpoint = Mapping[str, Any]


@dataclass(frozen=True)
class CheckpointPolicy:
    """spec.checkpoints with its defaults."""

    interval: float = 3600.0
    retain: int = 24

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> CheckpointPolicy | None:
        """The node's policy; None when it takes no checkpoints."""
        policy = spec.get("checkpoints")
        if not policy:
            return None
        return cls(float(policy.get("intervalSeconds", 3600)), int(policy.get("retain", 24)))

    def due_in(self, taken: Sequence[Checkpoint], now: datetime.datetime) -> float:
        """Seconds until the next checkpoint is due; 0 when it is (or none was taken)."""
        last = parse_time(taken[-1]["createdAt"]) if taken else None
        if last is None:
            return 0.0
        return max(0.0, self.interval - (now - last).total_seconds())

    def prune(self, taken: Sequence[Checkpoint]) -> tuple[list[Checkpoint], list[Checkpoint]]:
        """The checkpoints kept (the newest `retain`) and the expired ones, oldest first."""
        expired = max(0, len(taken) - self.retain)
        return list(taken[expired:]), list(taken[:expired])
