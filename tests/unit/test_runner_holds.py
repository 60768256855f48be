"""The runner acting on the budget and expiry holds, against an apiserver in memory: the
order of its writes (expiry is written before the VM is released), each hold's Event
posted once, the budget metric, the notes on held tasks, and the object deleted when
ttlSecondsAfterDestroyed is over."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

from prometheus_client import REGISTRY

from reef_operator.lieutenants.runner import LieutenantRunner
from tests.unit.fake_status_kube import FakeStatusHost, FakeStatusKube

NS = "team-a"
LONG_AGO = "2026-01-01T00:00:00Z"


class FakeCustom:
    """The VMNode patches the runner sends, in the same call list as the status writes."""

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def patch_namespaced_custom_object(self, group: str, version: str, namespace: str,
                                       plural: str, name: str, body: dict[str, Any]) -> None:
        self.calls.append(f"patch {plural} {body['spec']['state']}")


def _runner(spec: dict[str, Any], status: dict[str, Any],
            node_state: str = "Running", node_conditions: list[dict[str, Any]] | None = None
            ) -> tuple[LieutenantRunner, FakeStatusHost, dict[str, Any]]:
    kube = FakeStatusKube()
    kube.custom = FakeCustom(kube.calls)  # type: ignore[attr-defined]
    host = FakeStatusHost(kube)
    node = {"metadata": {"uid": "uid-node", "generation": 1,
                         "ownerReferences": [{"uid": "uid-l"}]},
            "spec": {"state": node_state, "category": "Lieutenant"},
            "status": {"observedGeneration": 1, "conditions": node_conditions or []}}
    host.vmnode_bodies[(NS, "l")] = node
    rt: Any = SimpleNamespace(kube=kube, vmnode_bodies=host.vmnode_bodies,
                              post_event=host.post_event, policy=lambda namespace: None)
    body = {"metadata": {"name": "l", "namespace": NS, "uid": "uid-l", "generation": 1,
                         "creationTimestamp": LONG_AGO},
            "spec": {"role": "r", **spec}, "status": status}
    return LieutenantRunner(rt, body, asyncio.Event()), host, node


def _conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status.get("conditions", [])}


async def test_expiry_is_written_before_the_vm_goes_then_announced_once_then_deleted() -> None:
    runner, host, node = _runner(
        {"idlePolicy": {"destroyAfter": "15s"}, "ttlSecondsAfterDestroyed": 60},
        {"phase": "Idle", "lastActivityTime": LONG_AGO})
    kube = host.kube

    await runner.reconcile()
    assert kube.calls[:2] == ["patch_status", "patch vmnodes Destroyed"]
    assert kube.patches[0]["expiredAt"]
    assert host.events == []        # not yet: the VM is still being released

    # The VMNode released the VM; the watch brought back what was written.
    node["spec"]["state"] = "Destroyed"
    node["status"]["conditions"] = [{"type": "Ready", "status": "False",
                                     "reason": "Destroyed"}]
    cast(dict[str, Any], runner.body)["status"] = kube.patches[-1]
    wait = await runner.reconcile()
    written = kube.patches[-1]
    assert written["phase"] == "Destroyed"
    assert _conditions(written)["Ready"]["reason"] == "Expired"
    assert written["expiredAt"] == kube.patches[0]["expiredAt"] and written["destroyedAt"]
    assert 55 < wait <= 60          # woken when the ttl is over
    assert [(kind, reason) for kind, reason, _ in host.events] == [("Normal", "Expired")]

    await runner.reconcile()
    assert len(host.events) == 1    # announced once
    assert not any(call.startswith("delete") for call in kube.calls)

    runner.writer.marks["destroyedAt"] = LONG_AGO     # the ttl is over
    await runner.reconcile()
    assert kube.calls[-1] == "delete l"


async def test_an_expired_lieutenant_stays_destroyed_and_notes_a_later_task() -> None:
    runner, host, _ = _runner(
        {"idlePolicy": {"destroyAfter": "1h"}, "tasks": [{"name": "late", "message": "go"}]},
        {"phase": "Destroyed", "expiredAt": LONG_AGO,
         "conditions": [{"type": "Ready", "status": "False", "reason": "Expired"}]},
        node_state="Destroyed",
        node_conditions=[{"type": "Ready", "status": "False", "reason": "Destroyed"}])
    await runner.reconcile()
    written = host.kube.patches[-1]
    assert written["phase"] == "Destroyed"
    assert written["tasks"][0]["phase"] == "Pending"
    assert written["tasks"][0]["note"].startswith("not delivered: the lieutenant expired")
    assert not any(call.startswith("patch vmnodes") for call in host.kube.calls)
    assert host.events == []        # announced before the restart


def _exhausted(limit: str) -> float:
    return REGISTRY.get_sample_value("reef_lieutenant_budget_exhausted_total",
                                     {"namespace": NS, "limit": limit}) or 0.0


async def test_a_spent_budget_pauses_announces_once_and_its_raise_lifts_the_notes() -> None:
    paused_node = [{"type": "Paused", "status": "True", "reason": "Paused"},
                   {"type": "Ready", "status": "False", "reason": "Paused"}]
    runner, host, _ = _runner(
        {"budget": {"maxTokens": 100}, "tasks": [{"name": "next", "message": "go"}]},
        {"phase": "Idle", "usage": {"inputTokens": 60, "outputTokens": 40}},
        node_state="Paused", node_conditions=paused_node)
    before = _exhausted("maxTokens")

    await runner.reconcile()
    written = host.kube.patches[-1]
    assert written["phase"] == "Paused"
    assert _conditions(written)["Ready"]["reason"] == "BudgetExhausted"
    assert _conditions(written)["Paused"]["reason"] == "BudgetExhausted"
    assert written["tasks"][0]["phase"] == "Pending"
    assert written["tasks"][0]["note"].startswith("waiting for the budget: 100 tokens")
    assert [(kind, reason) for kind, reason, _ in host.events] == [
        ("Warning", "BudgetExhausted")]
    assert "raise spec.budget.maxTokens" in host.events[0][2]
    assert _exhausted("maxTokens") == before + 1

    await runner.reconcile()
    assert len(host.events) == 1 and _exhausted("maxTokens") == before + 1

    cast(dict[str, Any], runner.body)["spec"]["budget"] = {"maxTokens": 1000}
    await runner.reconcile()
    assert host.kube.calls[-2:] == ["patch vmnodes Running", "patch_status"]
    assert "note" not in host.kube.patches[-1]["tasks"][0]


async def test_the_usage_in_memory_holds_the_next_task_before_its_status_is_written() -> None:
    runner, _, _ = _runner({"budget": {"maxTokens": 100}}, {"phase": "Working"})
    runner.holding.refresh()
    assert runner.held() is None
    # The run's usage was read from pi's events; the status saying so is not written yet.
    runner.ledger.usage.output_tokens = 100
    runner.holding.refresh()
    held = runner.held()
    assert held is not None and held.reason == "BudgetExhausted"
    assert runner.pausing()         # so no further task is delivered


async def test_a_lieutenant_destroyed_by_its_spec_is_deleted_after_its_ttl() -> None:
    released = [{"type": "Ready", "status": "False", "reason": "Destroyed"}]
    runner, host, _ = _runner({"state": "Destroyed", "ttlSecondsAfterDestroyed": 0},
                              {"phase": "Destroyed", "destroyedAt": LONG_AGO},
                              node_state="Destroyed", node_conditions=released)
    await runner.reconcile()
    assert host.kube.calls[-1] == "delete l"
    assert host.events == []        # destroyed as asked: no Expired Event
