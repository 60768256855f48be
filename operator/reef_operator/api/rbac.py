"""What the operator may do in a cluster: one ClusterRole, bound to its ServiceAccount.

The same rules are rendered into manifests/, the Helm chart and the local
control plane, so a missing permission shows up in the tests first.
"""

from __future__ import annotations

from typing import Any

from reef_operator.constants import GROUP

CLUSTER_ROLE = "reef-operator"

# Exactly what the operator calls (kube/permissions.py declares each use next to the code;
# tests/integration/test_rbac_rules.py holds the two equal, per chart mode).
CLUSTER_RULES: list[dict[str, Any]] = [
    {   # The three kinds: kopf lists, watches and patches them (finalizers, annotations);
        # a lieutenant creates its VMNode; the VMNode reconciler patches labels and marks.
        "apiGroups": [GROUP],
        "resources": ["lieutenants", "bootprofiles"],
        "verbs": ["list", "watch", "patch"],
    },
    {   # A Destroyed lieutenant is deleted after its ttlSecondsAfterDestroyed. The rest
        # the operator holds only to grant it to delegating lieutenants' agents (a Role
        # can grant only rights its maker holds: docs/security.md, delegation).
        "apiGroups": [GROUP],
        "resources": ["lieutenants", "vmnodes"],
        "verbs": ["get", "create", "update", "delete"],
    },
    {   # VMNodes: watched and patched; a pool's members are made and, when unhealthy or
        # handed over, deleted (the rule above); a claim is a patch guarded by the
        # member's resourceVersion.
        "apiGroups": [GROUP],
        "resources": ["vmnodes"],
        "verbs": ["list", "watch", "patch"],
    },
    {   # VMPools: watched (each pool's members are kept), their status written.
        "apiGroups": [GROUP],
        "resources": ["vmpools"],
        "verbs": ["list", "watch"],
    },
    {   # ReefPolicies: watched (each namespace's defaults and limits), their status written.
        "apiGroups": [GROUP],
        "resources": ["reefpolicies"],
        "verbs": ["list", "watch"],
    },
    {   # TaskRecords: one created per finished task, listed once per lieutenant and the
        # oldest deleted to keep its retention; admission lists those of the task names a
        # lieutenant update adds (a name that ran is never reused).
        "apiGroups": [GROUP],
        "resources": ["taskrecords"],
        "verbs": ["create", "list", "delete", "get", "watch"],
    },
    {
        "apiGroups": [GROUP],
        "resources": ["lieutenants/status", "vmnodes/status", "bootprofiles/status",
                      "reefpolicies/status", "vmpools/status"],
        "verbs": ["patch"],
    },
    {   # ownerReferences with blockOwnerDeletion (a lieutenant's VMNode, a child VMNode, a
        # pool's member) need this where the OwnerReferencesPermissionEnforcement admission
        # plugin is on.
        "apiGroups": [GROUP],
        "resources": ["lieutenants/finalizers", "vmnodes/finalizers", "vmpools/finalizers"],
        "verbs": ["update"],
    },
    {   # Events for every transition and failure (kopf posts core/v1 Events).
        "apiGroups": [""],
        "resources": ["events"],
        "verbs": ["create"],
    },
    {   # kopf: the namespaces it serves (with --namespace); a delegating lieutenant's
        # namespace is read for its admin's consent (label reef.vers.sh/delegation).
        "apiGroups": [""],
        "resources": ["namespaces"],
        "verbs": ["list", "watch", "get"],
    },
    {   # kopf: the CRDs, to find the kinds it serves.
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": ["list", "watch"],
    },
    {   # kopf peering: one active replica, others on standby.
        "apiGroups": ["kopf.dev"],
        "resources": ["clusterkopfpeerings", "kopfpeerings"],
        "verbs": ["list", "watch", "patch"],
    },
]

# Where the operator reads: granted cluster-wide when it serves every namespace; a Role in
# each served namespace and its own when it serves some (the chart's
# operator.watchNamespaces), so no Secret outside them is readable.
NAMESPACED_RULES: list[dict[str, Any]] = [
    {   # Only read, and only by name, never listed: a lieutenant's credentials Secret and
        # providers ConfigMap (in the lieutenant's namespace), the operator's own ConfigMap
        # and Secret, BootProfile secretKeyRefs.
        "apiGroups": [""],
        "resources": ["secrets", "configmaps"],
        "verbs": ["get"],
    },
    {   # A delegating lieutenant's identity: its ServiceAccount and the Secret its tokens
        # are bound to (made, and deleted to revoke), its tokens (TokenRequest), its Role
        # and RoleBinding.
        "apiGroups": [""],
        "resources": ["serviceaccounts", "secrets"],
        "verbs": ["create", "delete"],
    },
    {
        "apiGroups": [""],
        "resources": ["serviceaccounts/token"],
        "verbs": ["create"],
    },
    {
        "apiGroups": ["rbac.authorization.k8s.io"],
        "resources": ["roles", "rolebindings"],
        "verbs": ["create", "delete"],
    },
]

# The operator serving every namespace (manifests/, the chart's default).
RULES: list[dict[str, Any]] = CLUSTER_RULES + NAMESPACED_RULES

# Only where kopf manages the admission webhook configuration (REEF_WEBHOOK_MANAGED, the
# local control plane): it creates the configurations, then patches in its URL. The chart
# and manifests/ install the configuration themselves and never grant this.
MANAGED_WEBHOOK_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": ["admissionregistration.k8s.io"],
        "resources": ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"],
        "verbs": ["create", "patch"],
    },
]


def operator_rbac(namespace: str, service_account: str, *,
                  managed_webhook: bool = False) -> list[dict[str, Any]]:
    """ServiceAccount, ClusterRole and ClusterRoleBinding for the operator; with
    `managed_webhook` the role may also write the webhook configurations kopf manages."""
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": service_account, "namespace": namespace},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": CLUSTER_ROLE},
            "rules": RULES + (MANAGED_WEBHOOK_RULES if managed_webhook else []),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": CLUSTER_ROLE},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": CLUSTER_ROLE},
            "subjects": [{"kind": "ServiceAccount", "name": service_account,
                          "namespace": namespace}],
        },
    ]
