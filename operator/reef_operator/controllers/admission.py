"""Admission checks the schema cannot express (a 1.20 apiserver has no CEL).

- A task already sent to the agent can be neither edited nor removed.
- A VMNode's vmId cannot change once set.
- A Lieutenant's credentialsSecretRef names a Secret labelled
  `reef.vers.sh/agent-credentials: "true"` (checked on CREATE and when the reference
  changes; reading the labels needs the operator's client, within a short budget).
- A BootProfile's env secretKeyRef reads only from the operator's namespace.

Served by kopf's webhook server when REEF_WEBHOOK_PORT is set; kopf keeps the
ValidatingWebhookConfiguration `reef.vers.sh` pointing at it. Failures of the
webhook itself are ignored by the apiserver (an operator that is down must not
block every edit); the controllers still refuse to act on a changed sent task, on an
unlabelled credentials Secret and on a profile reading Secrets elsewhere. For the same
reason a label lookup that fails or exceeds its budget lets the object through.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import kopf

from reef_operator.constants import GROUP, VERSION
from reef_operator.controllers import runtime
from reef_operator.lieutenants.inputs import credentials_consented, unlabelled_credentials_message
from reef_operator.profiles.validation import secret_namespace_problems

logger = logging.getLogger(__name__)

# The apiserver waits for the webhook up to its own timeout (10 s by default); a label
# lookup gets a small part of it, so a slow apiserver makes admission fail open, not slow.
LABEL_LOOKUP_BUDGET = 2.0


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


def credentials_ref_to_check(old: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
    """The credentials Secret to check: on CREATE, or when an UPDATE names another one.
    An unchanged reference is not checked again, so no unrelated edit (a deletion's
    metadata, an annotation) is ever refused because a label was removed later: the
    controller catches that."""
    def ref(body: Mapping[str, Any]) -> str | None:
        name = ((body.get("spec") or {}).get("credentialsSecretRef") or {}).get("name")
        return str(name) if name else None
    after = ref(new)
    return after if after and after != ref(old) else None


async def lieutenant_credentials_are_labelled(body: kopf.Body, **kwargs: Any) -> None:
    new = kwargs.get("new") or body
    name = credentials_ref_to_check(kwargs.get("old") or {}, new)
    namespace = (new.get("metadata") or {}).get("namespace") or ""
    if name is None or not namespace:
        return
    try:
        labels = await asyncio.wait_for(
            runtime.current().kube.read_secret_labels(namespace, name), LABEL_LOOKUP_BUDGET)
    except Exception as error:  # fail open: the controller still refuses
        logger.warning("admission: labels of Secret %s/%s not read (%s); the lieutenant's "
                       "controller checks them", namespace, name, type(error).__name__)
        return
    # A Secret not there yet may follow its lieutenant (GitOps order): the controller
    # reports MissingInput until it exists.
    if labels is not None and not credentials_consented(labels):
        raise kopf.AdmissionError(unlabelled_credentials_message(namespace, name), code=422)


def bootprofile_reads_secrets_only_from_the_operator(body: kopf.Body, **kwargs: Any) -> None:
    spec = (kwargs.get("new") or body).get("spec") or {}
    problems = secret_namespace_problems(spec, runtime.current().profiles.secret_namespace)
    if problems:
        raise kopf.AdmissionError("; ".join(problems), code=422)


def register() -> None:
    """Register the checks with kopf (only when a webhook server is configured: kopf
    refuses to run admission handlers without one)."""
    # kopf serves each check at /<id>; a Service clientConfig (the Helm chart's) only
    # accepts lowercase DNS labels as path segments, hence ids without underscores.
    kopf.on.validate(GROUP, VERSION, "lieutenants", operations=["UPDATE"], ignore_failures=True,
                     id="lieutenant-tasks-are-append-only")(lieutenant_tasks_are_append_only)
    kopf.on.validate(GROUP, VERSION, "vmnodes", operations=["UPDATE"], ignore_failures=True,
                     id="vmnode-vm-id-is-immutable")(vmnode_vm_id_is_immutable)
    kopf.on.validate(GROUP, VERSION, "lieutenants", operations=["CREATE", "UPDATE"],
                     ignore_failures=True, id="lieutenant-credentials-are-labelled")(
        lieutenant_credentials_are_labelled)
    kopf.on.validate(GROUP, VERSION, "bootprofiles", operations=["CREATE", "UPDATE"],
                     ignore_failures=True, id="bootprofile-secrets-in-operator-namespace")(
        bootprofile_reads_secrets_only_from_the_operator)
