"""`kubectl reef` from argv to what a user sees: each command's arguments reach its
handler, the handler's answer reaches stdout, failures are one `error:` line.

The cluster is an in-memory stand-in (objects by kind and name, merge patches, a
watch that replays queued versions); exec, cp, dashboard and config are checked up
to the call into their modules, which need a VM, a socket or the operator's config.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes.client.exceptions import ApiException

from reef_operator.api.taskrecord import record_name
from reef_operator.cli.plugin import dashboard, pruning, settings, vm
from reef_operator.cli.plugin.cluster import (
    Cluster,
    NotFound,
    Obj,
    PluginError,
    not_found_message,
)
from reef_operator.cli.plugin.commands import COMMANDS, config, exec_
from reef_operator.cli.plugin.main import main, parser
from reef_operator.cli.plugin.vm import how_to_wake
from reef_operator.cli.plugin.wait_target import ConditionTarget, PhaseTarget
from reef_operator.constants import LABEL_LIEUTENANT, LABEL_TASK
from reef_operator.providers.base import CommandResult

NAMESPACE = "team"
DOCUMENTED = ["create", "fork", "checkpoint", "send", "read", "history", "status", "pause",
              "resume", "prune", "destroy", "discover", "tree", "diff", "exec", "cp", "wait",
              "dashboard", "policy", "config"]


@dataclass
class FakeCluster(Cluster):
    """Objects keyed by (plural, namespace, name); `watch` yields the object, then the
    object with each status queued in `statuses` (as the operator would write them).
    Watching the same object again with nothing queued fails at once: nothing more will
    change, and a real wait would only run into its timeout."""

    objects: dict[tuple[str, str, str], Obj] = field(default_factory=dict)
    statuses: dict[tuple[str, str], list[Obj]] = field(default_factory=dict)
    patches: list[tuple[str, str, Obj]] = field(default_factory=list)
    connected: list[tuple[str | None, str | None, str | None]] = field(default_factory=list)
    watched: set[tuple[str, str]] = field(default_factory=set)

    def add(self, plural: str, name: str, spec: Obj | None = None, status: Obj | None = None,
            namespace: str = NAMESPACE) -> Obj:
        obj: Obj = {"metadata": {"name": name, "namespace": namespace, "generation": 1,
                                 "resourceVersion": "1"},
                    "spec": spec or {}, "status": status or {}}
        self.objects[(plural, namespace, name)] = obj
        return obj

    def get(self, plural: str, name: str, namespace: str | None = None) -> Obj:
        namespace = namespace or self.namespace
        try:
            return copy.deepcopy(self.objects[(plural, namespace, name)])
        except KeyError:
            known = [n for (p, ns, n) in self.objects if p == plural and ns == namespace]
            raise NotFound(not_found_message(plural, name, namespace, known)) from None

    def exists(self, plural: str, name: str, namespace: str) -> bool:
        return (plural, namespace, name) in self.objects

    def items(self, plural: str, namespace: str | None = None,
              all_namespaces: bool = False, label_selector: str = "") -> list[Obj]:
        namespace = namespace or self.namespace
        wanted = dict(s.split("=", 1) for s in label_selector.split(",") if s)
        return [copy.deepcopy(o) for (p, ns, _), o in sorted(self.objects.items())
                if p == plural and (all_namespaces or ns == namespace)
                and wanted.items() <= (o["metadata"].get("labels") or {}).items()]

    def create(self, plural: str, body: Obj) -> Obj:
        body["metadata"].setdefault("namespace", self.namespace)
        body["metadata"].update(generation=1, resourceVersion="1")
        self.objects[(plural, body["metadata"]["namespace"], body["metadata"]["name"])] = body
        return body

    def merge_patch(self, plural: str, name: str, patch: Obj,
                    namespace: str | None = None) -> Obj:
        namespace = namespace or self.namespace
        stored = self.objects[(plural, namespace, name)]
        expected = (patch.get("metadata") or {}).get("resourceVersion")
        if expected and expected != stored["metadata"]["resourceVersion"]:
            raise ApiException(status=409, reason="Conflict")
        self.patches.append((plural, name, patch))
        _merge(stored, {k: v for k, v in patch.items() if k != "metadata"})
        stored["metadata"]["resourceVersion"] = str(int(stored["metadata"]["resourceVersion"])
                                                    + 1)
        return stored

    def json_patch(self, plural: str, name: str, operations: list[Obj],
                   namespace: str | None = None) -> Obj:
        """`test` and `remove` on /spec/tasks/<index>, as the apiserver applies them."""
        stored = self.objects[(plural, namespace or self.namespace, name)]
        tasks = copy.deepcopy(stored["spec"]["tasks"])
        for operation in operations:
            index = int(operation["path"].split("/")[3])
            if operation["op"] == "test":
                if index >= len(tasks) or tasks[index]["name"] != operation["value"]:
                    refused = ApiException(status=422, reason="Unprocessable Entity")
                    refused.body = json.dumps({"message": pruning.PATCH_NOT_APPLIED})
                    raise refused
            else:
                del tasks[index]
        self.patches.append((plural, name, {"json": operations}))
        stored["spec"]["tasks"] = tasks
        return stored

    def delete(self, plural: str, name: str, namespace: str | None = None) -> None:
        del self.objects[(plural, namespace or self.namespace, name)]

    def watch(self, plural: str, name: str, namespace: str | None,
              timeout: float, since: Obj | None = None) -> Iterator[Obj]:
        namespace = namespace or self.namespace
        if (plural, name) in self.watched and not self.statuses.get((plural, name)):
            raise AssertionError(f"watching {plural}/{name} again: nothing more will change")
        self.watched.add((plural, name))
        yield self.get(plural, name, namespace)
        for status in self.statuses.pop((plural, name), []):
            self.objects[(plural, namespace, name)]["status"] = status
            yield self.get(plural, name, namespace)


def _merge(target: Obj, patch: Obj) -> None:
    """RFC 7386: objects merge, null removes, anything else replaces."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    # No API client: every read and write the commands make is one of the fake's own.
    fake = FakeCluster(api=cast(Any, None), namespace=NAMESPACE, server="https://fake:6443")

    def connect(cls: type[Cluster], kubeconfig: str | None, context: str | None,
                namespace: str | None) -> Cluster:
        fake.connected.append((kubeconfig, context, namespace))
        return fake

    monkeypatch.setattr(Cluster, "connect", classmethod(connect))
    return fake


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def condition(type_: str, status: str = "True", reason: str = "") -> Obj:
    """A status holding one condition, observed at generation 1."""
    return {"conditions": [{"type": type_, "status": status, "reason": reason,
                            "message": "", "observedGeneration": 1}]}


