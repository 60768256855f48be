"""A namespace's ReefPolicy, against the real apiserver with the operator's admission webhook,
the operator as its own process, Local VMs, the real pi and the scripted model.

What admission can decide is refused with a message naming the policy, the limit and the
figure; what it cannot (running VMs, lieutenants that raced the webhook or came before the
policy) waits with QuotaExceeded until there is room, which is proved by watching status:
the waiting lieutenant's task is answered only after the other one is paused or deleted.
The day's cost the policy's status holds is what pauses the namespace (BudgetExhausted).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from reef_devkit.operator_process import OperatorProcess
from reef_devkit.scripted_model.harness import ScriptedModel
from reef_operator.constants import ANNOTATION_PAUSED, GROUP, VERSION
from tests.conftest import Kube, as_tenant
from tests.e2e.conftest import wait_for
from tests.e2e.plugin import ok, reef

pytestmark = pytest.mark.controlplane
WEBHOOK = True

SCRIPT = """
tasks:
  - match: "Say hello"
    steps:
      - text: "Hello from the lieutenant."
"""


def _policy(name: str, **limits: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ReefPolicy",
            "metadata": {"name": name},
            "spec": {"limits": limits,
                     "defaults": {"idlePolicy": {"pauseAfter": "15m"}}}}


def _lieutenant(name: str, tasks: tuple[str, ...] = (), **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Lieutenant",
            "metadata": {"name": name},
            "spec": {"role": "r", "profileRef": {"name": "local"},
                     "model": {"provider": "scripted", "id": "scripted-1"},
                     "providersConfigMapRef": {"name": "scripted-models"},
                     "tasks": [{"name": t, "message": "Say hello"} for t in tasks], **spec}}


def _create(kube: Kube, namespace: str, plural: str, body: dict[str, Any]) -> None:
    kube.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)


def _refused(kube: Kube, namespace: str, plural: str, body: dict[str, Any]) -> str:
    """The webhook's message refusing the create."""
    with pytest.raises(ApiException) as refused:
        _create(kube, namespace, plural, body)
    assert refused.value.status == 422, refused.value.body
    return str(json.loads(refused.value.body or "{}").get("message", ""))


def _ready(obj: dict[str, Any]) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or []
                 if c["type"] == "Ready"), {})


def _answered(admin: Kube, namespace: str, name: str) -> list[str]:
    status = admin.get("lieutenants", name, namespace).get("status") or {}
    return [h["task"] for h in status.get("history") or []]


@pytest.fixture
def webhook(admin: Kube, operator: OperatorProcess) -> None:
    """The operator serves the policy checks (kopf keeps its webhook configuration)."""
    admission = client.AdmissionregistrationV1Api(admin.api)

    def configured() -> bool:
        return "reefpolicy-is-the-only-one" in json.dumps(
            [admin.api.sanitize_for_serialization(c)
             for c in admission.list_validating_webhook_configuration().items])

    wait_for(configured, 60, "the operator's ValidatingWebhookConfiguration", operator)


def _priced(admin: Kube, namespace: str, model: ScriptedModel) -> None:
    """The scripted model at $1000 per million tokens, so pi reports a cost."""
    models = json.loads(model.models_json())
    for entry in models["providers"]["scripted"]["models"]:
        entry["cost"] = {"input": 1000, "output": 1000, "cacheRead": 0, "cacheWrite": 0}
    admin.core.patch_namespaced_config_map("scripted-models", namespace,
                                           {"data": {"models.json": json.dumps(models)}})


def _used(admin: Kube, namespace: str, name: str) -> dict[str, Any]:
    return dict((admin.get("reefpolicies", name, namespace).get("status") or {}).get("used")
                or {})


