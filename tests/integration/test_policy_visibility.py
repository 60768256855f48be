"""Lieutenants, VMNodes and ReefPolicies that a policy holds, as people and tools read them
on a real apiserver: `kubectl get` (the printer columns), `kubectl reef status`, Argo CD's
health script and kstatus.

The statuses are written by the test exactly as the operator writes them (the phases and
summaries of lieutenants/phases.py and kube/conditions.py, from the catalogue); the tests
of the idle, budget, expiry and policy behaviour prove the operator writes them when it
should. No operator runs here, so nothing overwrites them.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from reef_operator.constants import GROUP, VERSION
from reef_operator.kube.conditions import Condition, merge_conditions, now_iso, summary
from reef_operator.lieutenants import phases
from reef_operator.lieutenants.holds import Hold
from tests.conftest import Kube
from tests.e2e.plugin import ok, reef
from tests.gitops import verdict

pytestmark = pytest.mark.controlplane

IDLE = Hold("Paused", "IdlePaused", "paused after 15m idle; the next task resumes it")
SPENT = Hold("Paused", "BudgetExhausted", "budget spent: 41,200 of 40,000 tokens")
EXPIRED = Hold("Destroyed", "Expired", "destroyed after 7d without tasks; history is kept")
NO_ROOM = "the namespace's ReefPolicy allows 2 running VMs and 2 run; it starts when one stops"


def _create(admin: Kube, namespace: str, kind: str, name: str, spec: dict[str, Any]) -> None:
    admin.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(
        {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name},
         "spec": spec}))


def _write_status(admin: Kube, namespace: str, plural: str, name: str,
                  conditions: list[Condition], **status: Any) -> dict[str, Any]:
    generation = admin.get(plural, name, namespace)["metadata"]["generation"]
    admin.custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, plural, name, {"status": {
            "observedGeneration": generation, **status,
            "conditions": merge_conditions(None, conditions, generation, now_iso())}})
    return admin.get(plural, name, namespace)


def _columns(table: str) -> list[dict[str, str]]:
    """kubectl's table as rows of header -> cell (an empty cell stays empty)."""
    header, *lines = table.splitlines()
    starts = [i for i, c in enumerate(header) if c != " " and (i == 0 or header[i - 1] == " ")]
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    return [{header[a:b].strip(): line[a:b].strip() for a, b in bounds} for line in lines]


def _lieutenant(admin: Kube, namespace: str, name: str, spec: dict[str, Any],
                phase: tuple[str, list[Condition]], **status: Any) -> dict[str, Any]:
    _create(admin, namespace, "Lieutenant", name, {"role": "Build the API", **spec})
    return _write_status(admin, namespace, "lieutenants", name, phase[1], phase=phase[0],
                         **status)


