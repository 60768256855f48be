"""TaskRecords end to end: the real pi and the scripted model run a task that narrates
between two tool calls; its record holds the whole run, `kubectl reef read --task` and
`history` read it back, kubectl finds it by label, retention trims the oldest and the
records go with their lieutenant."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest

from reef_devkit.operator_process import OperatorProcess
from reef_operator.api.taskrecord import record_name
from reef_operator.constants import GROUP, LABEL_LIEUTENANT, LABEL_TASK, VERSION
from tests.conftest import Kube
from tests.e2e.conftest import wait_for
from tests.e2e.plugin import create, failed, ok, reef

pytestmark = pytest.mark.controlplane

SCRIPT = """
tasks:
  - match: "Survey the repository"
    steps:
      - text: "First I list the files."
        tool_calls: [{name: bash, arguments: {command: "ls -a"}}]
      - text: "Now I write the notes."
        tool_calls: [{name: write, arguments: {path: notes.txt, content: "two files\\n"}}]
      - text: "Survey done: the notes are in notes.txt."
  - match: "Quick task"
    steps:
      - text: "Quick answer."
  - match: "Run the long job"
    steps:
      - text: "Starting the long job."
        tool_calls: [{name: bash, arguments: {command: "sleep 600"}}]
      - text: "never reached"
