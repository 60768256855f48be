"""Resilience of TaskRecords: the operator is SIGKILLed again and again while a lieutenant
(real pi on a Local VM, scripted model) works through tasks that narrate between tool
calls. Afterwards every task has exactly one record, none is missing, and each record's
answer, tool calls and usage are the whole task's, said once: the text read before a
kill is replayed from pi's event log (lieutenants/records.py), never counted twice."""

from __future__ import annotations

import random
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client

from reef_devkit.controlplane import LocalControlPlane
from reef_devkit.operator_process import OperatorProcess
from reef_devkit.scripted_model.harness import ScriptedModel
from reef_operator.api.taskrecord import record_name
from reef_operator.constants import API_VERSION, GROUP, LABEL_LIEUTENANT, VERSION
from reef_operator.providers.local import kill_every_vm
from tests.conftest import Kube

pytestmark = pytest.mark.controlplane

TASKS = 9
KILLS = 6
SEED = 14


def _steps(task: int) -> list[dict[str, Any]]:
    return [
        {"text": f"Task {task} begins: looking around first.", "chunks": 8, "delay": 0.2,
         "tool_calls": [{"name": "bash", "arguments": {"command": f"echo {task}"}}]},
        {"text": f"Task {task} continues with the notes.", "chunks": 8, "delay": 0.2,
         "tool_calls": [{"name": "write", "arguments": {"path": f"n{task}.txt",
                                                        "content": "x\n"}}]},
        {"text": f"Task {task} is done.", "chunks": 4, "delay": 0.2},
    ]


def _answer(task: int) -> str:
    return "\n\n".join(str(step["text"]) for step in _steps(task))


SCRIPT = yaml.safe_dump({"tasks": [{"match": f"Crash task {t}.", "steps": _steps(t)}
                                   for t in range(TASKS)]})


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScriptedModel]:
    with ScriptedModel(SCRIPT, tmp_path_factory.mktemp("model")) as scripted:
        yield scripted


@pytest.fixture
def local_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="reef-crash-"))     # short: tmux socket paths
    yield root
    kill_every_vm(root)
    shutil.rmtree(root, ignore_errors=True)


def _records(admin: Kube, namespace: str) -> list[dict[str, Any]]:
    listing = cast(dict[str, Any], admin.custom.list_namespaced_custom_object(
        GROUP, VERSION, namespace, "taskrecords", label_selector=f"{LABEL_LIEUTENANT}=api"))
    return cast(list[dict[str, Any]], listing["items"])


def _finished(admin: Kube, namespace: str) -> int:
    status = admin.get("lieutenants", "api", namespace).get("status") or {}
    return sum(1 for t in status.get("tasks") or []
               if t.get("phase") in ("Succeeded", "Failed", "Aborted"))


def test_sigkills_while_records_are_written_leave_one_whole_record_per_task(
        admin: Kube, namespace: str, control_plane: LocalControlPlane, model: ScriptedModel,
        local_root: Path, tmp_path: Path) -> None:
    admin.core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="models"), data={"models.json": model.models_json()}))
    operator = OperatorProcess(control_plane.operator_kubeconfig, tmp_path / "operator.log",
                               {"REEF_LOCAL_ROOT": str(local_root)})
    operator.start()
    chance = random.Random(SEED)
    kills = 0
    done = threading.Event()

    def killer() -> None:
        # Kill at random moments while the tasks run: in a task's run, at its end while
        # its record is written, or while the operator catches up after the last kill.
        nonlocal kills
        while kills < KILLS and not done.wait(chance.uniform(1.0, 4.0)):
            operator.kill()
            kills += 1
            operator.start()

    thread = threading.Thread(target=killer, daemon=True)
    try:
        admin.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump({
            "apiVersion": API_VERSION, "kind": "Lieutenant", "metadata": {"name": "api"},
            "spec": {"role": "crash", "profileRef": {"name": "local"},
                     "model": {"provider": "scripted", "id": "scripted-1"},
                     "providersConfigMapRef": {"name": "models"}}}))
        thread.start()
        deadline = time.monotonic() + 600
        for task in range(TASKS):
            # One task after the other, each appended once the previous one ended.
            tasks = admin.get("lieutenants", "api", namespace)["spec"].get("tasks") or []
            admin.custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, "lieutenants", "api", {"spec": {"tasks": [
                    *tasks, {"name": f"t{task}", "message": f"Crash task {task}."}]}})
            while _finished(admin, namespace) <= task and time.monotonic() < deadline:
                time.sleep(0.3)
            assert _finished(admin, namespace) == task + 1, (
                admin.get("lieutenants", "api", namespace).get("status"),
                operator.log_tail(60))
        done.set()
        thread.join(timeout=120)
        assert not thread.is_alive()
        assert kills >= KILLS // 2, kills      # most kills landed while tasks were running

        found = _records(admin, namespace)
        by_task = {r["spec"]["task"]: r for r in found}
        assert len(found) == TASKS and sorted(by_task) == [f"t{t}" for t in range(TASKS)]
        for task in range(TASKS):
            record = by_task[f"t{task}"]
            assert record["metadata"]["name"] == record_name("api", f"t{task}")
            spec = record["spec"]
            assert spec["phase"] == "Succeeded", spec
            assert spec["answer"] == _answer(task), (task, operator.log_tail(40))
            assert [c["name"] for c in spec["toolCalls"]] == ["bash", "write"]
        # The same script for each task: the same usage, none counted twice or lost.
        usages = {json_usage(r["spec"]["usage"]) for r in found}
        assert len(usages) == 1, usages
        history = admin.get("lieutenants", "api", namespace)["status"]["history"]
        assert [h["task"] for h in history] == [f"t{t}" for t in range(TASKS)]
    finally:
        done.set()
        if thread.is_alive():
            thread.join(timeout=120)
        operator.stop()


def json_usage(usage: dict[str, Any]) -> tuple[int, int]:
    return int(usage.get("inputTokens", 0) > 0), int(usage.get("outputTokens", 0))
