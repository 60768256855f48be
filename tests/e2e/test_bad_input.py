"""Bad input from a VM or a tenant never takes the shared operator down (issue #13):
a VM writing a 300 MB line without a newline, NaN usage and a 10,000-deep JSON line into
pi's event log, while another lieutenant keeps working; and a task at the schema's length
in 3-byte characters, delivered and answered once. Real pi, the scripted model, Local VMs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from reef_devkit.operator_process import OperatorProcess
from reef_devkit.scripted_model.harness import ScriptedModel
from reef_operator.constants import GROUP, VERSION
from tests.conftest import Kube
from tests.e2e.conftest import wait_for

pytestmark = pytest.mark.controlplane

WIDE = "語" * 32_000
SCRIPT = f"""
tasks:
  - match: "Slow task"
    steps:
      - text: "Slow task done."
        chunks: 1
        delay: 150
  - match: "Count"
    steps:
      - text: "Counted."
  - match: "{'語' * 16}"
    steps:
      - text: "Read the wide task."
"""
HUGE_LINE = 300 * 1000 * 1000
MEMORY_BOUND = 100 * 1024 * 1024   # far below the 300 MB the VM writes


@pytest.fixture
def models(admin: Kube, namespace: str, model: ScriptedModel) -> str:
    admin.core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="scripted-models"),
        data={"models.json": model.models_json()}))
    return namespace


def _apply(admin: Kube, namespace: str, name: str, tasks: list[dict[str, str]]) -> None:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Lieutenant", "metadata": {"name": name},
            "spec": {"role": "Build the API", "profileRef": {"name": "local"},
                     "model": {"provider": "scripted", "id": "scripted-1"},
                     "providersConfigMapRef": {"name": "scripted-models"}, "tasks": tasks}}
    admin.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(body))


def _status(admin: Kube, namespace: str, name: str) -> dict[str, Any]:
    return dict(admin.get("lieutenants", name, namespace).get("status") or {})


def _task(admin: Kube, namespace: str, name: str, task: str) -> dict[str, Any]:
    return next((t for t in _status(admin, namespace, name).get("tasks") or []
                 if t["name"] == task), {})


def _answered(admin: Kube, namespace: str, name: str, task: str,
              operator: OperatorProcess) -> dict[str, Any]:
    return dict(wait_for(lambda: next(
        (h for h in _status(admin, namespace, name).get("history") or [] if h["task"] == task),
        None), 120, f"{name}/{task} answered", operator))


def _peak_rss(operator: OperatorProcess) -> int:
    """The operator's peak resident memory in bytes (VmHWM: any transient buffer shows)."""
    for line in Path(f"/proc/{operator.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_a_hostile_event_log_is_skipped_with_notes_while_another_lieutenant_works(
        admin: Kube, namespace: str, operator: OperatorProcess, models: str,
        local_root: Path) -> None:
    _apply(admin, namespace, "hostile", [{"name": "slow", "message": "Slow task, please"}])
    _apply(admin, namespace, "other", [{"name": "first", "message": "Count to three"}])
    _answered(admin, namespace, "other", "first", operator)
    wait_for(lambda: _task(admin, namespace, "hostile", "slow").get("phase") == "Running",
             90, "the slow task running", operator)
    vm_id = admin.get("vmnodes", "hostile", namespace)["status"]["vmId"]
    out = local_root / vm_id / "root" / ".reef" / "run" / "out"
    before = _peak_rss(operator)

    nan_usage = ('{"type":"message_end","message":{"role":"assistant","content":[],'
                 '"usage":{"input":NaN,"output":Infinity,"cost":{"total":-1}}}}\n')
    with out.open("a") as log:
        log.write(nan_usage)
    wait_for(lambda: "usage ignored" in _task(admin, namespace, "hostile", "slow").get(
        "note", ""), 60, "a note on the NaN usage", operator)
    usage = _status(admin, namespace, "hostile")["usage"]
    assert usage["inputTokens"] >= 0 and usage["outputTokens"] >= 0   # no NaN, no Infinity

    with out.open("a") as log:
        log.write('{"type":"x","deep":' + "[" * 10_000 + "]" * 10_000 + "}\n")
    wait_for(lambda: "nested deeper" in _task(admin, namespace, "hostile", "slow").get(
        "note", ""), 60, "a note on the deep record", operator)

    with out.open("ab") as log:                 # 300 MB, no newline
        block = b"x" * (1 << 20)
        for _ in range(HUGE_LINE // len(block)):
            log.write(block)
        log.write(b"x" * (HUGE_LINE % len(block)))
    # While the operator reads through it, the other lieutenant is served.
    admin.custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "lieutenants", "other", {"spec": {"tasks": [
            {"name": "first", "message": "Count to three"},
            {"name": "second", "message": "Count to four"}]}})
    assert _answered(admin, namespace, "other", "second", operator)["response"] == "Counted."
    with out.open("ab") as log:
        log.write(b"\n")
    # pi is quiet meanwhile (the model takes its time), so the line is the VM's alone:
    # it ends here and is skipped whole, with a note.
    wait_for(lambda: "was skipped: longer than" in _task(
        admin, namespace, "hostile", "slow").get("note", ""), 120,
        "a note on the 300 MB line", operator)
    assert _peak_rss(operator) - before < MEMORY_BOUND
    assert "Traceback" not in operator.log_tail(400)


def test_a_task_at_the_schemas_length_in_three_byte_characters_is_answered_once(
        admin: Kube, namespace: str, operator: OperatorProcess, models: str,
        model: ScriptedModel, local_root: Path) -> None:
    _apply(admin, namespace, "wide", [{"name": "wide", "message": WIDE}])
    entry = _answered(admin, namespace, "wide", "wide", operator)
    assert entry["response"] == "Read the wide task."
    status = _status(admin, namespace, "wide")
    assert [h["task"] for h in status["history"]] == ["wide"]
    assert status["tasks"][0]["phase"] == "Succeeded"
    asked = [r for r in model.requests() if r["task"] == "語" * 16]
    assert len(asked) == 1
    assert [m["text"] for m in asked[0]["conversation"] if m["role"] == "user"] == [WIDE]
    vm_id = admin.get("vmnodes", "wide", namespace)["status"]["vmId"]
    sent = (local_root / vm_id / "root" / ".reef" / "run" / "sent").read_text()
    assert sent.splitlines() == ["task-wide"]
    json.dumps(status)