"""

FULL_ANSWER = ("First I list the files.\n\nNow I write the notes.\n\n"
               "Survey done: the notes are in notes.txt.")


def records(admin: Kube, namespace: str, lieutenant: str) -> list[dict[str, Any]]:
    listing = cast(dict[str, Any], admin.custom.list_namespaced_custom_object(
        GROUP, VERSION, namespace, "taskrecords",
        label_selector=f"{LABEL_LIEUTENANT}={lieutenant}"))
    return cast(list[dict[str, Any]], listing["items"])


def test_a_tasks_record_holds_its_whole_run_and_reads_back(
        admin: Kube, scripted: str, operator: OperatorProcess) -> None:
    ns = scripted
    create(admin, ns)
    ok(reef(admin, "-n", ns, "send", "api", "Survey the repository", "--task-name", "survey"))
    ok(reef(admin, "-n", ns, "read", "api", "--follow"))

    # The record exists once status says the task ended: it is written first.
    found = records(admin, ns, "api")
    assert [r["metadata"]["name"] for r in found] == [record_name("api", "survey")]
    record = found[0]
    assert record["metadata"]["labels"][LABEL_TASK] == "survey"
    lieutenant = admin.get("lieutenants", "api", ns)
    assert record["metadata"]["ownerReferences"][0]["uid"] == lieutenant["metadata"]["uid"]
    spec = record["spec"]
    assert spec["answer"] == FULL_ANSWER and spec["truncated"] is False
    assert [(c["name"], c["ok"]) for c in spec["toolCalls"]] == [("bash", True),
                                                                ("write", True)]
    assert json.loads(spec["toolCalls"][0]["arguments"]) == {"command": "ls -a"}
    assert (spec["phase"], spec["stopReason"], spec["mode"]) == ("Succeeded", "stop", "prompt")
    assert spec["message"] == "Survey the repository"
    assert spec["usage"]["outputTokens"] > 0 and spec["completedAt"] >= spec["startedAt"]
    # history keeps the final message only; the record has the narration too.
    assert lieutenant["status"]["history"][-1]["response"] == \
        "Survey done: the notes are in notes.txt."

    assert ok(reef(admin, "-n", ns, "read", "api", "--task", "survey")) == FULL_ANSWER + "\n"
    table = ok(reef(admin, "-n", ns, "history", "api")).splitlines()
    assert table[0].split() == ["TASK", "PHASE", "STOP", "TOOLS", "COST", "ENDED", "ANSWER"]
    assert table[1].split()[:4] == ["survey", "Succeeded", "stop", "2"]
    as_json = json.loads(ok(reef(admin, "-n", ns, "history", "api", "-o", "json")))
    assert [(r["task"], r["answer"]) for r in as_json] == [("survey", FULL_ANSWER)]
    got = admin.kubectl("get", "taskrecords", "-n", ns, "-l", f"{LABEL_LIEUTENANT}=api").stdout
    header, row = got.splitlines()
    assert header.split() == ["NAME", "LIEUTENANT", "TASK", "PHASE", "COST", "COMPLETED", "AGE"]
    assert row.split()[1:4] == ["api", "survey", "Succeeded"]
    assert admin.kubectl("get", "tr", "-n", ns, "-o", "name").stdout.strip() == \
        f"taskrecord.{GROUP}/{record_name('api', 'survey')}"

    # Bad asks: each says what is wrong and what to do.
    missing = failed(reef(admin, "-n", ns, "read", "api", "--task", "nope"))
    assert "lieutenant api has no task nope and no record of it" in missing
    assert "(kubectl reef history api lists its records)" in missing
    assert "lieutenant 'ghost' not found" in failed(
        reef(admin, "-n", ns, "read", "ghost", "--task", "survey"))
    assert "--limit 0: expected a positive number" in failed(
        reef(admin, "-n", ns, "history", "api", "--limit", "0"), code=2)


def test_retention_keeps_the_newest_and_records_go_with_their_lieutenant(
        admin: Kube, scripted: str, operator: OperatorProcess) -> None:
    ns = scripted
    create(admin, ns)
    admin.custom.patch_namespaced_custom_object(GROUP, VERSION, ns, "lieutenants", "api", {
        "spec": {"taskRecords": {"maxRecords": 2}}})
    for name in ("q1", "q2", "q3"):
        ok(reef(admin, "-n", ns, "send", "api", f"Quick task {name}", "--task-name", name))
        ok(reef(admin, "-n", ns, "read", "api", "--follow"))
    # The oldest went when the third was written (before the status saying it ended).
    assert sorted(r["spec"]["task"] for r in records(admin, ns, "api")) == ["q2", "q3"]
    assert "no record of task q1: it was deleted (retention: spec.taskRecords)" in failed(
        reef(admin, "-n", ns, "read", "api", "--task", "q1"))
    table = ok(reef(admin, "-n", ns, "history", "api", "--limit", "1")).splitlines()
    assert [line.split()[0] for line in table[1:]] == ["q3"]

    admin.custom.delete_namespaced_custom_object(GROUP, VERSION, ns, "lieutenants", "api")
    wait_for(lambda: not records(admin, ns, "api"), 120,
             "the garbage collector deletes the records with their lieutenant", operator)


def test_a_task_running_when_its_lieutenant_is_destroyed_ends_aborted_with_its_record(
        admin: Kube, scripted: str, operator: OperatorProcess) -> None:
    ns = scripted
    create(admin, ns, "doomed")
    ok(reef(admin, "-n", ns, "send", "doomed", "Run the long job", "--task-name", "job"))
    wait_for(lambda: "Starting the long job." in str(
        (admin.get("lieutenants", "doomed", ns).get("status") or {}).get("currentTask")),
        120, "the job under way", operator)
    ok(reef(admin, "-n", ns, "destroy", "doomed", "--yes"))
    status = wait_for(lambda: (lambda s: s if s.get("phase") == "Destroyed" else None)(
        admin.get("lieutenants", "doomed", ns).get("status") or {}), 120, "destroyed", operator)
    [task] = status["tasks"]
    assert (task["phase"], task["note"]) == (
        "Aborted", "the lieutenant was destroyed while the task ran")
    [record] = records(admin, ns, "doomed")
    assert (record["spec"]["phase"], record["spec"]["answer"]) == (
        "Aborted", "Starting the long job.")
    assert [c["name"] for c in record["spec"]["toolCalls"]] == ["bash"]
