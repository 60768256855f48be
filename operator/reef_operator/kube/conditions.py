"""Standard Kubernetes conditions, computed as pure functions.

A condition is made for one kind and checked against that kind's catalogue
(api/conditions.py) as it is made: an undocumented type, reason or status raises
UnknownCondition there, so no stray vocabulary reaches an object.

A condition's lastTransitionTime changes only when its status changes, so
rewriting the same verdict does not look like a transition to kstatus or GitOps
tools.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reef_operator.api.conditions import BY_KIND, UnknownCondition


@dataclass(frozen=True)
class Condition:
    kind: str                    # Lieutenant, VMNode or BootProfile: whose catalogue applies
    type: str
    status: bool | None          # None: Unknown
    reason: str
    message: str = ""

    def __post_init__(self) -> None:
        catalogue = BY_KIND.get(self.kind)
        if catalogue is None:
            raise UnknownCondition(f"no conditions catalogue for kind {self.kind!r}")
        catalogue.check(self.kind, self.type, self.status, self.reason)

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


def without_transition_times(conditions: Any) -> list[dict[str, Any]]:
    """Conditions as compared to decide whether a status write is due: a condition's
    lastTransitionTime alone never causes one."""
    return [{k: v for k, v in c.items() if k != "lastTransitionTime"}
            for c in conditions or []]


def summary(kind: str, reason: str, message: str, *, ready: bool = False,
            reconciling: bool = False, stalled: bool = False) -> list[Condition]:
    """Ready, Reconciling, Stalled (and Degraded where the kind has it) with one reason.

    Written together so none is left over from an earlier verdict: kstatus reads only
    Reconciling and Stalled (abnormal-true), and Degraded is this API's name for the
    same trouble as Stalled. The combination must be one of the catalogue's rows.
    """
    def fits(documented: bool | None, written: bool) -> bool:
        return documented is None or documented is written   # None: a type the row leaves

    if not any(row.ready is ready and fits(row.reconciling, reconciling) and
               fits(row.stalled, stalled) for row in BY_KIND[kind].rows(reason)):
        raise UnknownCondition(f"{kind} summary {reason!r} with Ready={ready}, "
                               f"Reconciling={reconciling}, Stalled={stalled} is not a row "
                               "of the catalogue")
    types = BY_KIND[kind].type_names
    conditions = [Condition(kind, "Ready", ready, reason, message)]
    if "Reconciling" in types:
        conditions.append(Condition(kind, "Reconciling", reconciling, reason,
                                    message if reconciling else ""))
    conditions.append(Condition(kind, "Stalled", stalled, reason, message if stalled else ""))
    if "Degraded" in types:
        conditions.append(Condition(kind, "Degraded", stalled, reason,
                                    message if stalled else ""))
    return conditions


def find_condition(obj: Mapping[str, Any] | None, type_: str) -> dict[str, Any]:
    """The object's condition of this type (a copy), or {} when it has none."""
    for condition in ((obj or {}).get("status") or {}).get("conditions") or []:
        if isinstance(condition, Mapping) and condition.get("type") == type_:
            return dict(condition)
    return {}
