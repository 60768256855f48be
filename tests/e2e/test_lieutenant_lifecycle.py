"""Lieutenant behaviour beyond the happy path: steer, follow-up, pause while working, resume
with context, provider errors, destroy, huge responses, operator crashes."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from reef_devkit.operator_process import OperatorProcess
from reef_devkit.scripted_model.harness import ScriptedModel
from reef_operator.constants import GROUP, VERSION
from reef_operator.kube.conditions import find_condition
from reef_operator.providers.local import processes
from tests.conftest import Kube
from tests.e2e.conftest import append_task, apply_lieutenant, wait_for

pytestmark = pytest.mark.controlplane

HUGE = "y" * 100_000
SCRIPT = f"""
tasks:
  - match: "Long task"
    steps:
      - text: "{'Working through the long task. ' * 10}"
        chunks: 25
        delay: 0.2
  - match: "Stop adding Prisma"
    expect_in_conversation: ["Long task"]
    steps:
      - text: "Switching to raw pg queries."
  - match: "add request logging"
    steps:
      - text: "Added request logging."
  - match: "What was the long task"
    expect_in_conversation: ["Long task", "Working through the long task."]
    steps:
      - text: "It was the long task."
  - match: "Explode"
    steps:
      - error: {{status: 400, message: "scripted provider failure"}}
  - match: "Say a lot"
    steps:
      - text: "{HUGE}"
  - match: "Count"
    steps:
      - text: "Counted."