def test_held_lieutenants_read_for_what_they_are(admin: Kube, namespace: str) -> None:
    written = {
        "sleepy": _lieutenant(admin, namespace, "sleepy",
                              {"idlePolicy": {"pauseAfter": "15m", "destroyAfter": "7d"}},
                              phases.held(IDLE)),
        "spender": _lieutenant(admin, namespace, "spender", {"budget": {"maxTokens": 40000}},
                               phases.held(SPENT),
                               usage={"inputTokens": 30000, "outputTokens": 1200,
                                      "cacheReadTokens": 10000, "cost": 0.41}),
        "gone": _lieutenant(admin, namespace, "gone", {"idlePolicy": {"destroyAfter": "7d"}},
                            phases.destroyed(True, "gone", EXPIRED)),
        "crowded": _lieutenant(admin, namespace, "crowded", {}, ("Starting", [
            *summary("Lieutenant", "QuotaExceeded", NO_ROOM, reconciling=True),
            Condition("Lieutenant", "Working", False, "QuotaExceeded")])),
    }

    # kubectl get: the phase and, beside it, why.
    table = admin.kubectl("get", "lt", "-n", namespace).stdout.splitlines()
    assert table[0].split()[:3] == ["NAME", "PHASE", "REASON"]
    assert sorted(line.split()[:3] for line in table[1:]) == [
        ["crowded", "Starting", "QuotaExceeded"], ["gone", "Destroyed", "Expired"],
        ["sleepy", "Paused", "IdlePaused"], ["spender", "Paused", "BudgetExhausted"]]

    # kubectl reef status, run as a user runs it: the reason, the policy, the usage against
    # the budget, and the operator's message for each held lieutenant.
    lines = ok(reef(admin, "-n", namespace, "status")).splitlines()
    rows = {line.split()[0]: line for line in lines[1:5]}
    assert rows["sleepy"].split()[1:3] == ["Paused", "IdlePaused"]
    assert "pause 15m, destroy 7d" in rows["sleepy"]
    assert "41,200/40,000 tok" in rows["spender"]
    assert lines[5:] == ["", f"crowded: QuotaExceeded: {NO_ROOM}",
                         f"gone: Expired: {EXPIRED.message}",
                         f"sleepy: IdlePaused: {IDLE.message}",
                         f"spender: BudgetExhausted: {SPENT.message}"]

    # Argo CD and kstatus: asleep is healthy, a spent budget is suspended (a person may
    # raise it), expired is done, no room yet is progressing; each as the catalogue says.
    judged = {name: verdict(obj) for name, obj in written.items()}
    assert {name: (v.health, v.kstatus) for name, v in judged.items()} == {
        "sleepy": ("Healthy", "Current"), "spender": ("Suspended", "Current"),
        "gone": ("Healthy", "Current"), "crowded": ("Progressing", "InProgress")}
    assert judged["sleepy"].message == f"IdlePaused: {IDLE.message}"
    assert judged["spender"].message == f"BudgetExhausted: {SPENT.message}"
    assert judged["crowded"].message == f"QuotaExceeded: {NO_ROOM}"


def test_a_waiting_vmnode_and_the_namespace_policies_read_for_what_they_are(
        admin: Kube, namespace: str) -> None:
    _create(admin, namespace, "VMNode", "worker", {})
    node = _write_status(admin, namespace, "vmnodes", "worker",
                         summary("VMNode", "QuotaExceeded", NO_ROOM, reconciling=True))
    nodes = _columns(admin.kubectl("get", "vmn", "-n", namespace).stdout)
    assert (nodes[0]["READY"], nodes[0]["REASON"]) == ("False", "QuotaExceeded")
    assert (verdict(node).health, verdict(node).kstatus) == ("Progressing", "InProgress")

    limits = {"maxLieutenants": 5, "maxRunningVMs": 2}
    _create(admin, namespace, "ReefPolicy", "team", {"limits": limits})
    _create(admin, namespace, "ReefPolicy", "second", {"limits": limits})
    used = {"lieutenants": 3, "runningVMs": 2, "day": "2026-12-02", "costTodayUSD": 1.25}
    active = _write_status(admin, namespace, "reefpolicies", "team",
                           summary("ReefPolicy", "Active", "the namespace's policy",
                                   ready=True), used=used)
    duplicate = _write_status(
        admin, namespace, "reefpolicies", "second",
        summary("ReefPolicy", "Duplicate", "ReefPolicy team applies to this namespace; "
                "delete one of them", stalled=True))
    policies = _columns(admin.kubectl("get", "reefpolicies", "-n", namespace).stdout)
    assert list(policies[0]) == ["NAME", "REASON", "LIEUTENANTS", "MAX-LT", "RUNNING-VMS",
                                 "MAX-VMS", "COST-TODAY", "AGE"]
    assert [[row[c] for c in list(row)[:7]] for row in policies] == [
        ["second", "Duplicate", "", "5", "", "2", ""],
        ["team", "Active", "3", "5", "2", "2", "1.25"]]
    assert (verdict(active).health, verdict(active).kstatus) == ("Healthy", "Current")
    assert (verdict(duplicate).health, verdict(duplicate).kstatus) == ("Degraded", "Failed")
