"""What the operator may do in a cluster: one ClusterRole, bound to its ServiceAccount.

The same rules are rendered into manifests/, the Helm chart and the local
control plane, so a missing permission shows up in the tests first.
"""

from __future__ import annotations

from typing import Any

from reef_operator.constants import GROUP

CLUSTER_ROLE = "reef-operator"

RULES: list[dict[str, Any]] = [
    {   # The three kinds: watch, reconcile, own children, write status, manage finalizers.
        "apiGroups": [GROUP],
        "resources": ["lieutenants", "vmnodes", "bootprofiles"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
    },
    {
        "apiGroups": [GROUP],
        "resources": ["lieutenants/status", "vmnodes/status", "bootprofiles/status",
                      "lieutenants/finalizers", "vmnodes/finalizers"],
        "verbs": ["get", "update", "patch"],
    },
    {   # Events for every transition and failure.
        "apiGroups": ["", "events.k8s.io"],
        "resources": ["events"],
        "verbs": ["create", "patch"],
    },
    {   # Only read, and only by name: credentials, providers file, operator config.
        "apiGroups": [""],
        "resources": ["secrets", "configmaps"],
        "verbs": ["get"],
    },
    {   # kopf: namespace and CRD discovery.
        "apiGroups": [""],
        "resources": ["namespaces"],
        "verbs": ["list", "watch"],
    },
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": ["list", "watch"],
    },
    {   # kopf peering: one active replica, others on standby.
        "apiGroups": ["kopf.dev"],
        "resources": ["clusterkopfpeerings", "kopfpeerings"],
        "verbs": ["get", "list", "watch", "patch"],
    },
    {   # kopf manages the admission webhook configuration it serves.
        "apiGroups": ["admissionregistration.k8s.io"],
        "resources": ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"],
        "verbs": ["get", "list", "watch", "create", "patch"],
    },
]


def operator_rbac(namespace: str, service_account: str) -> list[dict[str, Any]]:
    """ServiceAccount, ClusterRole and ClusterRoleBinding for the operator."""
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
            "rules": RULES,
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
