"""A credentials Secret reaches an agent only when its owner labelled it for agents.

Real apiserver with the operator's admission webhook, the operator as its own process,
Local VMs, the real pi and the scripted model. The tenant is an impersonated user with
rights on reef objects in its namespace only: it cannot read the Secrets there, so naming
one in credentialsSecretRef must not carry a value out of the apiserver to its agent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from reef_devkit.operator_process import OperatorProcess
from reef_operator.constants import GROUP, LABEL_AGENT_CREDENTIALS, OPERATOR_NAMESPACE, VERSION
from reef_operator.kube.api import METADATA_ONLY, KubeApi
from tests.conftest import Kube, as_tenant
from tests.e2e.conftest import wait_for

pytestmark = pytest.mark.controlplane
WEBHOOK = True                     # the operator serves its admission webhook

TENANT = "tenant-b"
UNLABELLED_VALUE = "sk-not-for-agents-" + "7q" * 12
LABELLED_VALUE = "sk-for-agents-" + "4k" * 12
ANSWER = "Consent given, key used."
SCRIPT = f"""
tasks:
  - match: "Use the key"
    steps:
      - text: "{ANSWER}"
"""


@pytest.fixture
def webhook(admin: Kube, operator: OperatorProcess) -> None:
    """The operator's webhook configuration is in place with the credentials check."""
    admission = client.AdmissionregistrationV1Api(admin.api)

    def configured() -> bool:
        found = admission.list_validating_webhook_configuration().items
        return "lieutenant-credentials-are-labelled" in json.dumps(
            [admin.api.sanitize_for_serialization(c) for c in found])

    wait_for(configured, 60, "the operator's ValidatingWebhookConfiguration", operator)


@pytest.fixture
def tenant(admin: Kube, namespace: str) -> Kube:
    """A user with every right on reef objects in `namespace` and none on its Secrets."""
    return as_tenant(admin, namespace, TENANT)


def _secret(admin: Kube, namespace: str, name: str, value: str, labelled: bool) -> None:
    labels = {LABEL_AGENT_CREDENTIALS: "true"} if labelled else None
    admin.core.create_namespaced_secret(namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        string_data={"SCRIPTED_API_KEY": value}))


def _lieutenant(name: str, secret: str, tasks: list[dict[str, str]]) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Lieutenant",
            "metadata": {"name": name},
            "spec": {"role": "r", "profileRef": {"name": "local"},
                     "model": {"provider": "scripted", "id": "scripted-1"},
                     "providersConfigMapRef": {"name": "scripted-models"},
                     "credentialsSecretRef": {"name": secret}, "tasks": tasks}}


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or []
                 if c["type"] == kind), {})


def _refusal(error: ApiException) -> str:
    """The message of an apiserver refusal (the webhook's, when it refused)."""
    return str(json.loads(error.body or "{}").get("message", ""))


def _files_holding(root: Path, value: str) -> list[Path]:
    needle = value.encode()
    return [path for path in root.rglob("*")
            if path.is_file() and not path.is_symlink() and needle in path.read_bytes()]


def test_a_tenant_cannot_read_the_secret_it_names(tenant: Kube, admin: Kube,
                                                  namespace: str) -> None:
    """The premise: the tenant's identity has no access to the namespace's Secrets."""
    _secret(admin, namespace, "team-keys", UNLABELLED_VALUE, labelled=False)
    with pytest.raises(ApiException) as refused:
        tenant.core.read_namespaced_secret("team-keys", namespace)
    assert refused.value.status == 403


async def test_the_operator_reads_a_secrets_labels_without_its_values(
        admin: Kube, namespace: str) -> None:
    _secret(admin, namespace, "team-keys", UNLABELLED_VALUE, labelled=False)
    _secret(admin, namespace, "agent-keys", LABELLED_VALUE, labelled=True)
    answer = admin.core.read_namespaced_secret(
        "team-keys", namespace, _headers={"Accept": METADATA_ONLY}, _preload_content=False)
    raw = cast(bytes, answer.data)
    assert json.loads(raw)["kind"] == "PartialObjectMetadata"
    assert UNLABELLED_VALUE.encode() not in raw
    kube = KubeApi(admin.api)
    assert await kube.read_secret_labels(namespace, "team-keys") == {}
    assert await kube.read_secret_labels(namespace, "agent-keys") == {
        LABEL_AGENT_CREDENTIALS: "true"}
    assert await kube.read_secret_labels(namespace, "not-there") is None


