"""Budgets and expiry with a real operator, apiserver, Local VMs, pi and the scripted model.

A token budget smaller than one task's usage: the task finishes, the VM pauses with the
agent's memory (BudgetExhausted), the next task waits with a note while a lieutenant
without a budget beside it answers the same two tasks; raising the budget delivers it, in
the same conversation. `destroyAfter` destroys an idle lieutenant for good (Expired), its
history and records kept and a later task refused with a note, also after an operator
restart; `ttlSecondsAfterDestroyed`
then deletes the object, its TaskRecords going with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from reef_devkit.controlplane import LocalControlPlane
from reef_devkit.operator_process import OperatorProcess
from reef_operator.constants import GROUP, LABEL_LIEUTENANT, VERSION
from reef_operator.kube.conditions import find_condition
from tests.conftest import Kube
from tests.e2e.conftest import apply_lieutenant, scraped, wait_for
from tests.e2e.plugin import ok, reef

pytestmark = pytest.mark.controlplane

FIRST_ANSWER = "Scaffolded the service. " * 20     # ~120 tokens of output
SCRIPT = f"""
tasks:
  - match: "Scaffold the service"
    steps:
      - text: "{FIRST_ANSWER}"
  - match: "Add a health endpoint"
    expect_in_conversation: ["Scaffold the service", "Scaffolded the service."]
    steps:
      - text: "Added /healthz next to the scaffold."
