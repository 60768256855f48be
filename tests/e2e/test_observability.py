"""Observability of a real operator process: /metrics after a task, the probes, JSON logs.

Real apiserver, the operator as its own process (metrics and probes on loopback, JSON
logs), the real pi on a Local VM, the scripted model reporting token usage.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from reef_devkit.controlplane import LocalControlPlane
from reef_devkit.operator_process import OperatorProcess
from reef_devkit.scripted_model.harness import ScriptedModel
from reef_operator.api.lieutenant import PHASES
from reef_operator.constants import GROUP, LABEL_AGENT_CREDENTIALS, VERSION
from tests.conftest import Kube
from tests.e2e.conftest import wait_for

HOLDS = ("IdlePaused", "BudgetExhausted", "Expired")   # reef_lieutenants_held's reasons

pytestmark = pytest.mark.controlplane

SECRET = "sk-observability-" + "9x" * 12
TASK = "Write a haiku about metrics into haiku.txt."
ANSWER = "Counters climb at dawn; histograms bucket the night; the gauge holds its breath."
SCRIPT = f"""
tasks:
  - match: "Write a haiku about metrics"
    steps:
      - tool_calls:
          - name: write
            arguments: {{path: haiku.txt, content: "{ANSWER}\\n"}}
      - text: "{ANSWER}"
"""


@pytest.fixture(scope="module")
def operator(control_plane: LocalControlPlane, local_root: Path,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    process = OperatorProcess(control_plane.operator_kubeconfig,
                              tmp_path_factory.mktemp("operator") / "operator.log",
                              {"REEF_LOCAL_ROOT": str(local_root)},
                              metrics=True, log_format="json")
    process.start()
    yield process
    process.stop()


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(operator: OperatorProcess) -> Samples:
    answer = httpx.get(operator.metrics_url, timeout=10)
    assert answer.status_code == 200
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(answer.text)
            for s in family.samples}


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum over the series of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def test_one_task_shows_in_metrics_probes_and_json_logs(
        admin: Kube, namespace: str, operator: OperatorProcess, model: ScriptedModel) -> None:
    admin.core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="scripted-models"),
        data={"models.json": model.models_json()}))
    admin.core.create_namespaced_secret(namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name="poet-credentials",
                                     labels={LABEL_AGENT_CREDENTIALS: "true"}),
        string_data={"SCRIPTED_API_KEY": SECRET}))
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Lieutenant",
            "metadata": {"name": "poet"},
            "spec": {"role": "Write short poems", "profileRef": {"name": "local"},
                     "model": {"provider": "scripted", "id": "scripted-1"},
                     "providersConfigMapRef": {"name": "scripted-models"},
                     "credentialsSecretRef": {"name": "poet-credentials"},
                     "tasks": [{"name": "haiku", "message": TASK}]}}
    admin.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(body))

    def idle_after_the_task() -> dict[str, Any] | None:
        obj = admin.get("lieutenants", "poet", namespace)
        status = obj.get("status") or {}
        return obj if status.get("phase") == "Idle" and status.get("history") else None

    done = wait_for(idle_after_the_task, 180, "the task's answer", operator)
    assert done["status"]["history"][0]["response"] == ANSWER
    assert [t["phase"] for t in done["status"]["tasks"]] == ["Succeeded"]

    # The gauges and counters follow the status the operator wrote.
    samples = wait_for(lambda: (lambda s: s if sample(
        s, "reef_lieutenants", namespace=namespace, phase="Idle") == 1 else None)(
        scrape(operator)), 30, "the lieutenant counted as Idle", operator)
    for kind in ("VMNode", "Lieutenant", "BootProfile"):
        assert total(samples, "reef_reconcile_total", kind=kind, outcome="success") > 0, kind
        assert total(samples, "reef_reconcile_duration_seconds_count", kind=kind) > 0, kind
    assert {phase: sample(samples, "reef_lieutenants", namespace=namespace, phase=phase)
            for phase in PHASES} == {phase: int(phase == "Idle") for phase in PHASES}
    # Nothing holds it (no idle policy, no budget): every hold reason is there, at 0.
    assert {reason: sample(samples, "reef_lieutenants_held", namespace=namespace, reason=reason)
            for reason in HOLDS} == {reason: 0 for reason in HOLDS}
    assert ("reef_lieutenants_held", frozenset({("namespace", namespace),
                                                ("reason", "IdlePaused")})) in samples
    assert sample(samples, "reef_tasks_total", namespace=namespace, outcome="Succeeded") == 1
    assert total(samples, "reef_tasks_total", namespace=namespace) == 1
    assert sample(samples, "reef_task_duration_seconds_count", outcome="Succeeded") >= 1
    assert sample(samples, "reef_provider_operations_total", provider="local",
                  operation="create", outcome="ok") >= 1
    assert sample(samples, "reef_objects_in_backoff", kind="VMNode") == 0
    # pi's user and tool-result messages reached the operator, and soon.
    assert sample(samples, "reef_agent_event_lag_seconds_count") >= 2
    assert sample(samples, "reef_agent_event_lag_seconds_bucket", le="60.0") == sample(
        samples, "reef_agent_event_lag_seconds_count")

    # Tokens: exactly what the scripted model reported to pi, request by request.
    reported = [r["usage"] for r in model.requests() if r["task"] == "Write a haiku about metrics"]
    assert len(reported) == 2     # the tool call, then the answer
    tokens = {kind: sample(samples, "reef_agent_tokens_total", namespace=namespace,
                           model="scripted/scripted-1", type=kind)
              for kind in ("input", "output")}
    assert tokens == {"input": sum(u["input_tokens"] for u in reported),
                      "output": sum(u["output_tokens"] for u in reported)}
    usage = done["status"]["usage"]
    assert (usage["inputTokens"], usage["outputTokens"]) == (tokens["input"], tokens["output"])
    # The prompt cache: the second request reads the first exchange from it.
    cached = sum(u["cache_read_input_tokens"] for u in reported)
    assert cached > 0
    assert usage["cacheReadTokens"] == cached == sample(
        samples, "reef_agent_tokens_total", namespace=namespace, model="scripted/scripted-1",
        type="cache_read")

    # The task's life as Events on the Lieutenant.
    reasons = [e.reason for e in admin.core.list_namespaced_event(namespace).items
               if e.involved_object.kind == "Lieutenant"]
    assert "TaskStarted" in reasons and "TaskSucceeded" in reasons

    # The probes.
    assert httpx.get(f"{operator.health_url}/healthz", timeout=10).status_code == 200
    ready = httpx.get(f"{operator.health_url}/readyz", timeout=10)
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"operator": "ok", "startup": "ok",
                                                      "apiserver": "ok"}}

    # JSON logs: every line is one object; lines about an object name it; no secret.
    text = operator.log_file.read_text()
    lines = [line for line in text.splitlines() if not line.startswith("--- start")]
    entries = [json.loads(line) for line in lines]
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    assert any(e.get("object", {}).get("kind") == "Lieutenant"
               and e["object"].get("name") == "poet" for e in entries)
    assert SECRET not in text
