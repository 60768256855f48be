"""Standard Kubernetes conditions, computed as pure functions.

A condition's lastTransitionTime changes only when its status changes, so
rewriting the same verdict does not look like a transition to kstatus or GitOps
tools.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool | None          # None: Unknown
    reason: str
    message: str = ""

    @property
    def status_text(self) -> str:
        return "Unknown" if self.status is None else str(self.status)


def now_iso(moment: datetime.datetime | None = None) -> str:
    moment = moment or datetime.datetime.now(datetime.UTC)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_time(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


def merge_conditions(existing: list[dict[str, Any]] | None, updates: list[Condition],
                     generation: int, now: str) -> list[dict[str, Any]]:
    """The condition list after applying `updates`, keeping other types as they are."""
    by_type = {c["type"]: dict(c) for c in existing or []}
    for update in updates:
        old = by_type.get(update.type)
        changed = old is None or old.get("status") != update.status_text
        condition = {
            "type": update.type,
            "status": update.status_text,
            "reason": update.reason,
            "observedGeneration": generation,
            "lastTransitionTime": now if changed or old is None
            else old.get("lastTransitionTime", now),
        }
        # An empty string reaches the apiserver as null through the client: leave it out.
        if update.message:
            condition["message"] = update.message[:32768]
        by_type[update.type] = condition
    return list(by_type.values())


def condition_status(conditions: list[dict[str, Any]] | None, type_: str) -> str | None:
    for condition in conditions or []:
        if condition.get("type") == type_:
            return str(condition.get("status"))
    return None
