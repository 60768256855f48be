"""kopf's peering resources: how standby replicas learn that another one is active.

kopf (the framework) defines these kinds; we ship their CRDs and one
ClusterKopfPeering named like the operator, so `reef-operator run` can keep a
single active replica with others on standby.
"""

from __future__ import annotations

from typing import Any

PEERING_NAME = "reef-operator"


def _crd(kind: str, plural: str, scope: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.kopf.dev"},
        "spec": {
            "group": "kopf.dev",
            "scope": scope,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": "Operator replicas announce themselves here (kopf peering).",
                    "properties": {
                        "status": {"type": "object",
                                   "x-kubernetes-preserve-unknown-fields": True},
                    },
                }},
            }],
        },
    }


def peering_documents() -> list[dict[str, Any]]:
    return [
        _crd("ClusterKopfPeering", "clusterkopfpeerings", "Cluster"),
        _crd("KopfPeering", "kopfpeerings", "Namespaced"),
    ]


def cluster_peering() -> dict[str, Any]:
    return {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering",
            "metadata": {"name": PEERING_NAME}}