def test_a_policy_refuses_at_admission_what_it_does_not_allow(
        admin: Kube, scripted: str, operator: OperatorProcess, webhook: None) -> None:
    namespace = scripted
    _create(admin, namespace, "reefpolicies", _policy(
        "limits", maxLieutenants=2, allowedProfiles=["local"],
        allowedModelProviders=["scripted"], maxVCPUPerVM=2))
    wait_for(lambda: _ready(admin.get("reefpolicies", "limits", namespace)).get("reason")
             == "Active", 60, "the policy is Active", operator)

    message = _refused(admin, namespace, "reefpolicies", _policy("second"))
    assert "already has ReefPolicy 'limits'" in message and "edit that one" in message

    message = _refused(admin, namespace, "lieutenants",
                       _lieutenant("elsewhere", profileRef={"name": "default"}))
    assert f"BootProfile 'default' is not allowed by ReefPolicy {namespace}/limits" in message
    assert "limits.allowedProfiles: local" in message

    message = _refused(admin, namespace, "lieutenants", _lieutenant(
        "other-model", model={"provider": "openai", "id": "gpt"}))
    assert "model provider 'openai' is not allowed" in message
    assert "allowedModelProviders: scripted" in message

    message = _refused(admin, namespace, "vmnodes", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "VMNode", "metadata": {"name": "big"},
        "spec": {"profileRef": {"name": "local"}, "resources": {"vcpu": 8}}})
    assert "8 vCPU (resources.vcpu)" in message and "limits.maxVCPUPerVM (2 vCPU)" in message

    for name in ("first", "second"):
        _create(admin, namespace, "lieutenants", _lieutenant(name))
    wait_for(lambda: _used(admin, namespace, "limits").get("lieutenants") == 2, 60,
             "the policy counts two lieutenants", operator)
    message = _refused(admin, namespace, "lieutenants", _lieutenant("third"))
    assert f"ReefPolicy {namespace}/limits allows 2 lieutenants (limits.maxLieutenants) " \
        "and 2 already exist" in message
    # An edit of an admitted lieutenant is not a new one.
    admin.custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "lieutenants", "first",
        {"spec": {"tasks": [{"name": "t1", "message": "Say hello"}]}})

    out = ok(reef(admin, "-n", namespace, "policy"))
    assert f"ReefPolicy {namespace}/limits" in out
    assert "lieutenants     2/2" in out and "profiles        local" in out
    assert "vCPU per VM     at most 2" in out and "Defaults: idlePolicy pauseAfter=15m" in out
    as_data = yaml.safe_load(ok(reef(admin, "-n", namespace, "policy", "-o", "yaml")))
    assert as_data["used"]["lieutenants"] == 2 and as_data["limits"]["maxLieutenants"] == 2
    empty = f"{namespace}-none"
    assert f"no ReefPolicy in namespace {empty}" in ok(reef(admin, "-n", empty, "policy"))


def test_over_max_running_vms_a_lieutenant_waits_until_another_is_paused(
        admin: Kube, scripted: str, operator: OperatorProcess, model: ScriptedModel) -> None:
    namespace = scripted
    _priced(admin, namespace, model)
    _create(admin, namespace, "reefpolicies", _policy("vms", maxRunningVMs=1))
    wait_for(lambda: _ready(admin.get("reefpolicies", "vms", namespace)).get("reason")
             == "Active", 60, "the policy is Active", operator)
    _create(admin, namespace, "lieutenants", _lieutenant("early", ("t1",)))
    wait_for(lambda: _answered(admin, namespace, "early") == ["t1"], 120,
             "the first lieutenant answers", operator)
    _create(admin, namespace, "lieutenants", _lieutenant("late", ("t1",)))

    def waits() -> bool:
        lieutenant = admin.get("lieutenants", "late", namespace)
        nodes = cast(dict[str, Any], admin.custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, "vmnodes", field_selector="metadata.name=late"))
        node: dict[str, Any] = next(iter(nodes["items"]), {})
        return (_ready(lieutenant).get("reason") == "QuotaExceeded" and
                (lieutenant.get("status") or {}).get("phase") == "Starting" and
                _ready(node).get("reason") == "QuotaExceeded")
    wait_for(waits, 60, "the second lieutenant waits, QuotaExceeded", operator)
    node = admin.get("vmnodes", "late", namespace)
    assert not (node.get("status") or {}).get("vmId")
    reconciling = next(c for c in node["status"]["conditions"] if c["type"] == "Reconciling")
    assert reconciling["status"] == "True"
    assert f"ReefPolicy {namespace}/vms allows 1 running VMs" in reconciling["message"]
    assert "late" in ok(reef(admin, "-n", namespace, "policy"))   # listed as waiting
    wait_for(lambda: _used(admin, namespace, "vms").get("runningVMs") == 1, 60,
             "the policy counts one running VM", operator)

    admin.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "lieutenants",
                                                "early", {"spec": {"state": "Paused"}})
    wait_for(lambda: _answered(admin, namespace, "late") == ["t1"], 120,
             "the second lieutenant starts and answers once the first is paused", operator)
    early = admin.get("vmnodes", "early", namespace)
    assert early["status"]["vmState"] == "paused"

    # The day's cost is what pi reported for both tasks (the model is priced here).
    def cost(name: str) -> float:
        history = (admin.get("lieutenants", name, namespace).get("status") or {})["history"]
        return sum(float(h["usage"]["cost"]) for h in history)
    spent = cost("early") + cost("late")
    assert spent > 0
    wait_for(lambda: abs(_used(admin, namespace, "vms").get("costTodayUSD", -1) - spent)
             < 1e-6, 60, f"the policy shows ${spent} spent today", operator)