"""
FIRST = {"name": "scaffold", "message": "Scaffold the service, please"}
SECOND = {"name": "health", "message": "Add a health endpoint"}


@pytest.fixture(scope="module")
def operator(control_plane: LocalControlPlane, local_root: Path,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    process = OperatorProcess(control_plane.operator_kubeconfig,
                              tmp_path_factory.mktemp("operator") / "operator.log",
                              {"REEF_LOCAL_ROOT": str(local_root)}, metrics=True)
    process.start()
    yield process
    process.stop()


def _patch(admin: Kube, namespace: str, name: str, spec: dict[str, Any]) -> None:
    admin.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "lieutenants", name,
                                                {"spec": spec})


def _status(admin: Kube, namespace: str, name: str) -> dict[str, Any]:
    return dict(admin.get("lieutenants", name, namespace).get("status") or {})


def _reason(status: dict[str, Any], type_: str = "Ready") -> str:
    return str(find_condition({"status": status}, type_).get("reason", ""))


def _tasks(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in status.get("tasks", [])}


def _events(admin: Kube, namespace: str, name: str, reason: str) -> list[Any]:
    return [e for e in admin.core.list_namespaced_event(namespace).items
            if e.reason == reason and e.involved_object.name == name]


def _budget_exhausted_total(operator: OperatorProcess, namespace: str, limit: str) -> float:
    return scraped(operator, "reef_lieutenant_budget_exhausted_total", namespace=namespace,
                   limit=limit)


def _held(operator: OperatorProcess, namespace: str, reason: str) -> float:
    """reef_lieutenants_held: the lieutenants a policy holds now, as a scrape reads it."""
    return scraped(operator, "reef_lieutenants_held", namespace=namespace, reason=reason)


def _records(admin: Kube, namespace: str, lieutenant: str) -> list[dict[str, Any]]:
    listing = cast(dict[str, Any], admin.custom.list_namespaced_custom_object(
        GROUP, VERSION, namespace, "taskrecords",
        label_selector=f"{LABEL_LIEUTENANT}={lieutenant}"))
    return cast(list[dict[str, Any]], listing["items"])


def _answered(admin: Kube, namespace: str, name: str,
              operator: OperatorProcess) -> dict[str, Any]:
    return cast(dict[str, Any], wait_for(
        lambda: (lambda s: s if s.get("history") and s.get("vmId") else None)(
            _status(admin, namespace, name)), 180, f"{name} answered its task", operator))


def test_a_spent_token_budget_pauses_after_the_task_and_raising_it_delivers_the_next(
        admin: Kube, scripted: str, operator: OperatorProcess) -> None:
    ns = scripted
    apply_lieutenant(admin, ns, "capped", [FIRST, SECOND], budget={"maxTokens": 50})
    apply_lieutenant(admin, ns, "control", [FIRST, SECOND])

    # The control answers both tasks: the capped one had the same time to do so.
    wait_for(lambda: len(_status(admin, ns, "control").get("history", [])) == 2, 180,
             "the control lieutenant answered both tasks", operator)
    paused = wait_for(lambda: (lambda s: s if s.get("phase") == "Paused" else None)(
        _status(admin, ns, "capped")), 120, "the capped lieutenant paused", operator)
    assert [h["task"] for h in paused["history"]] == ["scaffold"]
    assert _reason(paused) == "BudgetExhausted"
    assert _reason(paused, "Paused") == "BudgetExhausted"
    message = find_condition({"status": paused}, "Ready")["message"]
    assert "spec.budget.maxTokens 50" in message and "raise spec.budget.maxTokens" in message
    waiting = _tasks(paused)["health"]
    assert waiting["phase"] == "Pending"
    assert waiting["note"].startswith("waiting for the budget: ")
    # The platform froze the VM; the spec still says Running (GitOps stays in sync).
    node = admin.get("vmnodes", "capped", ns)
    assert node["status"]["vmState"] == "paused"
    assert admin.get("lieutenants", "capped", ns)["spec"].get("state", "Running") == "Running"
    exhausted = _events(admin, ns, "capped", "BudgetExhausted")
    assert len(exhausted) == 1 and exhausted[0].type == "Warning"
    assert "maxTokens" in exhausted[0].message
    assert _budget_exhausted_total(operator, ns, "maxTokens") == 1
    assert _held(operator, ns, "BudgetExhausted") == 1      # the control is not held
    # kubectl reef status, as a user runs it: the reason, the usage against the budget
    # and the operator's message.
    table = ok(reef(admin, "-n", ns, "status")).splitlines()
    capped = next(line for line in table if line.startswith("capped "))
    assert capped.split()[1:3] == ["Paused", "BudgetExhausted"] and "/50 tok" in capped
    assert f"capped: BudgetExhausted: {message}" in table

    _patch(admin, ns, "capped", {"budget": {"maxTokens": 1_000_000}})
    resumed = wait_for(lambda: (lambda s: s if len(s.get("history", [])) == 2
                                and s.get("phase") == "Idle" else None)(
        _status(admin, ns, "capped")), 180, "the waiting task answered", operator)
    # The script checked that the first task is still in the conversation.
    assert resumed["history"][-1]["response"] == "Added /healthz next to the scaffold."
    assert _tasks(resumed)["health"]["phase"] == "Succeeded"
    assert "budget" not in _tasks(resumed)["health"].get("note", "")
    assert _reason(resumed) == "SessionReady"
    assert _held(operator, ns, "BudgetExhausted") == 0
    assert len(_events(admin, ns, "capped", "BudgetExhausted")) == 1


def test_destroy_after_expires_for_good_and_ttl_deletes_the_object(
        admin: Kube, scripted: str, operator: OperatorProcess, local_root: Path) -> None:
    ns = scripted
    apply_lieutenant(admin, ns, "kept", [FIRST], idlePolicy={"destroyAfter": "15s"})
    apply_lieutenant(admin, ns, "gone", [FIRST], idlePolicy={"destroyAfter": "15s"},
                     ttlSecondsAfterDestroyed=5)
    vm_ids = {name: _answered(admin, ns, name, operator)["vmId"] for name in ("kept", "gone")}

    expired = wait_for(lambda: (lambda s: s if s.get("phase") == "Destroyed"
                                and _reason(s) == "Expired" else None)(
        _status(admin, ns, "kept")), 120, "kept expired", operator)
    assert expired["expiredAt"] and expired["destroyedAt"]
    assert [h["task"] for h in expired["history"]] == ["scaffold"]
    assert [r["spec"]["task"] for r in _records(admin, ns, "kept")] == ["scaffold"]
    assert admin.get("lieutenants", "kept", ns)["spec"].get("state", "Running") == "Running"
    wait_for(lambda: not (local_root / vm_ids["kept"]).exists(), 60, "kept's VM released",
             operator)
    assert [e.type for e in _events(admin, ns, "kept", "Expired")] == ["Normal"]

    # A task appended after expiry is not delivered: it says why and what to do.
    _patch(admin, ns, "kept", {"tasks": [FIRST, SECOND]})
    refused = wait_for(lambda: (lambda s: s if _tasks(s).get("health", {}).get("note")
                                else None)(_status(admin, ns, "kept")), 60,
                       "the late task noted", operator)
    late = _tasks(refused)["health"]
    assert late["phase"] == "Pending"
    assert late["note"].startswith("not delivered: the lieutenant expired")
    assert "new lieutenant" in late["note"]
    assert refused["phase"] == "Destroyed" and _reason(refused) == "Expired"

    # A crashed and restarted operator does not bring it back either: a task appended
    # after the restart is refused the same way, the VM stays released.
    operator.restart()
    third = {"name": "third", "message": "Add a health endpoint, again"}
    _patch(admin, ns, "kept", {"tasks": [FIRST, SECOND, third]})
    after_restart = wait_for(lambda: (lambda s: s if _tasks(s).get("third", {}).get("note")
                                      else None)(_status(admin, ns, "kept")), 60,
                             "the task after the restart noted", operator)
    assert _tasks(after_restart)["third"]["phase"] == "Pending"
    assert _tasks(after_restart)["third"]["note"] == late["note"]
    assert after_restart["phase"] == "Destroyed" and _reason(after_restart) == "Expired"
    assert not (local_root / vm_ids["kept"]).exists()
    assert [e.type for e in _events(admin, ns, "kept", "Expired")] == ["Normal"]

    # The other one is deleted 5s after it became Destroyed; its records go with it.
    wait_for(lambda: not any(item["metadata"]["name"] == "gone" for item in cast(
        dict[str, Any], admin.custom.list_namespaced_custom_object(
            GROUP, VERSION, ns, "lieutenants"))["items"]), 120, "gone deleted", operator)
    assert not (local_root / vm_ids["gone"]).exists()
    assert [e.type for e in _events(admin, ns, "gone", "Expired")] == ["Normal"]
    wait_for(lambda: not _records(admin, ns, "gone"), 60, "gone's records collected",
             operator)
    # Kept expired and is still served; the deleted one no longer counts.
    wait_for(lambda: _held(operator, ns, "Expired") == 1, 30, "one expired lieutenant held",
             operator)
