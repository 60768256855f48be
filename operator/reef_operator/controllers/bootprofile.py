"""kopf handlers for BootProfile: validate, render, hash; tell the nodes that use it."""

from __future__ import annotations

import time
from typing import Any

import kopf

from reef_operator import metrics
from reef_operator.constants import GROUP, VERSION
from reef_operator.controllers import runtime
from reef_operator.kube.annotations import reconciliation_paused
from reef_operator.kube.conditions import (
    Condition,
    merge_conditions,
    now_iso,
    without_transition_times,
)


@kopf.on.event(GROUP, VERSION, "bootprofiles")
async def bootprofile_changed(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
    started = time.monotonic()
    try:
        valid = await _reconcile(event, body)
    except Exception:
        metrics.reconciled("BootProfile", "error", time.monotonic() - started)
        raise
    metrics.reconciled("BootProfile", "success" if valid else "invalid",
                       time.monotonic() - started)


async def _reconcile(event: kopf.RawEvent, body: kopf.Body) -> bool:
    """Validate, render and hash the profile; False if it is invalid."""
    rt = runtime.current()
    name = body.metadata.name or ""
    if event.get("type") == "DELETED":
        rt.profiles.remove(name)
        rt.wake_profile_users(name)
        return True
    before = rt.profiles.get(name)
    if before is not None and reconciliation_paused(body.metadata):
        return not before.problems  # nodes keep the version last taken in
    view = rt.profiles.upsert(body)
    generation = int(body.metadata.get("generation", 0))
    valid = not view.problems
    condition = Condition("BootProfile", "Valid", valid, "Validated" if valid else "Invalid",
                          "" if valid else "; ".join(view.problems))
    # Validation is the whole reconciliation: Ready when valid, Stalled (kstatus Failed)
    # when only an edit can fix it. Nothing is ever in progress, so no Reconciling.
    summary = [Condition("BootProfile", "Ready", valid, condition.reason, condition.message),
               Condition("BootProfile", "Stalled", not valid, condition.reason,
                         condition.message)]
    status = dict(body.status)
    wanted = {
        "observedGeneration": generation,
        "hash": view.hash or None,
        "conditions": merge_conditions(status.get("conditions"), [condition, *summary],
                                       generation, now_iso()),
    }
    if _differs(status, wanted):
        await rt.kube.patch_status("bootprofiles", None, name, wanted)
        if not valid:
            runtime.post_event(body, "Warning", "Invalid", condition.message)
    if before is None or before.hash != view.hash or before.problems != view.problems:
        rt.wake_profile_users(name)
    return valid


def _differs(status: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return (status.get("observedGeneration") != wanted["observedGeneration"]
            or status.get("hash") != wanted["hash"]
            or without_transition_times(status.get("conditions"))
            != without_transition_times(wanted["conditions"]))
