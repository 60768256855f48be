"""The lieutenant's own VMNode: created with the lieutenant as its controller owner, and
kept in line with the lieutenant's spec (state, profile, source, parent).

The node carries the lieutenant's name. A node of that name owned by someone else is
never taken over: that is an OwnershipError, for a person to resolve.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any, cast

from kubernetes.client.exceptions import ApiException

from reef_operator.constants import (
    API_VERSION,
    GROUP,
    LABEL_FORKED_FROM,
    LABEL_LIEUTENANT,
    VERSION,
)
from reef_operator.lieutenants.forking import ForkPoint
from reef_operator.lieutenants.inputs import InputError
from reef_operator.lieutenants.runtime import LieutenantRuntime


class OwnershipError(RuntimeError):
    """A VMNode with the lieutenant's name exists and belongs to someone else."""


class NodeRefused(InputError):
    """Admission refused the lieutenant's VMNode (its profile or size is over the namespace's
    ReefPolicy, changed since the lieutenant was admitted): Stalled until the spec or the
    policy changes."""

    reason = "PolicyRefused"


def node_state(desired: str, task_running: bool) -> str:
    """The node's spec.state for the lieutenant's: a pause waits for the task to finish."""
    if desired == "Paused" and task_running:
        return "Running"
    return desired


def node_spec(spec: Mapping[str, Any], state: str, fork: ForkPoint | None = None,
              fork_parent: bool = False) -> dict[str, Any]:
    """The fields of the node's spec the lieutenant decides.

    A fork's VM boots from its fork point's commit, made from the source's profile unless
    the fork names one, and sits under the source's VMNode in the lineage tree while that
    node exists (`fork_parent`; the source may since be deleted).
    """
    wanted: dict[str, Any] = {"state": state, "category": "Lieutenant"}
    profile = (spec.get("profileRef") or {}).get("name") or (fork and fork.profile)
    if profile:
        wanted["profileRef"] = {"name": profile}
    pool = (spec.get("poolRef") or {}).get("name")
    if pool and fork is None:       # a fork's VM comes from its commit, never from a pool
        wanted["poolRef"] = {"name": pool}
    commit = fork.commit_id if fork is not None else spec.get("commitId")
    if commit:
        wanted["source"] = {"commitId": commit}
    parent = (spec.get("parentRef") or {}).get("name") or (
        fork.lieutenant if fork is not None and fork_parent else None)
    if parent:
        wanted["parentRef"] = {"name": parent}
    return wanted


def observed(node: Mapping[str, Any] | None) -> bool:
    """Whether the VMNode's status speaks for its current spec."""
    node = node or {}
    return bool((node.get("status") or {}).get("observedGeneration") ==
                (node.get("metadata") or {}).get("generation"))


def owned_by(node: Mapping[str, Any], lieutenant: Mapping[str, Any]) -> bool:
    uid = (lieutenant.get("metadata") or {}).get("uid")
    owners = (node.get("metadata") or {}).get("ownerReferences") or []
    return any(owner.get("uid") == uid for owner in owners)


def new_node(lieutenant: Mapping[str, Any], metadata: Mapping[str, Any],
             wanted: Mapping[str, Any], fork: ForkPoint | None = None) -> dict[str, Any]:
    """The VMNode object to create: the lieutenant's name and namespace, owned by it (a
    fork's says which lieutenant it forked)."""
    meta = lieutenant.get("metadata") or {}
    name = str(meta.get("name"))
    forked = {LABEL_FORKED_FROM: fork.lieutenant} if fork is not None else {}
    return {
        "apiVersion": API_VERSION, "kind": "VMNode",
        "metadata": {"name": name, "namespace": meta.get("namespace"), **metadata,
                     "labels": {**metadata.get("labels", {}), LABEL_LIEUTENANT: name,
                                **forked},
                     "ownerReferences": [{
                         "apiVersion": API_VERSION, "kind": "Lieutenant", "name": name,
                         "uid": meta.get("uid"), "controller": True,
                         "blockOwnerDeletion": True}]},
        "spec": dict(wanted),
    }


async def ensure_vmnode(rt: LieutenantRuntime, lieutenant: Mapping[str, Any],
                        state: str, fork: ForkPoint | None = None) -> dict[str, Any] | None:
    """The lieutenant's VMNode as last seen, created or brought in line with the spec.

    None right after a create (or a create that found it made by an earlier pass): its
    watch event is on the way and wakes the lieutenant's loop.
    """
    meta = lieutenant.get("metadata") or {}
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    node = rt.vmnode_bodies.get((namespace, name))
    source_node = rt.vmnode_bodies.get((namespace, fork.lieutenant)) if fork else None
    fork_parent = source_node is not None and \
        not (source_node.get("metadata") or {}).get("deletionTimestamp")
    wanted = node_spec(lieutenant.get("spec") or {}, state, fork, fork_parent)
    if node is None:
        metadata = rt.vmnodes.metadata_for_new(namespace, name, wanted)
        try:
            created = await asyncio.to_thread(
                rt.kube.custom.create_namespaced_custom_object, GROUP, VERSION, namespace,
                "vmnodes", new_node(lieutenant, metadata, wanted, fork))
        except ApiException as error:
            # 409: made by an earlier pass. A namespace being deleted refuses new objects
            # (403 NamespaceTerminating): the lieutenant goes with it, nothing to make.
            if error.status == 409 or _namespace_terminating(error):
                return None
            if error.status == 422:   # admission: the namespace's ReefPolicy, since changed
                raise NodeRefused(f"VMNode {name} cannot be created: "
                                  f"{_message(error)}") from error
            raise
        # Known at once, so a pass woken before the watch event does not create it twice.
        rt.vmnode_bodies.setdefault((namespace, name), cast(dict[str, Any], created))
        return None
    if not owned_by(node, lieutenant):
        raise OwnershipError(f"a VMNode named {name} already exists and belongs to "
                             "someone else; rename the lieutenant or delete that VMNode")
    current = node.get("spec") or {}
    patch = dict(wanted)
    if fork is not None and "parentRef" not in wanted and current.get("parentRef"):
        patch["parentRef"] = None    # the source's VMNode is gone: the fork is a root now
    if any(current.get(k) != v for k, v in patch.items()):
        await asyncio.to_thread(rt.kube.custom.patch_namespaced_custom_object, GROUP, VERSION,
                                namespace, "vmnodes", name, {"spec": patch})
    return dict(node)


def _message(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or "{}").get("message") or error.reason)
    except ValueError:
        return str(error.reason)


def _namespace_terminating(error: ApiException) -> bool:
    return error.status == 403 and "NamespaceTerminating" in str(error.body or "")
