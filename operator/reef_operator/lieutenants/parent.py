"""A child lieutenant goes with the lieutenant that leads it.

A Lieutenant whose spec.parentRef names a Lieutenant (one made by a delegating
lieutenant's agent, or by a person for it) gets an ownerReference to that lieutenant, so
the garbage collector deletes it, its VMNode and its records with its parent. The tools
set it at creation; the operator makes sure of it on every pass until it is there (the
parent may be created after the child, as GitOps orders things).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException

from reef_operator.constants import API_VERSION, GROUP, VERSION
from reef_operator.kube.api import KubeApi


def parent_lieutenant(spec: Mapping[str, Any]) -> str | None:
    ref = spec.get("parentRef") or {}
    return str(ref["name"]) if ref.get("kind") == "Lieutenant" and ref.get("name") else None


def owners_with(owners: list[Mapping[str, Any]], parent: str, uid: str
                ) -> list[Mapping[str, Any]] | None:
    """The ownerReferences with the parent among them; None when it already is."""
    if any(owner.get("uid") == uid for owner in owners):
        return None
    return [*owners, {"apiVersion": API_VERSION, "kind": "Lieutenant", "name": parent,
                      "uid": uid}]


async def ensure_owned_by_parent(kube: KubeApi, body: Mapping[str, Any]) -> bool:
    """True once the lieutenant is owned by its parent lieutenant (or has none)."""
    parent = parent_lieutenant(body.get("spec") or {})
    if parent is None:
        return True
    meta = body.get("metadata") or {}
    namespace = str(meta.get("namespace"))
    try:
        found: Any = await asyncio.to_thread(kube.custom.get_namespaced_custom_object, GROUP,
                                             VERSION, namespace, "lieutenants", parent)
    except ApiException as error:
        if error.status == 404:
            return False            # not there yet: asked again on the next pass
        raise
    owners = owners_with(list(meta.get("ownerReferences") or []), parent,
                         str(found["metadata"]["uid"]))
    if owners is not None:
        await kube.patch_metadata("lieutenants", namespace, str(meta.get("name")),
                                  {"ownerReferences": owners})
    return True
