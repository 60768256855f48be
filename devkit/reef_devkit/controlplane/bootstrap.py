"""Install what every reef cluster needs: the operator's namespace, RBAC and the CRDs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from kubernetes import config, dynamic
from kubernetes.client import ApiClient, Configuration
from kubernetes.client.exceptions import ApiException

from reef_devkit.controlplane.errors import ControlPlaneError
from reef_operator.api import KINDS
from reef_operator.api.peering import cluster_peering, peering_documents
from reef_operator.api.rbac import operator_rbac
from reef_operator.constants import OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT
from reef_operator.profiles.defaults import DEFAULT_PROFILES

FIELD_MANAGER = "reef-operator-dev"
ESTABLISHED_TIMEOUT_SECONDS = 30.0


def install(kubeconfig: Path) -> None:
    """Server-side apply the namespace, RBAC and CRDs; wait until the CRDs are served."""
    configuration = Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    client = dynamic.DynamicClient(ApiClient(configuration))
    documents: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}},
        # The operator here manages its webhook configuration (REEF_WEBHOOK_MANAGED).
        *operator_rbac(OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT, managed_webhook=True),
        *(kind.crd() for kind in KINDS),
        *peering_documents(),
    ]
    for document in documents:
        _apply(client, document)
    _wait_established(client, [kind.crd_name for kind in KINDS]
                      + [doc["metadata"]["name"] for doc in peering_documents()])
    _apply(client, cluster_peering())
    for profile in DEFAULT_PROFILES.values():
        _apply(client, profile)


def _apply(client: dynamic.DynamicClient, document: dict[str, Any]) -> None:
    resource = client.resources.get(api_version=document["apiVersion"], kind=document["kind"])
    try:
        resource.server_side_apply(
            body=document,
            name=document["metadata"]["name"],
            namespace=document["metadata"].get("namespace"),
            field_manager=FIELD_MANAGER,
            force_conflicts=True,
        )
    except ApiException as error:
        raise ControlPlaneError(
            f"applying {document['kind']} {document['metadata']['name']} failed: "
            f"{error.status} {error.reason}: {error.body}"
        ) from None


def _wait_established(client: dynamic.DynamicClient, names: list[str]) -> None:
    crds = client.resources.get(api_version="apiextensions.k8s.io/v1",
                                kind="CustomResourceDefinition")
    deadline = time.monotonic() + ESTABLISHED_TIMEOUT_SECONDS
    pending = set(names)
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            conditions = crds.get(name=name).to_dict().get("status", {}).get("conditions") or []
            if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                pending.discard(name)
        if pending:
            time.sleep(0.2)
    if pending:
        raise ControlPlaneError(f"CRDs not established after {ESTABLISHED_TIMEOUT_SECONDS:.0f}s: "
                                f"{', '.join(sorted(pending))}")
