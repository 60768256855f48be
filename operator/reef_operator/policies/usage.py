"""What a namespace uses of its ReefPolicy, and the status that says so.

Pure: the controller (controllers/reefpolicy.py) gathers the figures (the lieutenants'
runners, the fleet's running VMs, the day's TaskRecords) and writes what `status_patch`
returns. The day's cost counts each finished task once: from its TaskRecord, or from its
lieutenant's history entry until a listing of the records has it; plus what the running
tasks have cost so far (a running task counts on the day it completes).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any

from reef_operator.kube.conditions import (
    merge_conditions,
    now_iso,
    summary,
    without_transition_times,
)

KIND = "ReefPolicy"


def day_of(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%d")


def cost_on(day: str, records: Iterable[Mapping[str, Any]],
            histories: Mapping[str, Iterable[Mapping[str, Any]]],
            running: Iterable[float]) -> float:
    """US dollars of the tasks completed on `day` (UTC), plus the running tasks' cost so far.

    A finished task is counted once, from its TaskRecord (`records`, listed now and then)
    or, until a listing has it, from its lieutenant's history entry (`histories`:
    lieutenant -> status.history, in memory).
    """
    costs: dict[tuple[str, str], float] = {}
    for lieutenant, history in histories.items():
        for entry in history:
            if str(entry.get("completedAt") or "")[:10] == day and entry.get("task"):
                costs[(lieutenant, str(entry["task"]))] = float(
                    (entry.get("usage") or {}).get("cost") or 0)
    for record in records:
        spec = record.get("spec") or {}
        if str(spec.get("completedAt") or "")[:10] == day:
            costs[(str(spec.get("lieutenant")), str(spec.get("task")))] = float(
                (spec.get("usage") or {}).get("cost") or 0)
    return round(sum(costs.values()) + sum(running), 6)


def used(lieutenants: int, running_vms: int, day: str, cost: float) -> dict[str, Any]:
    return {"lieutenants": lieutenants, "runningVMs": running_vms, "day": day,
            "costTodayUSD": cost}


def status_patch(status: Mapping[str, Any], figures: Mapping[str, Any], active: str,
                 generation: int, name: str) -> dict[str, Any] | None:
    """The status to write, or None when nothing but the time would change. `active` is the
    name of the namespace's applied policy."""
    if active == name:
        verdict = summary(KIND, "Active", "the namespace's policy, applied", ready=True)
    else:
        verdict = summary(KIND, "Duplicate", f"ReefPolicy {active} is older and applies; this "
                          "one is ignored: delete it, or merge it into that one", stalled=True)
    conditions = merge_conditions(status.get("conditions"), verdict, generation, now_iso())
    before = {k: v for k, v in (status.get("used") or {}).items() if k != "updatedAt"}
    if before == dict(figures) and status.get("observedGeneration") == generation and \
            without_transition_times(status.get("conditions")) == \
            without_transition_times(conditions):
        return None
    return {"observedGeneration": generation, "conditions": conditions,
            "used": {**figures, "updatedAt": now_iso()}}