def test_admission_refuses_an_unlabelled_credentials_secret(
        tenant: Kube, admin: Kube, namespace: str, webhook: None) -> None:
    _secret(admin, namespace, "team-keys", UNLABELLED_VALUE, labelled=False)
    with pytest.raises(ApiException) as refused:
        tenant.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "lieutenants",
            _lieutenant("thief", "team-keys", [{"name": "t1", "message": "Use the key"}]))
    assert refused.value.status == 422
    message = _refusal(refused.value)
    assert f"Secret {namespace}/team-keys (spec.credentialsSecretRef)" in message
    assert f'{LABEL_AGENT_CREDENTIALS}: "true"' in message
    assert UNLABELLED_VALUE not in message
    # Naming another Secret on UPDATE is checked too.
    _secret(admin, namespace, "agent-keys", LABELLED_VALUE, labelled=True)
    tenant.custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "lieutenants", _lieutenant("honest", "agent-keys", []))
    with pytest.raises(ApiException) as refused:
        tenant.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "lieutenants", "honest",
            {"spec": {"credentialsSecretRef": {"name": "team-keys"}}})
    assert refused.value.status == 422
    assert "team-keys" in _refusal(refused.value)


def test_the_controller_refuses_what_admission_let_through(
        tenant: Kube, admin: Kube, namespace: str, operator: OperatorProcess,
        local_root: Path, scripted: str, webhook: None) -> None:
    """A Secret created after its lieutenant passes admission (GitOps order); the
    controller still reads no value from it, while a labelled lieutenant beside it works."""
    _secret(admin, namespace, "agent-keys", LABELLED_VALUE, labelled=True)
    task = [{"name": "t1", "message": "Use the key"}]
    for body in (_lieutenant("late", "later-keys", []), _lieutenant("control", "agent-keys", task)):
        tenant.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "lieutenants",
                                                      body)

    def stalled_on(reason: str) -> Any:
        obj = admin.get("lieutenants", "late", namespace)
        return obj if _condition(obj, "Stalled").get("reason") == reason else None

    wait_for(lambda: stalled_on("MissingInput"), 180, "late: MissingInput", operator)
    _secret(admin, namespace, "later-keys", UNLABELLED_VALUE, labelled=False)
    # The tenant appends a task: the reference is unchanged, so admission does not look.
    tenant.custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "lieutenants", "late", {"spec": {"tasks": task}})
    late = wait_for(lambda: stalled_on("CredentialsNotLabelled"), 120,
                    "late: CredentialsNotLabelled", operator)
    stalled = _condition(late, "Stalled")
    assert stalled["status"] == "True"
    assert stalled["message"].startswith(
        f"Secret {namespace}/later-keys (spec.credentialsSecretRef) does not carry the label "
        f'{LABEL_AGENT_CREDENTIALS}: "true"')

    def answered() -> dict[str, Any] | None:
        obj = admin.get("lieutenants", "control", namespace)
        return obj if (obj.get("status") or {}).get("history") else None

    control = wait_for(answered, 180, "the labelled lieutenant's answer", operator)
    assert control["status"]["history"][0]["response"] == ANSWER
    # The labelled value reached its agent's VM; the unlabelled one reached nothing.
    assert _files_holding(local_root, LABELLED_VALUE)
    assert _files_holding(local_root, UNLABELLED_VALUE) == []
    late = admin.get("lieutenants", "late", namespace)
    assert UNLABELLED_VALUE not in json.dumps(late)
    events = admin.core.list_namespaced_event(namespace).items
    assert any("later-keys" in (e.message or "") for e in events)
    assert all(UNLABELLED_VALUE not in (e.message or "") for e in events)
    assert UNLABELLED_VALUE not in operator.log_file.read_text()


def test_a_bootprofile_reading_a_secret_outside_the_operators_namespace_is_refused(
        admin: Kube, namespace: str, operator: OperatorProcess, webhook: None) -> None:
    _secret(admin, namespace, "team-keys", UNLABELLED_VALUE, labelled=False)
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "BootProfile",
            "metadata": {"name": f"steal-{namespace}"[:63]},
            "spec": {"provider": "Local", "env": [{"name": "KEY", "valueFrom": {
                "secretKeyRef": {"namespace": namespace, "name": "team-keys",
                                 "key": "SCRIPTED_API_KEY"}}}]}}
    with pytest.raises(ApiException) as refused:
        admin.custom.create_cluster_custom_object(GROUP, VERSION, "bootprofiles", body)
    assert refused.value.status == 422
    assert _refusal(refused.value).endswith(
        f"denied the request: env[0] (KEY): valueFrom.secretKeyRef.namespace is "
        f"{namespace!r}, but a BootProfile reads Secrets only from the operator's namespace "
        f"{OPERATOR_NAMESPACE!r}: copy the Secret there and set namespace: {OPERATOR_NAMESPACE}")
