"""Admission checks the schema cannot express (a 1.20 apiserver has no CEL).

- A task already sent to the agent can be neither edited nor removed.
- A VMNode's vmId cannot change once set.

Served by kopf's webhook server when REEF_WEBHOOK_PORT is set; kopf keeps the
ValidatingWebhookConfiguration `reef.vers.sh` pointing at it. Failures of the
webhook itself are ignored by the apiserver (an operator that is down must not
block every edit); the controllers still refuse to act on a changed sent task.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from reef_operator.constants import GROUP, VERSION


def sent_task_problems(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What an update does to tasks already sent (pure, for the webhook and tests)."""
    sent = {t.get("name"): t.get("phase") for t in (old.get("status") or {}).get("tasks") or []
            if t.get("phase") not in (None, "Pending")}
    before = {t["name"]: t for t in (old.get("spec") or {}).get("tasks") or []}
    after = {t["name"]: t for t in (new.get("spec") or {}).get("tasks") or []}
    problems = []
    for name, phase in sent.items():
        if name not in before:
            continue
        if name not in after:
            problems.append(f"task {name!r} was already sent to the agent ({phase}) and cannot "
                            "be removed; tasks are append-only")
            continue
        for field in ("message", "mode"):
            if before[name].get(field, "prompt") != after[name].get(field, "prompt"):
                problems.append(f"task {name!r} was already sent to the agent ({phase}); its "
                                f"{field} cannot change: append a new task instead")
    return problems


def lieutenant_tasks_are_append_only(body: kopf.Body, **kwargs: Any) -> None:
    problems = sent_task_problems(kwargs.get("old") or {}, kwargs.get("new") or body)
    if problems:
        raise kopf.AdmissionError("; ".join(problems), code=422)


def vmnode_vm_id_is_immutable(body: kopf.Body, **kwargs: Any) -> None:
    before = ((kwargs.get("old") or {}).get("spec") or {}).get("vmId")
    after = ((kwargs.get("new") or body).get("spec") or {}).get("vmId")
    if before and after != before:
        raise kopf.AdmissionError(f"spec.vmId is {before!r} and cannot change once set; "
                                  "create another VMNode to adopt another VM", code=422)


def register() -> None:
    """Register the checks with kopf (only when a webhook server is configured: kopf
    refuses to run admission handlers without one)."""
    # kopf serves each check at /<id>; a Service clientConfig (the Helm chart's) only
    # accepts lowercase DNS labels as path segments, hence ids without underscores.
    kopf.on.validate(GROUP, VERSION, "lieutenants", operations=["UPDATE"], ignore_failures=True,
                     id="lieutenant-tasks-are-append-only")(lieutenant_tasks_are_append_only)
    kopf.on.validate(GROUP, VERSION, "vmnodes", operations=["UPDATE"], ignore_failures=True,
                     id="vmnode-vm-id-is-immutable")(vmnode_vm_id_is_immutable)
