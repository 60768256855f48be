"""The lieutenant's VMNode when the apiserver refuses to make it (lieutenants/node.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, cast

import pytest
from kubernetes.client.exceptions import ApiException

from reef_operator.lieutenants import node
from reef_operator.lieutenants.runtime import LieutenantRuntime

LIEUTENANT = {"metadata": {"name": "api", "namespace": "team", "uid": "u-1"},
              "spec": {"role": "r"}}


def _runtime(create: Callable[..., Any]) -> LieutenantRuntime:
    return cast(LieutenantRuntime, SimpleNamespace(
        vmnode_bodies={},
        vmnodes=SimpleNamespace(metadata_for_new=lambda namespace, name, spec: {}),
        kube=SimpleNamespace(custom=SimpleNamespace(create_namespaced_custom_object=create))))


def _refused(status: int, cause: str) -> Callable[..., Any]:
    def create(*_: Any) -> Any:
        error = ApiException(status=status, reason="Forbidden")
        error.body = json.dumps({"kind": "Status", "reason": "Forbidden",
                                 "details": {"causes": [{"reason": cause}]}})
        raise error
    return create


async def test_a_namespace_being_deleted_gets_no_vmnode_and_no_error() -> None:
    rt = _runtime(_refused(403, "NamespaceTerminating"))
    assert await node.ensure_vmnode(rt, LIEUTENANT, "Running") is None
    assert rt.vmnode_bodies == {}


async def test_any_other_refusal_reaches_the_loop() -> None:
    with pytest.raises(ApiException):
        await node.ensure_vmnode(_runtime(_refused(403, "Quota")), LIEUTENANT, "Running")


async def test_a_node_made_by_an_earlier_pass_is_awaited_from_the_watch() -> None:
    assert await node.ensure_vmnode(_runtime(_refused(409, "AlreadyExists")), LIEUTENANT,
                                    "Running") is None


async def test_a_created_node_is_known_at_once() -> None:
    made: list[dict[str, Any]] = []

    def create(_group: str, _version: str, _namespace: str, _plural: str,
               body: dict[str, Any]) -> dict[str, Any]:
        made.append(body)
        return body
    rt = _runtime(create)
    assert await node.ensure_vmnode(rt, LIEUTENANT, "Running") is None
    assert [b["metadata"]["ownerReferences"][0]["uid"] for b in made] == ["u-1"]
    assert ("team", "api") in rt.vmnode_bodies


async def test_a_node_the_policy_refuses_at_admission_stalls_the_lieutenant_with_why() -> None:
    def create(*_: Any) -> Any:
        error = ApiException(status=422, reason="Unprocessable Entity")
        error.body = json.dumps({"kind": "Status", "message": "admission webhook "
                                 "\"vmnode-fits-the-policy.reef.vers.sh\" denied the request: "
                                 "BootProfile 'big' is not allowed by ReefPolicy team/p"})
        raise error
    with pytest.raises(node.NodeRefused) as refused:
        await node.ensure_vmnode(_runtime(create), LIEUTENANT, "Running")
    assert refused.value.reason == "PolicyRefused"
    assert "VMNode api cannot be created: admission webhook" in str(refused.value)
    assert "BootProfile 'big' is not allowed by ReefPolicy team/p" in str(refused.value)
