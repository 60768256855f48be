"""kopf handlers for ReefPolicy: the watch keeps each namespace's policy in memory and wakes
the namespace's lieutenants when it changes (their holds read its defaults and limits)."""

from __future__ import annotations

from typing import Any

import kopf

from reef_operator.constants import GROUP, VERSION
from reef_operator.controllers import runtime


@kopf.on.event(GROUP, VERSION, "reefpolicies")
async def reefpolicy_changed(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
    rt = runtime.current()
    namespace, name = body.metadata.namespace or "", body.metadata.name or ""
    known = rt.policies.setdefault(namespace, {})
    if event.get("type") == "DELETED":
        known.pop(name, None)
    else:
        known[name] = dict(body)
    if not known:
        rt.policies.pop(namespace, None)
    rt.wake_lieutenants(namespace)
