"""Admission of the writes a delegating lieutenant's agent makes (spec.delegation).

The rules are pure (api/delegation.py); here they are asked with the caller's identity
(the AdmissionReview's userInfo) and what the apiserver says now: the delegating
lieutenant and its children alive, listed in its namespace within LOOKUP_BUDGET.

Unlike the operator's other checks this one fails closed: its webhook has failurePolicy
Fail, and a lookup that fails refuses a delegate's write. So that no other user's writes
come to depend on the operator being up, the webhook only selects namespaces whose admin
enabled delegation (label reef.vers.sh/delegation: enabled, `namespace_selectors` below);
the operator makes delegate identities only there, and a delegate's Role is bound in its
own namespace alone, so every write a delegate can make passes through it. Writes of
anyone else in such a namespace pass at once (nothing is looked up), but they, too, wait
for the operator's webhook to answer.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from reef_operator.api import delegation
from reef_operator.constants import DELEGATION_ENABLED, GROUP, LABEL_DELEGATION, VERSION
from reef_operator.controllers import runtime

logger = logging.getLogger(__name__)

LOOKUP_BUDGET = 3.0
HANDLER_PREFIX = "delegated-"
# Where the fail-closed webhook applies: namespaces whose admin enabled delegation.
NAMESPACE_SELECTOR = {"matchLabels": {LABEL_DELEGATION: DELEGATION_ENABLED}}


def namespace_selectors(webhooks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The webhooks kopf builds, the delegates' own selecting only enabled namespaces (kopf
    has no namespaceSelector of its own: render/chart.py and the managed configuration
    both pass their webhooks through here)."""
    return [{**webhook, "namespaceSelector": NAMESPACE_SELECTOR}
            if str(webhook.get("name", "")).startswith(HANDLER_PREFIX) else webhook
            for webhook in webhooks]


async def _children(namespace: str, leader: str, leaving: str
                    ) -> tuple[dict[str, Any] | None, int]:
    kube = runtime.current().kube
    lieutenants, vmnodes = await asyncio.gather(kube.list_in("lieutenants", namespace),
                                                kube.list_in("vmnodes", namespace))
    found = next((body for body in lieutenants
                  if (body.get("metadata") or {}).get("name") == leader), None)
    return found, delegation.children_alive(leader, lieutenants, vmnodes, leaving)


async def delegated_writes(body: kopf.Body, **kwargs: Any) -> None:
    caller = delegation.delegate_of(str((kwargs.get("userinfo") or {}).get("username", "")))
    if caller is None:
        return                      # not a delegate: the other checks decide
    old, new = dict(kwargs.get("old") or {}), dict(kwargs.get("new") or {})
    meta = body.get("metadata") or {}
    write = delegation.Write(
        operation=str(kwargs.get("operation") or ""),
        kind=str(getattr(kwargs.get("resource"), "kind", None) or body.get("kind") or ""),
        namespace=str(meta.get("namespace") or ""), name=str(meta.get("name") or ""),
        old=old, new=new)
    try:
        leader, alive = await asyncio.wait_for(
            _children(caller[0], caller[1], f"{write.kind}/{write.name}"), LOOKUP_BUDGET)
    except Exception as error:   # fail closed: a delegate is never admitted unchecked
        logger.warning("admission: a write of lieutenant %s/%s's agent refused: its "
                       "children could not be counted (%s)", caller[0], caller[1],
                       type(error).__name__)
        raise kopf.AdmissionError(
            f"the children of lieutenant {caller[1]} could not be counted now; retry",
            code=503) from None
    problems = delegation.delegated_write_problems(
        caller, leader, write, alive, runtime.current().config.default_profile)
    if problems:
        raise kopf.AdmissionError("; ".join(problems), code=403)


def register() -> None:
    # persistent: kopf managing the configuration (REEF_WEBHOOK_MANAGED) removes the other
    # webhooks when the operator stops; this one must stay, so a stopped operator leaves
    # delegates refused rather than unchecked.
    for kind, plural in (("lieutenant", "lieutenants"), ("vmnode", "vmnodes")):
        kopf.on.validate(GROUP, VERSION, plural, operations=["CREATE", "UPDATE", "DELETE"],
                         ignore_failures=False, persistent=True,
                         id=f"{HANDLER_PREFIX}{kind}-writes")(delegated_writes)