# -- the parser -----------------------------------------------------------------------------

def test_every_documented_command_is_registered_once_in_help_order() -> None:
    assert [c.name for c in COMMANDS] == DOCUMENTED


@pytest.mark.parametrize("name", DOCUMENTED)
def test_every_command_answers_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([name, "--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: kubectl reef {name} ")


def test_cluster_options_work_before_and_after_the_command(
        cluster: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "--kubeconfig", "k", "--context", "c", "-n", "a", "status")
    run(capsys, "status", "-n", "b", "--context", "d")
    assert cluster.connected == [("k", "c", "a"), (None, "d", "b")]


def test_an_unknown_command_or_a_missing_argument_is_bad_usage(
        capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["explode"], ["send", "api"], ["create", "api"], ["wait", "api"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
    assert "invalid choice: 'explode'" in capsys.readouterr().err


# -- dispatch and its errors ----------------------------------------------------------------

def test_a_failure_is_one_error_line_on_stderr_with_its_exit_code(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def unreachable(cls: type[Cluster], *args: Any) -> Cluster:
        raise PluginError("no cluster configured: nothing (set KUBECONFIG)")

    monkeypatch.setattr(Cluster, "connect", classmethod(unreachable))
    assert run(capsys, "status") == (1, "", "error: no cluster configured: nothing "
                                            "(set KUBECONFIG)\n")


def test_a_usage_error_found_by_a_handler_exits_2(cluster: FakeCluster,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    cluster.add("lieutenants", "api")
    code, out, err = run(capsys, "send", "api", "hi", "--mode", "shout")
    assert (code, out) == (2, "")
    assert err == "error: --mode 'shout': expected one of prompt, steer, followUp\n"


def test_ctrl_c_exits_130_quietly(cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(*args: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(dashboard, "serve", interrupted)
    assert run(capsys, "dashboard") == (130, "", "")


# -- lieutenants ----------------------------------------------------------------------------

def test_create_writes_the_spec_from_its_options(cluster: FakeCluster,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "create", "api", "--role", "Build the API", "--profile", "small",
                       "--model", "anthropic/claude-sonnet-4-5", "--credentials", "keys",
                       "--providers", "models", "--instructions", "be brief",
                       "--history-limit", "5", "--task", "Scaffold it", "--task", "Test it")
    assert (code, out) == (0, "lieutenant/api created\n")
    spec = cluster.get("lieutenants", "api")["spec"]
    assert spec == {
        "role": "Build the API", "profileRef": {"name": "small"},
        "model": {"provider": "anthropic", "id": "claude-sonnet-4-5"},
        "credentialsSecretRef": {"name": "keys"}, "providersConfigMapRef": {"name": "models"},
        "instructions": "be brief", "historyLimit": 5,
        "tasks": [{"name": "task-1", "message": "Scaffold it", "mode": "prompt"},
                  {"name": "task-2", "message": "Test it", "mode": "prompt"}]}


def test_create_wait_returns_once_ready(cluster: FakeCluster,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    cluster.statuses[("lieutenants", "api")] = [{"phase": "Starting"}, condition("Ready")]
    code, out, _ = run(capsys, "create", "api", "--role", "r", "--wait", "--timeout", "5")
    assert (code, out) == (0, "lieutenant/api created\nlieutenant/api is ready\n")


def test_create_refuses_a_model_without_a_provider(cluster: FakeCluster,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "create", "api", "--role", "r", "--model", "claude")
    assert code == 2 and err.startswith("error: --model 'claude': expected PROVIDER/ID")
    assert cluster.objects == {}


def test_send_appends_a_named_task_in_its_mode(cluster: FakeCluster,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    cluster.add("lieutenants", "api", {"tasks": [{"name": "task-1", "message": "a",
                                                  "mode": "prompt"}]})
    assert run(capsys, "send", "api", "turn left", "--mode", "steer", "--task-name", "left") \
        == (0, "task left sent to lieutenant/api as steer\n", "")
    assert run(capsys, "send", "api", "then right")[1] == \
        "task task-3 sent to lieutenant/api as prompt\n"
    assert [(t["name"], t["message"], t["mode"]) for t in
            cluster.get("lieutenants", "api")["spec"]["tasks"]] == [
        ("task-1", "a", "prompt"), ("left", "turn left", "steer"),
        ("task-3", "then right", "prompt")]


def test_send_never_names_a_task_after_one_that_already_ran(
        cluster: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    # task-1..task-3 ran and were pruned; the status still lists them.
    cluster.add("lieutenants", "api", {"tasks": []}, {"tasks": [
        {"name": f"task-{i}", "phase": "Succeeded"} for i in (1, 2, 3)]})
    assert run(capsys, "send", "api", "next")[1] == \
        "task task-4 sent to lieutenant/api as prompt\n"
    code, _, err = run(capsys, "send", "api", "again", "--task-name", "task-2")
    assert (code, err) == (1, "error: lieutenant api already ran a task named 'task-2': task "
                              "names are never reused, choose another --task-name\n")


def _finished(*names: str, running: str = "") -> tuple[Obj, Obj]:
    spec = {"tasks": [{"name": n, "message": n, "mode": "prompt"}
                      for n in (*names, *([running] if running else []))]}
    status = {"tasks": [{"name": n, "phase": "Succeeded"} for n in names] +
              ([{"name": running, "phase": "Running"}] if running else [])}
    return spec, status


def test_prune_removes_finished_tasks_keeping_the_n_most_recent(
        cluster: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    cluster.add("lieutenants", "api", *_finished("a", "b", "c", running="d"))
    assert run(capsys, "prune", "api", "--keep", "1") == (
        0, "pruned 2 finished tasks (a, b) from lieutenant/api\n", "")
    assert [t["name"] for t in cluster.get("lieutenants", "api")["spec"]["tasks"]] == ["c", "d"]
    assert run(capsys, "prune", "api", "--keep", "1")[1] == \
        "lieutenant/api has no finished tasks to prune beyond the 1 most recent\n"
    assert run(capsys, "prune", "api")[1] == "pruned 1 finished task (c) from lieutenant/api\n"
    assert run(capsys, "prune", "api")[1] == "lieutenant/api has no finished tasks to prune\n"
    assert [t["name"] for t in cluster.get("lieutenants", "api")["spec"]["tasks"]] == ["d"]


def test_prune_knows_a_task_answered_in_history_as_finished(
        cluster: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    """status.tasks keeps a window of finished tasks; the history may still name one."""
    spec, status = _finished(running="b")
    spec["tasks"].insert(0, {"name": "a", "message": "a", "mode": "prompt"})
    status["history"] = [{"task": "a", "stopReason": "stop"}]
    cluster.add("lieutenants", "api", spec, status)
    assert run(capsys, "prune", "api")[1] == "pruned 1 finished task (a) from lieutenant/api\n"


def test_prune_reads_again_when_the_list_moved_under_it(
        cluster: FakeCluster, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Another writer removes `a` between the read and the patch: the patch's tests fail,
    the prune reads the list again and removes what is left."""
    cluster.add("lieutenants", "api", *_finished("a", "b", running="c"))
    patch = cluster.json_patch
    moved: list[bool] = []

    def meanwhile(plural: str, name: str, operations: list[Obj],
                  namespace: str | None = None) -> Obj:
        if not moved:
            moved.append(True)
            del cluster.objects[("lieutenants", NAMESPACE, "api")]["spec"]["tasks"][0]
        return patch(plural, name, operations, namespace)

    monkeypatch.setattr(cluster, "json_patch", meanwhile)
    assert run(capsys, "prune", "api")[1] == "pruned 1 finished task (b) from lieutenant/api\n"
    assert [t["name"] for t in cluster.get("lieutenants", "api")["spec"]["tasks"]] == ["c"]


def test_send_near_the_budget_prunes_the_finished_tasks_and_says_so(
        cluster: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    big = "x" * (pruning.PRUNE_AT // 3)
    spec, status = _finished("task-1", "task-2", running="task-3")
    spec["tasks"][0]["message"] = spec["tasks"][1]["message"] = big
    cluster.add("lieutenants", "api", spec, status)
    # Below the mark nothing goes.
    assert run(capsys, "send", "api", "small")[1] == \
        "task task-4 sent to lieutenant/api as prompt\n"
    assert run(capsys, "send", "api", big)[1] == \
        "task task-5 sent to lieutenant/api as prompt (pruned 2 finished tasks to make room)\n"
    assert [t["name"] for t in cluster.get("lieutenants", "api")["spec"]["tasks"]] == [
        "task-3", "task-4", "task-5"]


def test_prune_refuses_a_negative_keep(cluster: FakeCluster,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    cluster.add("lieutenants", "api", *_finished("a"))
    assert run(capsys, "prune", "api", "--keep", "-1") == (
        2, "", "error: --keep -1: expected 0 or more finished tasks to keep\n")


def test_read_shows_the_tail_or_the_history(cluster: FakeCluster,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    cluster.add("lieutenants", "api", status={"phase": "Idle", "history": [
        {"task": "task-1", "response": "first answer", "stopReason": "stop"},
        {"task": "task-2", "response": "second answer", "stopReason": "stop"}]})
    assert run(capsys, "read", "api") == (0, "second answer\n", "")
    assert run(capsys, "read", "api", "--tail", "6") == (0, "answer\n", "")
    assert run(capsys, "read", "api", "--history", "1")[1] == (
        "=== Response 1 ===\n(task task-2, stop)\nsecond answer\n\n=== Current (idle) ===\n")


def _record(cluster: FakeCluster, task: str, answer: str, completed: str) -> None:
    record = cluster.add("taskrecords", record_name("api", task), spec={
        "lieutenant": "api", "task": task, "phase": "Succeeded", "stopReason": "stop",
        "answer": answer, "completedAt": completed, "usage": {"cost": 0.0125},
        "toolCalls": [{"name": "bash", "arguments": "{}", "ok": True}]})
    record["metadata"]["labels"] = {LABEL_LIEUTENANT: "api", LABEL_TASK: task}


def test_read_task_prints_the_full_answer_from_its_record(
        cluster: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    cluster.add("lieutenants", "api", {"tasks": [{"name": "t1", "message": "m"},
                                                 {"name": "t2", "message": "m"}]},
                {"tasks": [{"name": "t1", "phase": "Succeeded"},
                           {"name": "t2", "phase": "Running"}], "history": []})
    _record(cluster, "t1", "Narration.\n\nFinal words.", "2026-01-01T00:00:00Z")
    assert run(capsys, "read", "api", "--task", "t1") == (
        0, "Narration.\n\nFinal words.\n", "")
    assert run(capsys, "read", "api", "--task", "t1", "--tail", "6") == (0, "words.\n", "")
    code, _, err = run(capsys, "read", "api", "--task", "t2")
    assert code == 1 and "task t2 is Running: its record is written when it ends" in err
    code, _, err = run(capsys, "read", "api", "--task", "t1", "--follow")
    assert code == 2 and "--task prints a finished task's answer" in err


def test_history_lists_the_records_oldest_first(
        cluster: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    cluster.add("lieutenants", "api")
    cluster.add("lieutenants", "other")
    _record(cluster, "late", "Second.", "2026-01-02T00:00:00Z")
    _record(cluster, "early", "First line.\nmore", "2026-01-01T00:00:00Z")
    code, out, _ = run(capsys, "history", "api")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["TASK", "PHASE", "STOP", "TOOLS", "COST",
                                               "ENDED", "ANSWER"]
    assert [line.split()[0] for line in lines[1:]] == ["early", "late"]
    assert lines[1].split()[1:5] == ["Succeeded", "stop", "1", "0.0125"]
    assert lines[1].endswith("First line.")
    code, out, _ = run(capsys, "history", "api", "--limit", "1", "-o", "json")
    assert [r["task"] for r in json.loads(out)] == ["late"]
    assert run(capsys, "history", "other") == (
        0, f"No task records of lieutenant other in namespace {NAMESPACE}.\n", "")


def test_read_follow_a_task_that_ended_unseen_prints_its_answer_and_fails_with_it(
        cluster: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    working = cluster.add("lieutenants", "api", {"tasks": [{"name": "t", "message": "m"}]},
                          {"phase": "Working", "currentTask": {"name": "t", "output": "one "},
                           "tasks": [{"name": "t", "phase": "Running"}]})
    more = copy.deepcopy(working)
    more["status"]["currentTask"]["output"] = "one two"
    failed = copy.deepcopy(working)
    failed["status"] = {"phase": "Idle", "currentTask": {},
                        "tasks": [{"name": "t", "phase": "Failed", "note": "model error"}],
                        "history": [{"task": "t", "response": "one two three"}]}
    # No version said where its events begin (the operator wrote none while it ran, or an
    # older operator): the VM is not asked, the answer comes from history.
    cluster.statuses[("lieutenants", "api")] = [more["status"], failed["status"]]
    assert run(capsys, "read", "api", "--follow", "--timeout", "5") == (
        1, "one two three\n", "error: task t failed: model error\n")
    # With its record written (as the operator does before that status), the full answer.
    _record(cluster, "t", "Narration, one two,\n\nthree.", "2026-01-01T00:00:00Z")
    cluster.add("lieutenants", "api", working["spec"], working["status"])
    cluster.statuses[("lieutenants", "api")] = [more["status"], failed["status"]]
    assert run(capsys, "read", "api", "--follow", "--timeout", "5") == (
        1, "Narration, one two,\n\nthree.\n", "error: task t failed: model error\n")


def test_status_is_a_table_or_data(cluster: FakeCluster,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "status")[1] == f"No lieutenants found in namespace {NAMESPACE}.\n"
    cluster.add("lieutenants", "api", {"model": {"provider": "p", "id": "m"}},
                {"phase": "Idle", "taskCount": 2})
    cluster.add("lieutenants", "web", namespace="other")
    table = run(capsys, "status")[1].splitlines()
    assert table[0].split()[:3] == ["NAME", "PHASE", "REASON"] and len(table) == 2
    assert table[1].split()[:2] == ["api", "Idle"] and "p/m" in table[1]
    assert len(run(capsys, "status", "-A")[1].splitlines()) == 3
    code, out, _ = run(capsys, "status", "-o", "yaml")
    assert code == 0 and out.startswith("- name: api\n  namespace: team\n  spec:\n")


def _held(reason: str, message: str, ready: str = "False", **status: Any) -> Obj:
    return {"phase": "Paused", "conditions": [
        {"type": "Ready", "status": ready, "reason": reason, "message": message,
         "observedGeneration": 1}], **status}


def test_status_shows_why_a_policy_holds_a_lieutenant(
        cluster: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    cluster.add("lieutenants", "api", {"idlePolicy": {"pauseAfter": "15m",
                                                      "destroyAfter": "7d"}},
                _held("IdlePaused", "paused after 15m idle; the next task resumes it", "True"))
    cluster.add("lieutenants", "web", {"budget": {"maxTokens": 40000, "maxCostUSD": 2}},
                _held("BudgetExhausted", "budget spent: 41,200 of 40,000 tokens",
                      usage={"inputTokens": 30000, "outputTokens": 1200,
                             "cacheReadTokens": 9000, "cacheWriteTokens": 1000,
                             "cost": 0.5}))
    cluster.add("lieutenants", "old", {}, {"phase": "Destroyed", "conditions": [
        {"type": "Ready", "status": "False", "reason": "Expired",
         "message": "destroyed after 7d\nwithout tasks", "observedGeneration": 1}]})
    cluster.add("lieutenants", "busy", {}, {"phase": "Working", "conditions": [
        {"type": "Ready", "status": "True", "reason": "SessionReady",
         "message": "the agent takes tasks", "observedGeneration": 1}]})
    lines = run(capsys, "status")[1].splitlines()
    header = lines[0].split()
    assert header[:3] == ["NAME", "PHASE", "REASON"] and "BUDGET" in header
    rows = {line.split()[0]: line for line in lines[1:5]}
    assert rows["api"].split()[1:3] == ["Paused", "IdlePaused"]
    assert "pause 15m, destroy 7d" in rows["api"]
    assert rows["web"].split()[1:3] == ["Paused", "BudgetExhausted"]
    assert "41,200/40,000 tok, $0.5000/$2.00" in rows["web"]
    assert rows["old"].split()[1:3] == ["Destroyed", "Expired"]
    assert rows["busy"].split()[1:3] == ["Working", "SessionReady"]
    # The held ones, each with the operator's one-line message; not the working one.
    assert lines[5:] == ["",
                         "api: IdlePaused: paused after 15m idle; the next task resumes it",
                         "old: Expired: destroyed after 7d without tasks",
                         "web: BudgetExhausted: budget spent: 41,200 of 40,000 tokens"]
    # Every namespace: the notes name the namespace too.
    everywhere = run(capsys, "status", "-A")[1].splitlines()
    assert everywhere[0].split()[:4] == ["NAMESPACE", "NAME", "PHASE", "REASON"]
    assert f"{NAMESPACE}/api: IdlePaused: paused after 15m idle; the next task resumes it" \
        in everywhere


def test_status_fills_what_the_spec_leaves_out_from_the_namespace_policy(
        cluster: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    cluster.add("reefpolicies", "newer", {"defaults": {"idlePolicy": {"pauseAfter": "1h"}}})
    cluster.objects[("reefpolicies", NAMESPACE, "newer")]["metadata"][
        "creationTimestamp"] = "2026-12-02T00:00:00Z"
    cluster.add("reefpolicies", "team", {"defaults": {"idlePolicy": {"pauseAfter": "20m"},
                                                      "budget": {"maxCostUSD": 5}}})
    cluster.objects[("reefpolicies", NAMESPACE, "team")]["metadata"][
        "creationTimestamp"] = "2026-12-01T00:00:00Z"
    cluster.add("lieutenants", "api", {"budget": {"maxTokens": 100}},
                {"phase": "Idle", "usage": {"inputTokens": 7}})
    cluster.add("lieutenants", "web", {"idlePolicy": {}}, {"phase": "Idle"})
    lines = run(capsys, "status")[1].splitlines()
    rows = {line.split()[0]: line for line in lines[1:]}
    assert "7/100 tok " in rows["api"] and "pause 20m (policy)" in rows["api"]
    assert "$0.0000/$5.00 (policy)" in rows["web"] and "pause" not in rows["web"]
    assert len(lines) == 3      # nothing held: no notes


def test_pause_and_resume_set_the_state_and_wait_for_its_condition(
        cluster: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    cluster.add("lieutenants", "api")
    cluster.statuses[("lieutenants", "api")] = [condition("Paused")]
    assert run(capsys, "pause", "api", "--wait")[1] == \
        "lieutenant/api set to Paused\nlieutenant/api is paused\n"
    cluster.statuses[("lieutenants", "api")] = [condition("Paused", "False"),
                                                condition("Ready")]
    assert run(capsys, "resume", "api", "--wait")[1] == \
        "lieutenant/api set to Running\nlieutenant/api is running\n"
    assert [p for _, _, p in cluster.patches] == [{"spec": {"state": "Paused"}},
                                                 {"spec": {"state": "Running"}}]


def test_destroy_star_touches_only_lieutenants(cluster: FakeCluster,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    cluster.add("lieutenants", "api")
    cluster.add("lieutenants", "web")
    cluster.add("vmnodes", "infra")
    assert run(capsys, "destroy", "*", "--yes")[1] == \
        "lieutenant/api destroyed\nlieutenant/web destroyed\n"
    assert [(p, n) for p, n, _ in cluster.patches] == [("lieutenants", "api"),
                                                       ("lieutenants", "web")]
    assert run(capsys, "destroy", "web", "-y", "--delete")[1] == "lieutenant/web deleted\n"
    assert ("lieutenants", NAMESPACE, "web") not in cluster.objects


# -- the fleet ------------------------------------------------------------------------------

def _fleet(cluster: FakeCluster) -> None:
    cluster.add("vmnodes", "api", {"category": "Lieutenant", "modules": ["store"]},
                {"vmId": "vm-1", "vmState": "running"})
    cluster.add("vmnodes", "worker", {"category": "Swarm", "parentRef": {"name": "api"},
                                      "modules": ["store", "test-runner"],
                                      "capabilities": ["npm"]},
                {"vmId": "vm-2", "vmState": "running"})
    cluster.add("lieutenants", "api", status={"vmNodeName": "api"})


def test_tree_draws_filters_and_refuses_an_unknown_root(
        cluster: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    _fleet(cluster)
    assert run(capsys, "tree")[1].splitlines() == [
        "api [Lieutenant] running vm=vm-1 dna: modules=store capabilities=-",
        "└── worker [Swarm] running vm=vm-2 dna: modules=store,test-runner capabilities=npm"]
    assert run(capsys, "tree", "worker", "-o", "json")[1].count('"name"') == 1
    assert run(capsys, "tree", "--category", "agent")[1] == "No VMNodes match.\n"
    assert run(capsys, "tree", "--capability", "npm")[1].count("\n") == 2
    assert run(capsys, "tree", "nope")[2] == \
        f"error: vmnode 'nope' not found in namespace {NAMESPACE}\n"


def test_diff_and_discover(cluster: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    _fleet(cluster)
    assert "modules:\n  added:\n  - test-runner\n" in \
        run(capsys, "diff", "api", "worker", "-o", "yaml")[1]
    assert run(capsys, "diff", "api", "ghost")[0] == 1
    rows = run(capsys, "discover", "-o", "yaml")[1]
    assert "vmnode: api\n  category: Lieutenant\n  lieutenant: api\n" in rows
    assert run(capsys, "discover")[1].splitlines()[0].split()[:4] == \
        ["NAMESPACE", "VMNODE", "CATEGORY", "LIEUTENANT"]


# -- VMs, the dashboard, the configuration -------------------------------------------------

def test_exec_hands_the_command_over_and_returns_its_exit_status(
        cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[tuple[str, list[str], float]] = []

    async def run_on_vm(_: Cluster, name: str, argv: list[str],
                        within: float) -> CommandResult:
        calls.append((name, argv, within))
        return CommandResult(3, "out\n", "err\n")

    monkeypatch.setattr(vm, "run", run_on_vm)
    assert run(capsys, "exec", "--timeout", "9", "api", "--", "ls", "-l") == \
        (3, "out\n", "err\n")
    assert calls == [("api", ["ls", "-l"], 9.0)]
    assert run(capsys, "exec", "api")[0::2] == (2, "error: exec: no command given "
                                                   "(kubectl reef exec NAME -- COMMAND)\n")


def test_exec_passes_on_every_separator_but_a_leading_one() -> None:
    assert exec_.command_words(["--", "ls", "-l"]) == ["ls", "-l"]
    assert exec_.command_words(["--", "grep", "--", "-x"]) == ["grep", "--", "-x"]
    assert exec_.command_words(["echo", "--"]) == ["echo", "--"]
    assert exec_.command_words([]) == []


def test_cp_hands_source_and_local_path_over(cluster: FakeCluster,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[tuple[str, Path]] = []

    async def copy_from_vm(_: Cluster, source: str, destination: Path) -> str:
        calls.append((source, destination))
        return "copied 1 file(s) to x"

    monkeypatch.setattr(vm, "copy", copy_from_vm)
    assert run(capsys, "cp", "api:work/x", "./x") == (0, "copied 1 file(s) to x\n", "")
    assert calls == [("api:work/x", Path("x"))]


def test_dashboard_serves_with_its_options(cluster: FakeCluster,
                                           monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[tuple[str, int, bool]] = []

    def serve(_: Cluster, address: str, port: int, everywhere: bool, announce: Any) -> None:
        calls.append((address, port, everywhere))
        announce("dashboard at http://127.0.0.1:0/")

    monkeypatch.setattr(dashboard, "serve", serve)
    assert run(capsys, "dashboard") == (0, "dashboard at http://127.0.0.1:0/\n", "")
    run(capsys, "dashboard", "--address", "0.0.0.0", "--port", "0", "-A")
    assert calls == [("127.0.0.1", 8474, False), ("0.0.0.0", 0, True)]


def test_config_shows_rows_and_changes_one_key(cluster: FakeCluster,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("REEF_DEFAULT_PROFILE", "swarm")
    seen: list[tuple[str, str | None, str, str]] = []

    def resolved(_: Cluster, env: dict[str, str], namespace: str) -> list[dict[str, str]]:
        return [{"key": "REEF_DEFAULT_PROFILE", "value": env["REEF_DEFAULT_PROFILE"],
                 "source": "env"}]

    def change(_: Cluster, env: dict[str, str], namespace: str, key: str,
               value: str | None) -> list[str]:
        seen.append((key, value, namespace, env["REEF_DEFAULT_PROFILE"]))
        return ["changed"]

    monkeypatch.setattr(settings, "resolved", resolved)
    monkeypatch.setattr(settings, "change", change)
    assert [line.split() for line in run(capsys, "config")[1].splitlines()] == [
        ["KEY", "VALUE", "SOURCE"], ["REEF_DEFAULT_PROFILE", "swarm", "env"]]
    assert run(capsys, "config", "set", "REEF_PLATFORM_RATE", "5",
               "--operator-namespace", "ops") == (0, "changed\n", "")
    run(capsys, "config", "unset", "REEF_PLATFORM_RATE")
    assert seen == [("REEF_PLATFORM_RATE", "5", "ops", "swarm"),
                    ("REEF_PLATFORM_RATE", None, "reef-system", "swarm")]


@pytest.mark.parametrize("words", [["set", "KEY"], ["unset"], ["get", "KEY"],
                                   ["set", "KEY", "VALUE", "MORE"]])
def test_config_change_words_other_than_set_or_unset_are_bad_usage(words: list[str]) -> None:
    with pytest.raises(PluginError) as error:
        config.change(words)
    assert error.value.exit_code == 2 and "expected `config set KEY VALUE`" in str(error.value)


# -- wait -----------------------------------------------------------------------------------

def test_wait_watches_a_lieutenant_or_a_vmnode_until_the_target_is_met(
        cluster: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    cluster.add("lieutenants", "api", status={"phase": "Working"})
    cluster.statuses[("lieutenants", "api")] = [{"phase": "Idle"}]
    assert run(capsys, "wait", "api", "--for=phase=Idle") == \
        (0, "lieutenant/api condition met\n", "")
    cluster.add("vmnodes", "worker")
    cluster.statuses[("vmnodes", "worker")] = [condition("Ready", "True"),
                                               condition("Ready", "False", "Paused")]
    assert run(capsys, "wait", "vmnode/worker", "--for", "condition=Ready=false") == \
        (0, "vmnode/worker condition met\n", "")


def test_wait_times_out_naming_the_target(cluster: FakeCluster,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    cluster.add("lieutenants", "api")
    assert run(capsys, "wait", "api", "--for=condition=Ready", "--timeout", "0")[0::2] == (
        1, "error: timed out after 0s waiting for api Ready=True (now: nothing read)\n")


def test_wait_refuses_a_phase_for_a_vmnode(cluster: FakeCluster,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "wait", "vmnode/worker", "--for=phase=Idle")
    assert code == 2 and "vmnode/worker has no phase" in err


@pytest.mark.parametrize("value", ["ready", "phase=idle", "condition=", "condition=Ready=yes",
                                   "state=Ready"])
def test_wait_rejects_a_bad_target_before_connecting(
        value: str, cluster: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["wait", "api", f"--for={value}"])
    assert exit_.value.code == 2
    assert f"argument --for: {value!r}: " in capsys.readouterr().err
    assert cluster.connected == []


def test_wait_target_reaches_the_handler_typed() -> None:
    args = parser().parse_args(["wait", "api", "--for=condition=Paused=FALSE"])
    assert (args.name, args.target, args.timeout) == \
        ("api", ConditionTarget("Paused", "False"), 300)
    assert parser().parse_args(["wait", "api", "--for=phase=Idle"]).target == PhaseTarget("Idle")


def test_exec_on_a_held_lieutenant_says_what_wakes_it() -> None:
    assert "send it a task" in how_to_wake("Paused", {"reason": "IdlePaused"})
    spent = "the budget is spent: 60 tokens used of spec.budget.maxTokens 50; raise it"
    assert how_to_wake("Paused", {"reason": "BudgetExhausted", "message": spent}) == spent
    assert how_to_wake("Paused", {"reason": "Paused"}) == "resume it first"
    assert how_to_wake("Destroyed", {"reason": "Expired"}) == "its VM is gone"
