"""What a VM node's place in its tree asks of its metadata: labels and an ownerReference.

Pure: the reconciler sends the patch. The labels let `kubectl get -l` select a
tree, a category or a provider; the ownerReference to the parent lets the
garbage collector take a subtree with its root.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reef_operator.constants import (
    GROUP,
    LABEL_CATEGORY,
    LABEL_FORKED_FROM,
    LABEL_PARENT,
    LABEL_PROFILE,
    LABEL_PROVIDER,
    LABEL_ROOT,
    VERSION,
)
from reef_operator.vmnodes.profiles import ProfileView


def lineage_labels(spec: Mapping[str, Any], profile: ProfileView, root: str) -> dict[str, str]:
    """The labels a node with this spec, profile and root carries."""
    labels = {
        LABEL_CATEGORY: str(spec.get("category") or profile.category),
        LABEL_ROOT: root,
        LABEL_PROFILE: profile.name,
        LABEL_PROVIDER: profile.provider,
    }
    parent = (spec.get("parentRef") or {}).get("name")
    if parent:
        labels[LABEL_PARENT] = parent
    return labels


def lineage_patch(meta: Mapping[str, Any], spec: Mapping[str, Any], profile: ProfileView,
                  root: str, parent_uid: str | None) -> dict[str, Any]:
    """The metadata merge patch that brings `meta` to what the lineage asks; {} if none.

    A parent label left from an earlier parentRef is removed; an ownerReference to
    an earlier parent VMNode is replaced (other owners are kept). A fork's node (labelled
    forked-from) gets none: its source owns nothing of it.
    """
    labels = dict(meta.get("labels") or {})
    wanted = lineage_labels(spec, profile, root)
    parent = (spec.get("parentRef") or {}).get("name")
    patch: dict[str, Any] = {}
    label_patch: dict[str, str | None] = {k: v for k, v in wanted.items()
                                          if labels.get(k) != v}
    if not parent and LABEL_PARENT in labels:
        label_patch[LABEL_PARENT] = None
    if label_patch:
        patch["labels"] = label_patch
    owners = list(meta.get("ownerReferences") or [])
    forked = LABEL_FORKED_FROM in labels
    if parent and parent_uid and not forked and not any(o.get("uid") == parent_uid
                                                        for o in owners):
        others = [o for o in owners if not (o.get("kind") == "VMNode"
                                            and o.get("apiVersion", "").startswith(GROUP))]
        patch["ownerReferences"] = [*others, {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "VMNode", "name": parent,
            "uid": parent_uid, "blockOwnerDeletion": True,
        }]
    return patch
