"""The metrics: what each helper counts, the picture gauges, and counting only what was written."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from reef_operator import metrics
from reef_operator.agent.events import message_usage
from reef_operator.controllers.runtime import Runtime
from reef_operator.lieutenants.holds import Hold
from reef_operator.lieutenants.ledger import Ledger
from reef_operator.lieutenants.runner import LieutenantRunner
from reef_operator.lieutenants.status import StatusWriter
from reef_operator.providers.base import VmObservation, VmRequest
from reef_operator.providers.errors import NotFound
from reef_operator.providers.instrumented import InstrumentedProvider
from reef_operator.providers.ratelimit import RateLimiter
from tests.unit.fake_status_kube import FakeStatusHost


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scraped() -> dict[str, list[Any]]:
    """The exposition text as a scraper parses it: family name -> samples."""
    text = generate_latest(REGISTRY).decode()
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def test_usage_is_counted_by_model_and_token_type() -> None:
    before = {t: value("reef_agent_tokens_total", namespace="u1", model="p/m", type=t)
              for t in ("input", "output", "cache_read", "cache_write")}
    cost = value("reef_agent_cost_usd_total", namespace="u1", model="p/m")
    metrics.model_usage("u1", "p/m", {"input": 120, "output": 30, "cache_read": 1000,
                                      "cache_write": 7}, 0.25)
    assert value("reef_agent_tokens_total", namespace="u1", model="p/m",
                 type="input") - before["input"] == 120
    assert value("reef_agent_tokens_total", namespace="u1", model="p/m",
                 type="output") - before["output"] == 30
    assert value("reef_agent_tokens_total", namespace="u1", model="p/m",
                 type="cache_read") - before["cache_read"] == 1000
    assert value("reef_agent_tokens_total", namespace="u1", model="p/m",
                 type="cache_write") - before["cache_write"] == 7
    assert value("reef_agent_cost_usd_total", namespace="u1", model="p/m") - cost == 0.25


def test_event_lag_is_observed_for_messages_stamped_at_emission_only() -> None:
    count = value("reef_agent_event_lag_seconds_count")
    total = value("reef_agent_event_lag_seconds_sum")
    now = 1_700_000_010.0
    metrics.event_consumed({"type": "message_start",
                            "message": {"role": "user", "timestamp": 1_700_000_008_000}}, now)
    metrics.event_consumed({"type": "message_start",
                            "message": {"role": "toolResult", "timestamp": 1_700_000_009_500}},
                           now)
    # An assistant message is stamped when the model request starts, not at emission;
    # other events carry no time at all; a clock ahead of ours counts as no lag.
    metrics.event_consumed({"type": "message_start",
                            "message": {"role": "assistant", "timestamp": 1}}, now)
    metrics.event_consumed({"type": "agent_end"}, now)
    metrics.event_consumed({"type": "message_start",
                            "message": {"role": "user", "timestamp": 1_700_000_020_000}}, now)
    assert value("reef_agent_event_lag_seconds_count") - count == 3
    assert value("reef_agent_event_lag_seconds_sum") - total == pytest.approx(2.5)


def test_platform_outcomes_are_status_classes() -> None:
    assert [metrics.status_outcome(s) for s in (200, 204, 404, 429, 503)] == [
        "ok", "ok", "4xx", "4xx", "5xx"]


@pytest.fixture
def picture() -> Iterator[list[metrics.Picture]]:
    shown: list[metrics.Picture] = [metrics.Picture()]
    previous = metrics.PICTURE.source
    metrics.show_picture(lambda: shown[0])
    yield shown
    metrics.show_picture(previous)


def test_gauges_show_the_current_picture(picture: list[metrics.Picture]) -> None:
    picture[0] = metrics.Picture(
        lieutenant_phases={("team-a", "Working"): 2, ("team-a", "Idle"): 1,
                           ("team-b", "Error"): 1},
        in_backoff={"VMNode": 3}, backlog_bytes={"team-a": 4096})
    families = scraped()
    phases = {(s.labels["namespace"], s.labels["phase"]): s.value
              for s in families["reef_lieutenants"]}
    assert phases[("team-a", "Working")] == 2 and phases[("team-a", "Idle")] == 1
    assert phases[("team-a", "Paused")] == 0 and phases[("team-b", "Error")] == 1
    assert {phase for ns, phase in phases if ns == "team-b"} == set(metrics.LIEUTENANT_PHASES)
    assert {s.labels["kind"]: s.value for s in families["reef_objects_in_backoff"]} == {
        "VMNode": 3, "Lieutenant": 0}
    assert [(s.labels, s.value) for s in families["reef_agent_event_backlog_bytes"]] == [
        ({"namespace": "team-a"}, 4096)]

    picture[0] = metrics.Picture()   # every lieutenant gone: no stale series
    families = scraped()
    assert families["reef_lieutenants"] == [] and families["reef_agent_event_backlog_bytes"] == []


def test_held_lieutenants_are_counted_by_reason(picture: list[metrics.Picture]) -> None:
    picture[0] = metrics.Picture(
        lieutenant_phases={("team-a", "Paused"): 3, ("team-b", "Idle"): 1},
        held={("team-a", "IdlePaused"): 2, ("team-a", "BudgetExhausted"): 1})
    held = {(s.labels["namespace"], s.labels["reason"]): s.value
            for s in scraped()["reef_lieutenants_held"]}
    assert held == {("team-a", "IdlePaused"): 2, ("team-a", "BudgetExhausted"): 1,
                    ("team-a", "Expired"): 0, ("team-b", "IdlePaused"): 0,
                    ("team-b", "BudgetExhausted"): 0, ("team-b", "Expired"): 0}
    picture[0] = metrics.Picture()
    assert scraped()["reef_lieutenants_held"] == []


def _runner(name: str, state: str, hold: Hold | None) -> LieutenantRunner:
    body = {"metadata": {"name": name, "namespace": "team-a"}, "spec": {"state": state},
            "status": {"phase": "Paused" if hold else "Idle"}}
    runner = LieutenantRunner(cast(Any, SimpleNamespace()), body, asyncio.Event())
    runner.holding.hold = hold
    return runner


def test_the_runtime_counts_the_holds_that_drive_a_lieutenant() -> None:
    """A hold counts while it is what keeps the lieutenant from its spec: one the user
    paused is paused by its spec, not held for idleness."""
    idle = Hold("Paused", "IdlePaused", "paused after 15m idle")
    spent = Hold("Paused", "BudgetExhausted", "budget spent")
    expired = Hold("Destroyed", "Expired", "no task for 7d")
    rt = Runtime(config=cast(Any, SimpleNamespace(max_agent_starts=1)), kube=cast(Any, None),
                 providers={}, fleet=cast(Any, None), profiles=cast(Any, None),
                 vmnodes=cast(Any, None))
    for name, state, hold in (("a", "Running", idle), ("b", "Running", idle),
                              ("c", "Running", spent), ("d", "Paused", expired),
                              ("e", "Paused", idle), ("f", "Running", None)):
        rt.lieutenants[("team-a", name)] = _runner(name, state, hold)
    assert rt.picture().held == {("team-a", "IdlePaused"): 2,
                                 ("team-a", "BudgetExhausted"): 1, ("team-a", "Expired"): 1}


class _FakeProvider:
    name = "local"

    async def observe(self, vm_id: str) -> VmObservation:
        if vm_id == "missing":
            raise NotFound("no such VM", endpoint="local")
        return VmObservation(vm_id, "running")

    async def create(self, request: VmRequest) -> str:
        raise RuntimeError("disk full")


async def test_provider_operations_are_counted_with_bounded_outcomes() -> None:
    provider = InstrumentedProvider(_FakeProvider())  # type: ignore[arg-type]
    ok = value("reef_provider_operations_total", provider="local", operation="observe",
               outcome="ok")
    missing = value("reef_provider_operations_total", provider="local", operation="observe",
                    outcome="NotFound")
    other = value("reef_provider_operations_total", provider="local", operation="create",
                  outcome="other")
    assert (await provider.observe("vm-1")).state == "running"
    with pytest.raises(NotFound):
        await provider.observe("missing")
    with pytest.raises(RuntimeError):
        await provider.create(VmRequest(owner_uid="u", name="n", namespace="ns"))
    assert value("reef_provider_operations_total", provider="local", operation="observe",
                 outcome="ok") - ok == 1
    assert value("reef_provider_operations_total", provider="local", operation="observe",
                 outcome="NotFound") - missing == 1
    assert value("reef_provider_operations_total", provider="local", operation="create",
                 outcome="other") - other == 1


async def test_calls_waiting_for_the_rate_limiter_are_shown() -> None:
    limiter = RateLimiter(rate=5, burst=1)
    await limiter.acquire()                       # the only token
    waiting = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0.05)
    assert value("reef_platform_rate_limit_waiters") == 1
    await waiting
    assert value("reef_platform_rate_limit_waiters") == 0




ASSISTANT: dict[str, Any] = {"role": "assistant", "provider": "anthropic", "model": "claude-x",
             "content": [{"type": "text", "text": "done"}], "stopReason": "stop",
             "usage": {"input": 40, "output": 9, "cacheRead": 0, "cacheWrite": 0,
                       "cost": {"total": 0.0}}}


async def test_tasks_and_tokens_count_once_their_status_is_written() -> None:
    rt = FakeStatusHost()
    body: dict[str, Any] = {
        "metadata": {"name": "api", "namespace": "u2", "generation": 1},
        "spec": {"tasks": [{"name": "one", "message": "do it"},
                           {"name": "two", "message": "then this"}]}}
    ledger = Ledger.load(body["spec"], {})
    writer = StatusWriter(rt, body, ledger, deleting=lambda: False)
    tasks = value("reef_tasks_total", namespace="u2", outcome="Succeeded")
    failed = value("reef_tasks_total", namespace="u2", outcome="Failed")
    tokens = value("reef_agent_tokens_total", namespace="u2", model="anthropic/claude-x",
                   type="input")
    one, two = ledger.tasks
    ledger.mark_sent(one, "prompt", "task-one")
    ledger.user_message("do it")
    ledger.assistant_message(ASSISTANT)
    writer.usage_read("anthropic/claude-x", message_usage(ASSISTANT))
    ledger.settle()

    rt.kube.unreachable = True                 # the status write fails: nothing is announced yet
    with pytest.raises(OSError):
        await writer.flush(force=True)
    assert rt.events == []
    assert value("reef_tasks_total", namespace="u2", outcome="Succeeded") == tasks

    rt.kube.unreachable = False
    await writer.flush(force=True)
    await writer.flush(force=True)      # nothing new: nothing counted twice
    assert [reason for _, reason, _ in rt.events] == ["TaskStarted", "TaskSucceeded"]
    assert value("reef_tasks_total", namespace="u2", outcome="Succeeded") - tasks == 1
    assert value("reef_agent_tokens_total", namespace="u2", model="anthropic/claude-x",
                 type="input") - tokens == 40

    ledger.mark_sent(two, "prompt", "task-two")
    ledger.fail_queued("task-two", "No API key found for anthropic")
    await writer.flush(force=True)
    kind, reason, message = rt.events[-1]
    assert (kind, reason) == ("Warning", "TaskFailed")
    assert "No API key found for anthropic" in message
    assert value("reef_tasks_total", namespace="u2", outcome="Failed") - failed == 1
