"""A long conversation: pi compacts it, the lieutenant reports it, the next task keeps it.

Real apiserver, the operator as its own process, the real pi on a Local VM and the
scripted model. Tasks two to five carry long messages (about 5,100 tokens each) and the
model's context window in the providers ConfigMap is small, so after the fifth task pi
compacts (after the run's `agent_end`): it keeps the newest 20,000 tokens (its default:
tasks two to five), asks the model to summarise what is older (task one; answered by the
scripted model's default summary, which quotes it) and puts the summary at the head of
the context, where task six finds it. The spec stays within its budget (about 82 KB of
the 96 KiB spec.tasks may hold).
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from kubernetes import client

from reef_devkit.operator_process import OperatorProcess
from reef_devkit.scripted_model.harness import ScriptedModel
from reef_devkit.scripted_model.script import SUMMARY_TASK
from reef_operator.api.budget import SPEC_TASKS_BUDGET, spec_tasks_bytes
from reef_operator.constants import GROUP, VERSION
from reef_operator.lieutenants.inputs import CLOSING_INSTRUCTION
from tests.conftest import Kube
from tests.e2e.conftest import wait_for
from tests.gitops import Recorder

pytestmark = pytest.mark.controlplane

PI_RESERVE_TOKENS = 16384          # pi's default compaction.reserveTokens
# pi compacts once a run's context passes window - reserve = 18,000 tokens: the fifth
# task's run does (about 20,500), the fourth does not (about 15,400).
CONTEXT_WINDOW = PI_RESERVE_TOKENS + 18_000
NAMES = ("one", "two", "three", "four", "five", "six")
LONG = ("two", "three", "four", "five")


def _answer(name: str) -> str:
    return f"Answer {name}: done."


def _first_line(name: str) -> str:
    return f"Task {name}: continue the long project."


def _message(name: str) -> str:
    filler = "Keep every detail of the plan in mind. " * 525 if name in LONG else ""
    return f"{_first_line(name)}\n{filler}"


# The summary streams for two seconds: the operator sees pi compacting (get_state says
# isCompacting) and must hold the task until it is over.
SCRIPT = yaml.safe_dump({
    "tasks": [{"match": _first_line(n), "steps": [{"text": _answer(n)}]} for n in NAMES],
    "summary": {"delay": 0.5, "chunks": 4}})


def test_a_session_compacts_reports_it_and_the_next_task_carries_the_summary(
        admin: Kube, namespace: str, operator: OperatorProcess, model: ScriptedModel) -> None:
    admin.core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="scripted-models"),
        data={"models.json": model.models_json(context_window=CONTEXT_WINDOW)}))
    spec = {"role": "Work on a long project", "profileRef": {"name": "local"},
            "model": {"provider": "scripted", "id": "scripted-1"},
            "providersConfigMapRef": {"name": "scripted-models"},
            "tasks": [{"name": n, "message": _message(n)} for n in NAMES]}
    assert spec_tasks_bytes(spec) <= SPEC_TASKS_BUDGET             # what admission admits
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Lieutenant",
            "metadata": {"name": "long"}, "spec": spec}

    def finished() -> dict[str, Any] | None:
        obj = admin.get("lieutenants", "long", namespace)
        status = obj.get("status") or {}
        return obj if status.get("phase") == "Idle" and len(status.get("history", [])) == 6 \
            else None

    with Recorder(admin.kubeconfig, "lieutenants", namespace) as recorder:
        admin.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(body))
        done = wait_for(finished, 300, "six tasks answered", operator)
        versions = recorder.versions("long")

    status = done["status"]
    # Every task answered once, with its own answer (never the summary).
    assert [(h["task"], h["response"]) for h in status["history"]] == [
        (n, _answer(n)) for n in NAMES]
    requests = model.requests()
    assert all(r["failures"] == [] for r in requests), [r["failures"] for r in requests]
    # The system prompt pi sends carries the closing instruction.
    assert CLOSING_INSTRUCTION in requests[0]["system"]
    summaries = [i for i, r in enumerate(requests) if r["task"] == SUMMARY_TASK]
    assert summaries, [r["task"] for r in requests]
    # The lieutenant counted each compaction pi made, and said so in an Event.
    assert status["session"]["compactions"] == len(summaries)
    events = [str(e.message) for e in admin.core.list_namespaced_event(namespace).items
              if e.involved_object.name == "long" and e.reason == "SessionCompacted"]
    assert events and events[0].startswith("pi compacted the conversation from ")
    assert "tokens (the context neared the model's window)" in events[0]

    # The first compaction came after task five's run (the fifth message passed the
    # threshold), and task six's request carries its summary, quoting task one.
    first = summaries[0]
    assert [r["task"] for r in requests[:first]] == [_first_line(n) for n in NAMES[:5]]
    summary = requests[first]["answer"]
    assert f"It began with: «{_first_line('one')}»" in summary
    six = next(r for r in requests[first:] if r["task"] == _first_line("six"))
    assert any(summary in m["text"] for m in six["conversation"] if m["role"] == "user")

    # Task five stayed Running, the lieutenant Working, until the compaction after its
    # run was over: no version of the object shows it finished before the compaction
    # was counted (the count is written when pi's compaction_end is read).
    def phase_of(obj: dict[str, Any], task: str) -> str:
        return next((t["phase"] for t in (obj.get("status") or {}).get("tasks", [])
                     if t["name"] == task), "")
    five_done = [v for v in versions if phase_of(v, "five") == "Succeeded"]
    assert five_done
    assert all(v["status"]["session"].get("compactions", 0) >= 1 for v in five_done)