"""



@pytest.fixture
def models_config(admin: Kube, namespace: str, model: ScriptedModel) -> str:
    admin.core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="scripted-models"),
        data={"models.json": model.models_json()}))
    return "scripted-models"



def _state(admin: Kube, namespace: str, name: str, state: str) -> None:
    admin.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "lieutenants", name,
                                                {"spec": {"state": state}})


def _status(admin: Kube, namespace: str, name: str) -> dict[str, Any]:
    return dict(admin.get("lieutenants", name, namespace).get("status") or {})


def _history(admin: Kube, namespace: str, name: str, count: int, op: OperatorProcess,
             within: float = 120) -> list[dict[str, Any]]:
    try:
        status = wait_for(lambda: (lambda s: s if len(s.get("history", [])) >= count
                                   and s.get("phase") == "Idle" else None)(
            _status(admin, namespace, name)), within, f"{count} responses", op)
    except AssertionError:
        raise AssertionError(f"no {count} responses: {_status(admin, namespace, name)}"
                             ) from None
    return list(status["history"])


def test_steer_and_follow_up(admin: Kube, namespace: str, operator: OperatorProcess,
                             models_config: str) -> None:
    apply_lieutenant(admin, namespace, "api", [{"name": "long", "message": "Long task, please"}])
    wait_for(lambda: _status(admin, namespace, "api").get("phase") == "Working", 60,
             "working", operator)
    append_task(admin, namespace, "api", {"name": "steer", "mode": "steer",
                                          "message": "Stop adding Prisma. Use raw pg queries."})
    append_task(admin, namespace, "api", {"name": "logging", "mode": "followUp",
                                          "message": "After this, add request logging middleware"})
    history = _history(admin, namespace, "api", 3, operator)
    assert [h["task"] for h in history] == ["long", "steer", "logging"]
    assert history[1]["response"] == "Switching to raw pg queries."
    assert history[2]["response"] == "Added request logging."
    tasks = {t["name"]: t for t in _status(admin, namespace, "api")["tasks"]}
    assert all(t["phase"] == "Succeeded" for t in tasks.values())


def test_prompt_while_working_waits_for_the_task_with_a_note(
    admin: Kube, namespace: str, operator: OperatorProcess, models_config: str
) -> None:
    apply_lieutenant(admin, namespace, "api", [{"name": "long", "message": "Long task, please"}])
    wait_for(lambda: _status(admin, namespace, "api").get("phase") == "Working", 60,
             "working", operator)
    append_task(admin, namespace, "api", {"name": "next", "message": "Count to three"})
    _history(admin, namespace, "api", 2, operator)
    tasks = {t["name"]: t for t in _status(admin, namespace, "api")["tasks"]}
    assert "queued until the current task finishes" in tasks["next"]["note"]


def test_pause_waits_for_the_task_then_resume_keeps_the_context(
    admin: Kube, namespace: str, operator: OperatorProcess, models_config: str,
    local_root: Path
) -> None:
    apply_lieutenant(admin, namespace, "api", [{"name": "long", "message": "Long task, please"}])
    wait_for(lambda: _status(admin, namespace, "api").get("phase") == "Working", 60,
             "working", operator)
    _state(admin, namespace, "api", "Paused")
    waiting = wait_for(lambda: (lambda s: s if find_condition({"status": s}, "Paused").get(
                                "reason") ==
                                "WaitingForTaskToFinish" else None)(
        _status(admin, namespace, "api")), 30, "waiting for the task", operator)
    assert waiting["phase"] == "Working"
    paused = wait_for(lambda: (lambda s: s if s.get("phase") == "Paused" else None)(
        _status(admin, namespace, "api")), 90, "paused", operator)
    assert [h["task"] for h in paused["history"]] == ["long"], (paused, operator.log_tail(150))
    node = admin.get("vmnodes", "api", namespace)
    assert node["status"]["vmState"] == "paused"
    _state(admin, namespace, "api", "Running")
    append_task(admin, namespace, "api", {"name": "recall",
                                          "message": "What was the long task about?"})
    try:
        history = _history(admin, namespace, "api", 2, operator)
    except AssertionError:
        run = local_root / node["status"]["vmId"] / "root" / ".reef" / "run"
        tails = {f: (run / f).read_text()[-3000:] for f in ("err", "sent") if (run / f).exists()}
        events = (run / "out").read_text().splitlines()
        raise AssertionError((tails, [e[:200] for e in events[-15:]],
                              _status(admin, namespace, "api"))) from None
    assert history[-1]["response"] == "It was the long task."  # the script checked the context


def test_provider_error_fails_the_task_with_its_message(
    admin: Kube, namespace: str, operator: OperatorProcess, models_config: str
) -> None:
    apply_lieutenant(admin, namespace, "api", [{"name": "boom", "message": "Explode now"},
                                               {"name": "after", "message": "Count to three"}])
    history = _history(admin, namespace, "api", 2, operator)
    tasks = {t["name"]: t for t in _status(admin, namespace, "api")["tasks"]}
    assert tasks["boom"]["phase"] == "Failed"
    assert "scripted provider failure" in tasks["boom"]["note"]
    assert history[0]["stopReason"] == "error"
    assert tasks["after"]["phase"] == "Succeeded"  # the lieutenant is not hung


def test_missing_credentials_fail_the_task_not_the_lieutenant(
    admin: Kube, namespace: str, operator: OperatorProcess, models_config: str
) -> None:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Lieutenant",
            "metadata": {"name": "nokey"},
            "spec": {"role": "r", "profileRef": {"name": "local"},
                     "model": {"provider": "anthropic", "id": "claude-sonnet-4-5"},
                     "tasks": [{"name": "first", "message": "Count to three"}]}}
    admin.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(body))
    failed = wait_for(lambda: (lambda s: s if any(t.get("phase") == "Failed"
                                                  for t in s.get("tasks", [])) else None)(
        _status(admin, namespace, "nokey")), 120, "a failed task", operator)
    note = failed["tasks"][0].get("note", "")
    assert "API key" in note or "api key" in note.lower(), failed["tasks"]


def test_huge_response_is_bounded_and_destroy_keeps_history(
    admin: Kube, namespace: str, operator: OperatorProcess, models_config: str,
    local_root: Path
) -> None:
    apply_lieutenant(admin, namespace, "api", [{"name": "big", "message": "Say a lot"}])
    history = _history(admin, namespace, "api", 1, operator)
    assert history[0]["truncated"] is True
    assert len(history[0]["response"]) <= 16 * 1024
    size = len(admin.kubectl("get", "lieutenant", "api", "-n", namespace, "-o",
                             "json").stdout)
    assert size < 200_000
    vm_id = _status(admin, namespace, "api")["vmId"]
    _state(admin, namespace, "api", "Destroyed")
    destroyed = wait_for(lambda: (lambda s: s if s.get("phase") == "Destroyed" else None)(
        _status(admin, namespace, "api")), 60, "destroyed", operator)
    assert [h["task"] for h in destroyed["history"]] == ["big"]
    wait_for(lambda: not (local_root / vm_id).exists(), 60, "VM released", operator)


def test_sigkills_during_tasks_lose_and_duplicate_nothing(
    admin: Kube, namespace: str, operator: OperatorProcess, models_config: str,
    model: ScriptedModel
) -> None:
    rng = random.Random(5)
    apply_lieutenant(admin, namespace, "api", [])
    wait_for(lambda: _status(admin, namespace, "api").get("phase") == "Idle", 60, "idle",
             operator)
    before = len(model.requests())
    names = [f"count-{n}" for n in range(10)]
    for name in names:
        append_task(admin, namespace, "api", {"name": name, "message": f"Count {name}"})
        time.sleep(rng.uniform(0.0, 1.0))
        operator.restart()
    history = _history(admin, namespace, "api", len(names), operator, within=240)
    assert [h["task"] for h in history] == names
    prompts = [r["conversation"][-1]["text"] for r in model.requests()[before:]
               if r["conversation"] and r["conversation"][-1]["role"] == "user"
               and not r["conversation"][-1]["toolResult"]]
    for name in names:
        assert prompts.count(f"Count {name}") == 1, (name, prompts)


def _pi_running(vm_id: str) -> bool:
    """Whether a pi process runs on the Local VM (pi names its process `pi`)."""
    for pid in processes.scan(vm_id):
        try:
            argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except FileNotFoundError:
            continue
        if argv0.endswith(b"pi"):
            return True
    return False


def test_stop_when_done_stops_the_agent_and_a_new_task_starts_it_again(
    admin: Kube, namespace: str, operator: OperatorProcess, models_config: str
) -> None:
    apply_lieutenant(admin, namespace, "api", [{"name": "long", "message": "Long task, please"}],
                     postTaskDisposition="StopWhenDone")
    stopped = wait_for(lambda: (lambda s: s if s.get("phase") == "Stopped"
                                and len(s.get("history", [])) == 1 else None)(
        _status(admin, namespace, "api")), 120, "stopped after the task", operator)
    assert find_condition({"status": stopped}, "Ready")["reason"] == "Stopped"
    # The agent is stopped (pi exits on the hangup a moment after tmux goes), the VM is not.
    wait_for(lambda: not _pi_running(stopped["vmId"]), 30, "pi gone", operator)
    assert find_condition(admin.get("vmnodes", "api", namespace), "Ready")["status"] == "True"

    append_task(admin, namespace, "api", {"name": "recall", "message": "What was the long task?"})
    again = wait_for(lambda: (lambda s: s if s.get("phase") == "Stopped"
                              and len(s.get("history", [])) == 2 else None)(
        _status(admin, namespace, "api")), 120, "the second task, then stopped", operator)
    # Started on its session file: the conversation went on.
    assert again["history"][1]["response"] == "It was the long task."
    wait_for(lambda: not _pi_running(again["vmId"]), 30, "pi gone again", operator)
    events = admin.core.list_namespaced_event(namespace).items
    assert not [e for e in events if e.reason == "AgentRestarted"]   # a stop is not a crash
