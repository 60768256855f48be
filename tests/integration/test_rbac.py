"""The operator's own identity can do its job and nothing more."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from reef_operator.api.rbac import RULES
from reef_operator.constants import GROUP, OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT, VERSION
from tests.conftest import Kube

pytestmark = pytest.mark.controlplane

OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_SERVICE_ACCOUNT}"


def _allowed(admin: Kube, verb: str, group: str, resource: str, namespace: str = "default",
             name: str = "") -> bool:
    subresource = ""
    if "/" in resource:
        resource, subresource = resource.split("/", 1)
    review = client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
        user=OPERATOR_USER,
        groups=["system:serviceaccounts", f"system:serviceaccounts:{OPERATOR_NAMESPACE}",
                "system:authenticated"],
        resource_attributes=client.V1ResourceAttributes(
            verb=verb, group=group, resource=resource, subresource=subresource,
            namespace=namespace, name=name),
    ))
    answer = client.AuthorizationV1Api(admin.api).create_subject_access_review(review)
    return answer.status is not None and bool(answer.status.allowed)


def _every_granted_permission() -> list[tuple[str, str, str]]:
    return [(verb, group, resource) for rule in RULES for group in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]]


def test_operator_may_do_everything_its_role_lists(admin: Kube) -> None:
    denied = [p for p in _every_granted_permission() if not _allowed(admin, *p)]
    assert denied == []


@pytest.mark.parametrize(("verb", "group", "resource"), [
    ("list", "", "secrets"),
    ("watch", "", "secrets"),
    ("update", "", "secrets"),
    ("list", "", "serviceaccounts"),
    ("update", "", "configmaps"),
    ("create", "", "pods"),
    ("delete", "", "namespaces"),
    ("create", "apps", "deployments"),
    ("create", "rbac.authorization.k8s.io", "clusterroles"),
    ("create", "rbac.authorization.k8s.io", "clusterrolebindings"),
    ("delete", "apiextensions.k8s.io", "customresourcedefinitions"),
    ("delete", "admissionregistration.k8s.io", "validatingwebhookconfigurations"),
    # It makes delegates' Roles (docs/delegation.md) but never escalates or binds roles it
    # does not hold, and writes no ReefPolicy.
    ("escalate", "rbac.authorization.k8s.io", "roles"),
    ("bind", "rbac.authorization.k8s.io", "clusterroles"),
    ("update", "rbac.authorization.k8s.io", "roles"),
    ("create", GROUP, "reefpolicies"),
    ("get", GROUP, "bootprofiles"),
])
def test_operator_is_refused_outside_its_role(admin: Kube, verb: str, group: str,
                                              resource: str) -> None:
    assert not _allowed(admin, verb, group, resource)


def test_operator_identity_works_against_the_real_apiserver(
    admin: Kube, operator_identity: Kube, namespace: str
) -> None:
    body: dict[str, Any] = {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Lieutenant",
        "metadata": {"name": "api"}, "spec": {"role": "r"},
    }
    admin.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "lieutenants", body)
    custom = operator_identity.custom
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "lieutenants", "api", {"status": {"phase": "Starting"}})
    listed = cast(dict[str, Any], custom.list_cluster_custom_object(GROUP, VERSION, "lieutenants"))
    assert [i["metadata"]["name"] for i in listed["items"]
            if i["metadata"]["namespace"] == namespace] == ["api"]

    admin.core.create_namespaced_secret(namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name="creds"), string_data={"ANTHROPIC_API_KEY": "x"}))
    assert operator_identity.core.read_namespaced_secret("creds", namespace).data
    operator_identity.core.create_namespaced_event(namespace, client.CoreV1Event(
        metadata=client.V1ObjectMeta(generate_name="api."),
        involved_object=client.V1ObjectReference(kind="Lieutenant", name="api",
                                                 namespace=namespace),
        reason="Testing", message="operator may post events", type="Normal"))

    forbidden_calls: list[Callable[[], object]] = [
        lambda: operator_identity.core.list_namespaced_secret(namespace),
        lambda: operator_identity.core.create_namespaced_config_map(
            namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x"))),
        lambda: operator_identity.core.delete_namespace(namespace),
    ]
    for forbidden in forbidden_calls:
        with pytest.raises(ApiException) as refused:
            forbidden()
        assert refused.value.status == 403
