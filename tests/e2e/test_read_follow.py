"""`kubectl reef read --follow` streams the running task from the VM: the real pi on a Local
VM, the scripted model streaming, the plugin run as a user runs it.

The answers are compared byte for byte: the follower reads pi's event log from the
task's first event, so nothing is skipped however fast the agent writes (the status
keeps only a 4 KiB tail of it) and nothing is shown twice.
"""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml

from reef_devkit.operator_process import OperatorProcess
from tests.conftest import Kube
from tests.e2e.conftest import wait_for
from tests.e2e.plugin import PLUGIN, create, ok, reef

pytestmark = pytest.mark.controlplane

# 200 KB of numbered lines with multi-byte characters, in 400 deltas over about two seconds.
LINE = "line {:05d}: the quick brown fox jumps — ünïcödé ✓ ✓ ✓\n"
LONG = "".join(LINE.format(n) for n in range(3300))[:200_000].rsplit("\n", 1)[0] + "\n"
# Longer than the 16 KiB a history entry keeps, so only the stream can print it whole.
SLOW = "".join(f"word {n:05d} " for n in range(1700)) + "done."
NARRATION = "I will write the file first, then check it."

SCRIPT = yaml.safe_dump({"tasks": [
    {"match": "Stream 200 KB", "steps": [{"text": LONG, "chunks": 400, "delay": 0.005}]},
    {"match": "Stream slowly", "steps": [{"text": SLOW, "chunks": 40, "delay": 0.25}]},
    {"match": "Write then fail", "steps": [
        {"text": NARRATION, "chunks": 20, "delay": 0.1, "tool_calls": [
            {"name": "write", "arguments": {"path": "notes.txt", "content": "x\n"}}]},
        {"error": {"status": 400, "message": "scripted provider failure"}}]},
    {"match": "Say hello", "steps": [{"text": "Hello."}]},
]}, allow_unicode=True, sort_keys=False)


def _follow(admin: Kube, namespace: str) -> subprocess.CompletedProcess[str]:
    return reef(admin, "-n", namespace, "read", "api", "--follow", "--timeout", "150")


def _follow_from_before(admin: Kube, namespace: str, message: str, task: str
                        ) -> tuple[int, str, str]:
    """A follower that is waiting before the task starts (the lieutenant paused, the task
    sent, the follower saying it waits), then the resume: however fast the task runs, the
    follower sees it begin. Its exit code, stdout and stderr."""
    ok(reef(admin, "-n", namespace, "pause", "api", "--wait"))
    ok(reef(admin, "-n", namespace, "send", "api", message, "--task-name", task))
    follower = subprocess.Popen([PLUGIN, "-n", namespace, "read", "api", "--follow",
                                 "--timeout", "150"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, "KUBECONFIG": str(admin.kubeconfig)})
    assert follower.stderr is not None
    assert follower.stderr.readline().decode() == \
        f"[lieutenant api is paused: task {task} starts after it resumes]\n"
    ok(reef(admin, "-n", namespace, "resume", "api"))
    out, err = follower.communicate(timeout=180)
    return follower.returncode, out.decode(), err.decode()


def test_a_fast_200_kb_answer_is_printed_once_and_in_order(
        admin: Kube, scripted: str, operator: OperatorProcess) -> None:
    ns = scripted
    create(admin, ns)
    code, out, err = _follow_from_before(admin, ns, "Stream 200 KB please", "big")
    assert len(LONG.encode()) > 200_000
    # Compared whole: a byte skipped, repeated or moved shows here.
    assert out == LONG, (len(out), err)
    assert code == 0, err
    status = admin.get("lieutenants", "api", ns)["status"]
    assert next(t for t in status["tasks"] if t["name"] == "big")["phase"] == "Succeeded"


def test_a_follower_started_mid_task_prints_it_from_its_start(
        admin: Kube, scripted: str, operator: OperatorProcess) -> None:
    ns = scripted
    create(admin, ns)
    ok(reef(admin, "-n", ns, "send", "api", "Stream slowly please"))
    # Some of the answer is out (the status shows its tail) before the follower starts.
    shown = wait_for(lambda: ((admin.get("lieutenants", "api", ns)["status"]
                               .get("currentTask") or {}).get("output")),
                     60, "the task's first words in status", operator)
    result = _follow(admin, ns)
    assert SLOW.startswith(shown) and len(shown) < len(SLOW)
    assert ok(result) == SLOW + "\n"


def test_a_failing_task_streams_its_narration_and_tool_call_then_exits_1(
        admin: Kube, scripted: str, operator: OperatorProcess) -> None:
    ns = scripted
    create(admin, ns)
    code, out, err = _follow_from_before(admin, ns, "Write then fail", "boom")
    assert out == NARRATION + "\n"
    assert code == 1
    # The tool call's line starts on a line of its own on a terminal (the text ended mid-line).
    assert err.startswith("\n[tool] write(path=notes.txt, content=x\\n) ok\n"), err
    last = err.splitlines()[-1]
    assert last.startswith("error: task boom failed: ") and \
        "scripted provider failure" in last, err


def test_without_a_task_follow_prints_the_last_response(
        admin: Kube, scripted: str, operator: OperatorProcess) -> None:
    ns = scripted
    create(admin, ns)
    assert ok(_follow(admin, ns)) == "\n"
    ok(reef(admin, "-n", ns, "send", "api", "Say hello"))
    assert ok(_follow(admin, ns)) == "Hello.\n"
    # The task is over: following again prints its answer from history, exit 0.
    assert ok(_follow(admin, ns)) == "Hello.\n"