def test_lieutenants_that_came_before_the_policy_wait_for_room(
        admin: Kube, scripted: str, operator: OperatorProcess, model: ScriptedModel) -> None:
    """Admission cannot refuse what exists already (nor what raced it, or came while the
    webhook was down): the younger lieutenants wait, QuotaExceeded, and start when an older
    one is deleted."""
    namespace = scripted
    held = {"annotations": {ANNOTATION_PAUSED: "until the policy is in"}}
    for name in ("older", "younger"):
        body = _lieutenant(name, ("t1",))
        body["metadata"].update(held)
        _create(admin, namespace, "lieutenants", body)
    _create(admin, namespace, "reefpolicies", _policy("few", maxLieutenants=1))
    wait_for(lambda: _used(admin, namespace, "few").get("lieutenants") == 2, 60,
             "the policy counts both lieutenants", operator)
    for name in ("younger", "older"):
        admin.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "lieutenants", name,
            {"metadata": {"annotations": {ANNOTATION_PAUSED: None}}})

    def younger_waits() -> bool:
        ready = _ready(admin.get("lieutenants", "younger", namespace))
        return ready.get("reason") == "QuotaExceeded" and \
            "allows 1 lieutenants (limits.maxLieutenants)" in ready.get("message", "")
    wait_for(younger_waits, 60, "the younger lieutenant waits, QuotaExceeded", operator)
    wait_for(lambda: _answered(admin, namespace, "older") == ["t1"], 120,
             "the older lieutenant answers", operator)
    # While the older one started and answered, the younger made no VMNode.
    nodes = admin.kubectl("get", "vmnodes", "-n", namespace, "-o", "name").stdout
    assert "vmnode.reef.vers.sh/older" in nodes and "younger" not in nodes

    admin.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "lieutenants",
                                                 "older")
    wait_for(lambda: _answered(admin, namespace, "younger") == ["t1"], 120,
             "the younger lieutenant starts once the older one is gone", operator)


def test_a_tenant_reads_its_policy_but_cannot_write_it(admin: Kube, namespace: str) -> None:
    """The Role docs/security.md recommends for a team: everything on its lieutenants,
    VMNodes and TaskRecords, and only reading on ReefPolicies."""
    _create(admin, namespace, "reefpolicies", _policy("team", maxLieutenants=3))
    reader = as_tenant(admin, namespace, "team-member", resources=("reefpolicies",),
                       verbs=("get", "list", "watch"))
    assert reader.get("reefpolicies", "team", namespace)["spec"]["limits"] == {
        "maxLieutenants": 3}
    custom = reader.custom
    attempts: list[Callable[[], object]] = [
        lambda: custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "reefpolicies", "team",
            {"spec": {"limits": {"maxLieutenants": 100}}}),
        lambda: custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "reefpolicies", _policy("mine")),
        lambda: custom.delete_namespaced_custom_object(
            GROUP, VERSION, namespace, "reefpolicies", "team")]
    for attempt in attempts:
        with pytest.raises(ApiException) as refused:
            attempt()
        assert refused.value.status == 403
    assert admin.get("reefpolicies", "team", namespace)["spec"]["limits"] == {
        "maxLieutenants": 3}


def test_the_days_cost_reaching_the_limit_pauses_the_namespace_until_it_is_raised(
        admin: Kube, scripted: str, operator: OperatorProcess, model: ScriptedModel) -> None:
    """The figure the policy's status holds is what the budget hold reads: once the day's
    cost reaches costPerDayUSD the lieutenant pauses after its task (BudgetExhausted) and a
    new task waits with a note; raising the limit delivers it."""
    namespace = scripted
    _priced(admin, namespace, model)
    _create(admin, namespace, "reefpolicies", _policy("daily", costPerDayUSD=0.000001))
    _create(admin, namespace, "lieutenants", _lieutenant("spender", ("t1",)))
    wait_for(lambda: _answered(admin, namespace, "spender") == ["t1"], 120,
             "the lieutenant answers its first task", operator)

    def paused_for_the_day() -> bool:
        lieutenant = admin.get("lieutenants", "spender", namespace)
        return _ready(lieutenant).get("reason") == "BudgetExhausted" and \
            (lieutenant.get("status") or {}).get("phase") == "Paused"
    wait_for(paused_for_the_day, 60, "the lieutenant pauses, BudgetExhausted", operator)
    assert _used(admin, namespace, "daily")["costTodayUSD"] > 0.000001
    message = _ready(admin.get("lieutenants", "spender", namespace))["message"]
    assert "limits.costPerDayUSD" in message
    assert admin.get("vmnodes", "spender", namespace)["status"]["vmState"] == "paused"

    admin.custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "lieutenants", "spender",
        {"spec": {"tasks": [{"name": "t1", "message": "Say hello"},
                            {"name": "t2", "message": "Say hello"}]}})

    def held_with_a_note() -> bool:
        tasks = (admin.get("lieutenants", "spender", namespace).get("status") or {}).get(
            "tasks") or []
        return any(t.get("name") == "t2" and t.get("phase") == "Pending" and t.get("note")
                   for t in tasks)
    wait_for(held_with_a_note, 60, "the new task waits with a note", operator)
    assert _answered(admin, namespace, "spender") == ["t1"]

    admin.custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "reefpolicies", "daily",
        {"spec": {"limits": {"costPerDayUSD": 100}}})
    wait_for(lambda: _answered(admin, namespace, "spender") == ["t1", "t2"], 120,
             "the raised limit resumes the lieutenant and delivers the task", operator)
