"""With the operator down, a delegate's write is refused, and only namespaces that enable
delegation wait for the operator: everyone else's writes go on (docs/delegation.md).

Real apiserver, the operator's managed webhook configuration; the delegate is a token of a
`reef-delegate-*` ServiceAccount with the Role the operator would give it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from reef_devkit.operator_process import OperatorProcess
from reef_operator.api.delegation import DELEGATE_RULES
from reef_operator.constants import API_VERSION, GROUP, LABEL_DELEGATION, VERSION
from tests.conftest import Kube
from tests.e2e.conftest import wait_for

pytestmark = pytest.mark.controlplane
WEBHOOK = True
SCRIPT = "tasks: [{match: never, steps: [{text: unused}]}]"


@pytest.fixture(autouse=True)
def label_removed_after(admin: Kube, namespace: str) -> Iterator[None]:
    """The namespace leaves delegation before it is deleted: the delegates' webhook (which
    stays when the operator stops) then no longer holds up the deletion of its objects."""
    yield
    admin.core.patch_namespace(namespace, {"metadata": {"labels": {LABEL_DELEGATION: None}}})


@pytest.fixture
def unlabelled(admin: Kube) -> Iterator[str]:
    name = f"t-plain-{uuid.uuid4().hex[:6]}"
    admin.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    admin.core.delete_namespace(name)


def _delegate_token(admin: Kube, namespace: str) -> str:
    """A token of `reef-delegate-lead` with the delegate's Role, made as the operator would."""
    name = "reef-delegate-lead"
    meta = {"name": name, "namespace": namespace}
    admin.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta,
         "rules": DELEGATE_RULES},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta,
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]}]))
    request: Any = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                    "spec": {"audiences": [], "expirationSeconds": 600}}
    answer: Any = admin.core.create_namespaced_service_account_token(name, namespace, request)
    return str(answer.status.token)


def _as(admin: Kube, token: str) -> client.CustomObjectsApi:
    configuration = client.Configuration()
    configuration.host = admin.api.configuration.host
    configuration.ssl_ca_cert = admin.api.configuration.ssl_ca_cert
    configuration.api_key = {"authorization": f"Bearer {token}"}
    return client.CustomObjectsApi(client.ApiClient(configuration))


def _node(name: str) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "VMNode", "metadata": {"name": name},
            "spec": {"state": "Destroyed", "parentRef": {"name": "lead"}}}


def _create(api: client.CustomObjectsApi, namespace: str, name: str) -> str:
    """"created", or the apiserver's refusal."""
    try:
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, "vmnodes", _node(name))
    except ApiException as error:
        return str(json.loads(error.body or "{}").get("message", error.reason))
    return "created"


def test_with_the_operator_down_a_delegate_is_refused_and_other_namespaces_go_on(
        admin: Kube, namespace: str, unlabelled: str, operator: OperatorProcess) -> None:
    admin.core.patch_namespace(namespace, {"metadata": {"labels": {LABEL_DELEGATION: "enabled"}}})
    admission = client.AdmissionregistrationV1Api(admin.api)
    wait_for(lambda: LABEL_DELEGATION in json.dumps(
        [admin.api.sanitize_for_serialization(c)
         for c in admission.list_validating_webhook_configuration().items]),
        60, "the delegates' webhook", operator)
    delegate = _as(admin, _delegate_token(admin, namespace))
    # Up: the delegate is asked about, and refused (its lieutenant does not exist).
    assert "the agent of lieutenant lead has no delegation" in _create(delegate, namespace, "w1")
    operator.stop()
    try:
        refused = _create(delegate, namespace, "w2")
        assert "failed calling webhook" in refused and "delegated-vmnode-writes" in refused
        # Elsewhere writes go on without the operator (its other checks fail open) ...
        assert _create(admin.custom, unlabelled, "w3") == "created"
        # ... while in a namespace that enabled delegation every write waits for it.
        assert "failed calling webhook" in _create(admin.custom, namespace, "w4")
    finally:
        operator.start()
    wait_for(lambda: _create(admin.custom, namespace, "w5") == "created", 60,
             "writes in the delegation namespace once the operator is back", operator)
