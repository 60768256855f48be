"""Every apiserver call the operator makes, as (API group, resource, verb), with who makes it.

This is the inventory the ClusterRole (`api/rbac.py`) must match, no more and no less: the
chart test renders the chart in each mode and compares its rules with these lists. A new
call is added here in the change that adds it, next to the code that makes it.
"""

from __future__ import annotations

from typing import Final

from reef_operator.constants import GROUP

Permission = tuple[str, str, str]   # (API group, resource[/subresource], verb)


def _each(group: str, resources: tuple[str, ...], verbs: tuple[str, ...]) -> list[Permission]:
    return [(group, resource, verb) for resource in resources for verb in verbs]


# Needed only in the namespaces it serves and its own:
IN_SERVED_NAMESPACES: Final[frozenset[Permission]] = frozenset({
    # kube/api.py read_secret, read_configmap (a lieutenant's inputs, in its namespace; a
    # BootProfile's secretKeyRefs); config/sources.py (the operator's own ConfigMap and
    # Secret): by name, never listed.
    ("", "secrets", "get"),
    ("", "configmaps", "get"),
    # lieutenants/delegation.py: a delegating lieutenant's ServiceAccount, Role,
    # RoleBinding and the Secret its tokens are bound to, made and revoked; its tokens
    # (TokenRequest).
    *_each("", ("serviceaccounts", "secrets"), ("create", "delete")),
    ("", "serviceaccounts/token", "create"),
    *_each("rbac.authorization.k8s.io", ("roles", "rolebindings"), ("create", "delete")),
})

# api/delegation.py DELEGATE_RULES: the apiserver lets the operator make a Role only with
# rights it holds itself (no `escalate`), so it holds every right it grants a delegate.
# Of them it uses itself: lieutenants get (lieutenants/parent.py, a child's parent, and
# api/delegation.py's leader, listed by controllers/delegation_admission.py).
DELEGATED: Final[frozenset[Permission]] = frozenset({
    *_each(GROUP, ("lieutenants", "vmnodes"),
           ("get", "list", "watch", "create", "update", "patch", "delete")),
    *_each(GROUP, ("taskrecords",), ("get", "list", "watch")),
})

USED: Final[frozenset[Permission]] = frozenset({
    # kopf serves the three kinds: list and watch, patch for finalizers and its annotations.
    *_each(GROUP, ("lieutenants", "vmnodes", "bootprofiles"), ("list", "watch", "patch")),
    # controllers/admission.py via KubeApi.list_task_records: the TaskRecords of tasks a
    # lieutenant update adds or removes (a reused name is refused).
    (GROUP, "taskrecords", "list"),
    # controllers/reefpolicy.py: each namespace's ReefPolicy, watched, its status written
    # (what the namespace uses, from memory and from the namespace's TaskRecords, listed).
    *_each(GROUP, ("reefpolicies",), ("list", "watch")),
    (GROUP, "reefpolicies/status", "patch"),
    # controllers/vmpool.py: each namespace's VMPools, watched, their status written; the
    # members made (vmnodes create, below), an unhealthy one deleted; vmnodes/pooling.py:
    # a claimed member deleted once its VM is handed over (the claim itself is a patch).
    *_each(GROUP, ("vmpools",), ("list", "watch")),
    (GROUP, "vmpools/status", "patch"),
    (GROUP, "vmnodes", "delete"),
    # lieutenants/runner.py: a Destroyed lieutenant deletes itself once its
    # ttlSecondsAfterDestroyed is over.
    (GROUP, "lieutenants", "delete"),
    # lieutenants/node.py: a lieutenant creates its VMNode.
    (GROUP, "vmnodes", "create"),
    # lieutenants/records.py RecordKeeper: a finished task's TaskRecord (create); the
    # lieutenant's records listed once per runner and the oldest deleted (retention).
    *_each(GROUP, ("taskrecords",), ("create", "list", "delete")),
    # kube/api.py KubeApi.patch_status: every status write of the three reconcilers.
    *_each(GROUP, ("lieutenants/status", "vmnodes/status", "bootprofiles/status"), ("patch",)),
    # lieutenants/node.py and vmnodes/lineage.py set ownerReferences with blockOwnerDeletion,
    # which the OwnerReferencesPermissionEnforcement admission plugin checks as this.
    # A pool member is owned by its VMPool the same way.
    *_each(GROUP, ("lieutenants/finalizers", "vmnodes/finalizers", "vmpools/finalizers"),
           ("update",)),
    # controllers/runtime.py post_event → kopf.event: core/v1 Events.
    ("", "events", "create"),
    *IN_SERVED_NAMESPACES,
    *DELEGATED,
    # kopf: the namespaces it serves (--namespace), the CRDs of the kinds it serves;
    # lieutenants/delegation.py reads a namespace's delegation label.
    *_each("", ("namespaces",), ("list", "watch", "get")),
    *_each("apiextensions.k8s.io", ("customresourcedefinitions",), ("list", "watch")),
    # kopf peering: the active replica's keep-alive; standbys watch.
    *_each("kopf.dev", ("clusterkopfpeerings", "kopfpeerings"), ("list", "watch", "patch")),
})

# kopf managing the webhook configuration (REEF_WEBHOOK_MANAGED=true): it creates each
# configuration (a conflict means it exists), then patches its webhooks with its own URL.
USED_WITH_MANAGED_WEBHOOK: Final[frozenset[Permission]] = USED | frozenset(_each(
    "admissionregistration.k8s.io",
    ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"), ("create", "patch")))
