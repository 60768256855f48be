"""A coordinator pi drives lieutenants with the pi-reef tools: the tutorial through its
eight tools, and each finished task waking it exactly once, across a restart of its pi.

Real apiserver, the operator as its own process with Local VMs, the real pi as coordinator
(RPC mode, `-e extensions/pi-reef/index.ts`, a kubeconfig whose user reads a tokenFile
and whose context names the namespace) and in the lieutenant, one scripted model for both.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from reef_devkit.controlplane import LocalControlPlane
from reef_devkit.operator_process import OperatorProcess
from reef_devkit.scripted_model.harness import ScriptedModel
from reef_operator.constants import GROUP, VERSION
from tests.conftest import Kube
from tests.e2e.conftest import append_task, wait_for
from tests.e2e.coordinator import (
    EXTENSION,
    Coordinator,
    text_of,
    tokenfile_kubeconfig,
    tool_results,
    widget,
)

pytestmark = pytest.mark.controlplane

TASK1 = "Create a Node.js Express API server in /root/workspace/api with src/config.ts."
TASK2 = "Add PostgreSQL connection pooling using the config you already made."
TASK3 = "Add user CRUD routes that use the pool from db.ts."
TASK4 = "Add request logging middleware."
TASK5 = "Add rate limiting to the API."
ROLE = "Build and maintain the Node.js API server"
FINISHED = "Lieutenant api finished task"
COORDINATOR = "reef.vers.sh/coordinator"


def _send(message: str) -> dict[str, Any]:
    return {"tool_calls": [{"name": "vers_lt_send",
                            "arguments": {"name": "api", "message": message}}]}


SCRIPT = yaml.safe_dump({"tasks": [
    # The coordinator: completion messages first (they quote answers, not prompts).
    {"match": FINISHED, "steps": [{"text": "Noted the lieutenant's result."}]},
    {"match": "Create the api lieutenant", "steps": [
        {"tool_calls": [{"name": "vers_lt_create", "arguments": {
            "name": "api", "role": ROLE, "model": "scripted/scripted-1", "profile": "local",
            "providers": "scripted-models"}}]},
        {"text": "Created api."}]},
    {"match": "Send api the three steps", "steps": [
        _send(TASK1), _send(TASK2), _send(TASK3), {"text": "Sent three tasks."}]},
    {"match": "Read api's history", "steps": [
        {"tool_calls": [{"name": "vers_lt_read", "arguments": {"name": "api", "history": 3}}]},
        {"text": "Read it."}]},
    {"match": "Pause api now", "steps": [
        {"tool_calls": [{"name": "vers_lt_pause", "arguments": {"name": "api"}}]},
        {"text": "Paused."}]},
    {"match": "Try a task on the paused api", "steps": [
        _send("Add a README."), {"text": "It is paused."}]},
    {"match": "Resume api now", "steps": [
        {"tool_calls": [{"name": "vers_lt_resume", "arguments": {"name": "api"}}]},
        {"text": "Resumed."}]},
    {"match": "How are the lieutenants", "steps": [
        {"tool_calls": [{"name": "vers_lt_status", "arguments": {}}]}, {"text": "Listed."}]},
    {"match": "Read the ghost", "steps": [
        {"tool_calls": [{"name": "vers_lt_read", "arguments": {"name": "ghost"}}]},
        {"text": "No such lieutenant."}]},
    {"match": "Discover the lieutenants", "steps": [
        {"tool_calls": [{"name": "vers_lt_discover", "arguments": {}}]}, {"text": "Found."}]},
    {"match": "Destroy every lieutenant", "steps": [
        {"tool_calls": [{"name": "vers_lt_destroy", "arguments": {"name": "*"}}]},
        {"text": "Destroyed."}]},
    {"match": "Send to the destroyed api", "steps": [
        _send("One more thing."), {"text": "It is gone."}]},
    # The lieutenant: the tutorial's three dependent tasks, and one more.
    {"match": "Create a Node.js Express API server", "steps": [
        {"tool_calls": [{"name": "write", "arguments": {
            "path": "api/src/config.ts", "content": "export const PORT = 3000;\n"}}]},
        {"text": "Scaffolded the server: src/config.ts exports PORT."}]},
    {"match": "Add PostgreSQL connection pooling",
     "expect_in_conversation": [TASK1, "Scaffolded the server"],
     "steps": [{"text": "Added src/db.ts importing ./config."}]},
    {"match": "Add user CRUD routes", "expect_in_conversation": [TASK2, "Added src/db.ts"],
     "steps": [{"text": "Added user routes using the pool from db.ts."}]},
    {"match": "Add request logging", "expect_in_conversation": [TASK3],
     "steps": [{"text": "Added logging middleware."}]},
    {"match": "Add rate limiting", "expect_in_conversation": [TASK4],
     "steps": [{"text": "Added rate limiting."}]},
]})


def _lieutenant(admin: Kube, namespace: str, name: str = "api") -> dict[str, Any]:
    return admin.get("lieutenants", name, namespace)


def _history(admin: Kube, namespace: str, count: int) -> Any:
    status = _lieutenant(admin, namespace).get("status") or {}
    done = len(status.get("history") or []) == count and status.get("phase") == "Idle"
    return status if done else None


def _woken_by(model: ScriptedModel, task: str) -> list[dict[str, Any]]:
    """The coordinator's model requests whose newest message is task's completion."""
    return [r for r in model.requests() if r["conversation"]
            and r["conversation"][-1]["text"].startswith(f"{FINISHED} {task}:")]


@pytest.fixture
def scripted_models(admin: Kube, namespace: str, model: ScriptedModel) -> str:
    admin.core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="scripted-models"),
        data={"models.json": model.models_json()}))
    return namespace


def test_a_coordinator_runs_the_tutorial_and_hears_each_task_once(
        admin: Kube, namespace: str, scripted_models: str, operator: OperatorProcess,
        model: ScriptedModel, control_plane: LocalControlPlane, tmp_path: Path) -> None:
    kubeconfig = tokenfile_kubeconfig(control_plane.kubeconfig, namespace, tmp_path)
    session = tmp_path / "coordinator.jsonl"

    def start() -> Coordinator:
        return Coordinator(tmp_path / "home", tmp_path / "work", session, kubeconfig, model)

    # Lieutenants made by others: one with kubectl (discover adopts it), one that another
    # coordinator manages (never touched).
    for name, labels in (("bystander", {}), ("other", {COORDINATOR: "someone-else"})):
        admin.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "lieutenants", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "Lieutenant",
            "metadata": {"name": name, "labels": labels},
            "spec": {"role": "r", "state": "Paused", "profileRef": {"name": "local"}}})

    coordinator = start()
    try:
        session_id = coordinator.state()["sessionId"]
        created = tool_results(coordinator.prompt("Create the api lieutenant"), "vers_lt_create")
        assert not created[0]["isError"], created
        api = _lieutenant(admin, namespace)
        assert api["metadata"]["labels"][COORDINATOR] == session_id
        assert api["spec"]["role"] == ROLE
        assert api["spec"]["model"] == {"provider": "scripted", "id": "scripted-1"}
        assert api["spec"]["profileRef"] == {"name": "local"}

        sent = tool_results(coordinator.prompt("Send api the three steps"), "vers_lt_send")
        assert [r["result"]["details"]["task"] for r in sent] == ["task-1", "task-2", "task-3"]
        assert [t["message"] for t in _lieutenant(admin, namespace)["spec"]["tasks"]] == [
            TASK1, TASK2, TASK3]

        status = wait_for(lambda: _history(admin, namespace, 3), 180, "three answers", operator)
        assert [h["response"] for h in status["history"]] == [
            "Scaffolded the server: src/config.ts exports PORT.",
            "Added src/db.ts importing ./config.",
            "Added user routes using the pool from db.ts."]
        # Each finished task woke the coordinator once, with name, task, outcome and answer.
        wait_for(lambda: all(_woken_by(model, t) for t in ("task-1", "task-2", "task-3")),
                 60, "three completions", operator)
        coordinator.wait_idle()
        for task, answer in (("task-1", "Scaffolded the server"), ("task-3", "Added user routes")):
            woken = _woken_by(model, task)
            assert len(woken) == 1, woken
            newest = woken[0]["conversation"][-1]["text"]
            assert "it succeeded" in newest and answer in newest
            everything = "\n".join(m["text"] for m in woken[0]["conversation"])
            assert everything.count(f"{FINISHED} {task}:") == 1

        # The widget lists the lieutenant and its phase (in RPC mode: setWidget requests).
        assert widget(coordinator.events) == [
            "─── Lieutenants (1) ───",
            "● api: idle (3 tasks) — Build and maintain the Node.js API serv…"]

        read = tool_results(coordinator.prompt("Read api's history"), "vers_lt_read")[0]
        assert text_of(read).startswith("[api] (idle, 3 tasks):\n=== Response 1 ===")
        assert "=== Response 3 ===\n(task task-3, stop)\nAdded user routes" in text_of(read)
        assert read["result"]["details"]["historyCount"] == 3

        tool_results(coordinator.prompt("Pause api now"), "vers_lt_pause")
        wait_for(lambda: _lieutenant(admin, namespace)["status"].get("phase") == "Paused",
                 120, "api paused", operator)
        refused = tool_results(coordinator.prompt("Try a task on the paused api"),
                               "vers_lt_send")[0]
        assert refused["isError"] and "resume it first" in text_of(refused)
        assert len(_lieutenant(admin, namespace)["spec"]["tasks"]) == 3
        tool_results(coordinator.prompt("Resume api now"), "vers_lt_resume")
        wait_for(lambda: _lieutenant(admin, namespace)["status"].get("phase") == "Idle",
                 120, "api resumed", operator)
    finally:
        coordinator.stop()

    # While no coordinator runs, two tasks are sent with kubectl's rights and finish.
    append_task(admin, namespace, "api", {"name": "task-4", "message": TASK4})
    append_task(admin, namespace, "api", {"name": "task-5", "message": TASK5})
    wait_for(lambda: _history(admin, namespace, 5), 120, "two more answers", operator)
    assert not _woken_by(model, "task-4") and not _woken_by(model, "task-5")

    coordinator = start()
    try:
        assert coordinator.state()["sessionId"] == session_id
        # The tasks that finished meanwhile are delivered once each (one after the other:
        # the second waits as a follow-up while the first one's turn runs); they come after
        # any repeat of the earlier three would have (one pass, in task order), so none came.
        wait_for(lambda: _woken_by(model, "task-5"), 60, "the missed completions", operator)
        coordinator.wait_idle()
        assert [len(_woken_by(model, t)) for t in ("task-4", "task-5")] == [1, 1]
        assert [len(_woken_by(model, t)) for t in ("task-1", "task-2", "task-3")] == [1, 1, 1]

        again = tool_results(coordinator.prompt("Create the api lieutenant"), "vers_lt_create")[0]
        assert again["isError"]
        assert "Lieutenant 'api' already exists. Destroy it first" in text_of(again)

        status = tool_results(coordinator.prompt("How are the lieutenants"), "vers_lt_status")[0]
        assert text_of(status).startswith("● api: idle — Build and maintain")
        assert "2 other lieutenants in namespace" in text_of(status)

        ghost = tool_results(coordinator.prompt("Read the ghost"), "vers_lt_read")[0]
        assert ghost["isError"]
        assert f'no lieutenant "ghost" in namespace {namespace}' in text_of(ghost)
        assert "the lieutenants here are api, bystander, other" in text_of(ghost)

        found = text_of(tool_results(coordinator.prompt("Discover the lieutenants"),
                                     "vers_lt_discover")[0]).splitlines()
        assert [line.split(" (")[0] for line in found] == [
            "api: already managed", "bystander: adopted",
            "other: managed by coordinator someone-else, skipping"]

        destroyed = tool_results(coordinator.prompt("Destroy every lieutenant"),
                                 "vers_lt_destroy")[0]
        assert destroyed["result"]["details"]["destroyed"] == ["api", "bystander"]
        gone = _lieutenant(admin, namespace)
        assert gone["spec"]["state"] == "Destroyed"
        assert len(gone["status"]["history"]) == 5          # the history stays
        assert _lieutenant(admin, namespace, "bystander")["spec"]["state"] == "Destroyed"
        assert _lieutenant(admin, namespace, "other")["spec"]["state"] == "Paused"
        wait_for(lambda: (widget(coordinator.events) or [])[:2] == [
            "─── Lieutenants (2) ───",
            "✝ api: destroyed (5 tasks) — Build and maintain the Node.js API serv…"],
            120, "the widget showing api destroyed", operator)
        late = tool_results(coordinator.prompt("Send to the destroyed api"), "vers_lt_send")[0]
        assert late["isError"] and "api is Destroyed" in text_of(late)
    finally:
        coordinator.stop()

    recorded = model.requests()
    assert all(r["failures"] == [] for r in recorded
               if r["task"] != ""), [r["failures"] for r in recorded if r["failures"]]
    shown = admin.kubectl("get", "lieutenant", "api", "-n", namespace, "-o", "yaml").stdout
    assert "task-5" in shown and "Destroyed" in shown


def test_in_print_mode_the_tools_run_and_pi_exits(
        admin: Kube, namespace: str, model: ScriptedModel, control_plane: LocalControlPlane,
        tmp_path: Path) -> None:
    """`pi install` of the package directory gives pi the tools; print mode has no UI, so
    pi-reef runs its tools but watches nothing, and pi exits."""
    admin.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "lieutenants", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Lieutenant",
        "metadata": {"name": "bystander"},
        "spec": {"role": "r", "state": "Paused", "profileRef": {"name": "local"}}})
    kubeconfig = tokenfile_kubeconfig(control_plane.kubeconfig, namespace, tmp_path)
    home = tmp_path / "home"
    (home / ".pi" / "agent").mkdir(parents=True)
    (home / ".pi" / "agent" / "models.json").write_text(model.models_json())
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "PI_OFFLINE": "1", "PI_TELEMETRY": "0",
           "PI_SKIP_VERSION_CHECK": "1", "KUBECONFIG": str(kubeconfig)}
    installed = subprocess.run(["pi", "install", str(EXTENSION.parent)], cwd=tmp_path,
                               capture_output=True, text=True, timeout=60, env=env)
    assert installed.returncode == 0, installed.stderr
    printed = subprocess.run(
        ["pi", "-p", "--provider", "scripted", "--model", "scripted-1", "--no-session",
         "How are the lieutenants?"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.strip() == "Listed."
    seen = [m["text"] for r in model.requests() for m in r["conversation"] if m["toolResult"]]
    assert f"No lieutenants active.\n(1 other lieutenant in namespace {namespace}: " \
        "vers_lt_discover adopts them)" in seen
