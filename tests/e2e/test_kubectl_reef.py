"""`kubectl reef` against the real control plane, a running operator and the real pi.

The plugin is run as a user runs it (its console script, and once through
kubectl's plugin discovery); its outputs and exit codes are the assertions.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from reef_devkit.controlplane.processes import free_port
from reef_devkit.operator_process import OperatorProcess
from reef_operator.api.lieutenant import FINISHED_TASK_PHASES
from reef_operator.constants import API_VERSION
from tests.conftest import Kube
from tests.e2e.conftest import wait_for
from tests.e2e.plugin import PLUGIN, create, failed, ok, reef, spawn_worker

pytestmark = pytest.mark.controlplane

SCRIPT = """
tasks:
  - match: "Scaffold the API"
    steps:
      - tool_calls:
          - name: write
            arguments: {path: api/src/config.ts, content: "export const PORT = 3000;\\n"}
      - text: "Scaffolded: src/config.ts exports PORT."
  - match: "Add the database"
    expect_in_conversation: ["Scaffold the API", "Scaffolded: src/config.ts"]
    steps:
      - text: "Database added, importing PORT from the config I wrote."
  - match: "Explode"
    steps:
      - error: {status: 400, message: "scripted provider failure"}
  - match: "Stream slowly"
    steps:
      - text: "one two three four five six seven eight nine ten eleven twelve"
        chunks: 12
        delay: 0.3
"""



def test_create_send_follow_and_read_history(admin: Kube, scripted: str,
                                             operator: OperatorProcess) -> None:
    ns = scripted
    create(admin, ns)
    assert ok(reef(admin, "send", "api", "Scaffold the API", "-n", ns)) == \
        "task task-1 sent to lieutenant/api as prompt\n"
    assert ok(reef(admin, "-n", ns, "read", "api", "--follow")) == \
        "Scaffolded: src/config.ts exports PORT.\n"
    ok(reef(admin, "-n", ns, "send", "api", "Add the database layer", "--task-name", "db"))
    assert ok(reef(admin, "-n", ns, "read", "api", "-f")) == \
        "Database added, importing PORT from the config I wrote.\n"

    history = ok(reef(admin, "-n", ns, "read", "api", "--history", "2"))
    assert history == (
        "=== Response 1 ===\n(task task-1, stop)\nScaffolded: src/config.ts exports PORT.\n\n"
        "=== Response 2 ===\n(task db, stop)\n"
        "Database added, importing PORT from the config I wrote.\n\n"
        "=== Current (idle) ===\n")
    assert ok(reef(admin, "-n", ns, "read", "api", "--history", "1")).startswith(
        "=== Response 1 ===\n(task db, stop)")
    assert ok(reef(admin, "-n", ns, "read", "api")) == \
        "Database added, importing PORT from the config I wrote.\n"
    assert ok(reef(admin, "-n", ns, "read", "api", "--tail", "15")) == "config I wrote.\n"

    table = ok(reef(admin, "-n", ns, "status")).splitlines()
    assert table[0].split()[:6] == ["NAME", "PHASE", "REASON", "TASK", "TASKS", "VM"]
    row = table[1].split()
    assert row[:3] == ["api", "Idle", "SessionReady"] and row[4] == "2" and \
        "scripted/scripted-1" in row
    as_json = json.loads(ok(reef(admin, "-n", ns, "status", "-o", "json")))
    assert [(o["name"], o["status"]["taskCount"]) for o in as_json] == [("api", 2)]
    as_yaml = yaml.safe_load(ok(reef(admin, "-n", ns, "status", "-o", "yaml")))
    assert as_yaml[0]["status"]["history"][1]["task"] == "db"

    # Bad input: a clear message and a non-zero exit, and nothing stored is changed.
    assert "already has a task named 'db'" in failed(
        reef(admin, "-n", ns, "send", "api", "again", "--task-name", "db"))
    assert "--mode 'shout': expected one of prompt, steer, followUp" in failed(
        reef(admin, "-n", ns, "send", "api", "hi", "--mode", "shout"), code=2)
    tasks = admin.get("lieutenants", "api", ns)["spec"]["tasks"]
    assert [t["name"] for t in tasks] == ["task-1", "db"]

    # kubectl finds the plugin on PATH, as it would on a user's machine.
    through_kubectl = subprocess.run(
        [str(admin.kubectl_binary), "reef", "-n", ns, "status", "-o", "json"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "PATH": f"{Path(PLUGIN).parent}:{os.environ['PATH']}",
             "KUBECONFIG": str(admin.kubeconfig)})
    assert json.loads(ok(through_kubectl))[0]["name"] == "api"


def test_follow_streams_and_reports_a_failed_task(admin: Kube, scripted: str,
                                                  operator: OperatorProcess) -> None:
    ns = scripted
    create(admin, ns)
    # The follower is waiting before the task starts (it says so while the lieutenant is
    # paused), so its start-up (it opens a shell on the VM) is not raced by the task.
    ok(reef(admin, "-n", ns, "pause", "api", "--wait"))
    ok(reef(admin, "-n", ns, "send", "api", "Stream slowly please"))
    follower = subprocess.Popen([PLUGIN, "-n", ns, "read", "api", "--follow"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0,
                                env={**os.environ, "KUBECONFIG": str(admin.kubeconfig)})
    assert follower.stdout is not None and follower.stderr is not None
    assert b"is paused: task task-1 starts after it resumes" in follower.stderr.readline()
    ok(reef(admin, "-n", ns, "resume", "api"))
    first = os.read(follower.stdout.fileno(), 3)   # output arrives while the task still runs
    # The follower reads pi's log on the VM, ahead of the status (written at most once a
    # second while text streams): the status may not say Working yet, but it cannot say
    # the task is finished.
    tasks = admin.get("lieutenants", "api", ns)["status"].get("tasks") or []
    rest, _ = follower.communicate(timeout=120)
    assert (first + rest).decode() == \
        "one two three four five six seven eight nine ten eleven twelve\n"
    assert next(t["phase"] for t in tasks if t["name"] == "task-1") not in FINISHED_TASK_PHASES
    assert follower.returncode == 0

    ok(reef(admin, "-n", ns, "send", "api", "Explode now", "--task-name", "boom"))
    message = failed(reef(admin, "-n", ns, "read", "api", "--follow", "--timeout", "120"))
    assert message.startswith("error: task boom failed: ") and "scripted provider failure" \
        in message


def test_exec_and_cp_on_the_lieutenants_vm(admin: Kube, scripted: str,
                                           operator: OperatorProcess, tmp_path: Path) -> None:
    ns = scripted
    create(admin, ns)
    ok(reef(admin, "-n", ns, "send", "api", "Scaffold the API"))
    ok(reef(admin, "-n", ns, "read", "api", "--follow"))

    result = reef(admin, "-n", ns, "exec", "api", "--", "cat workspace/api/src/config.ts; "
                  "echo to-stderr >&2; exit 3")
    assert (result.returncode, result.stdout, result.stderr) == (
        3, "export const PORT = 3000;\n", "to-stderr\n")
    assert ok(reef(admin, "-n", ns, "exec", "api", "--", "printf", "%s|", "a b", "c")) == \
        "a b|c|"

    ok(reef(admin, "-n", ns, "cp", "api:workspace/api/src/config.ts", str(tmp_path / "c.ts")))
    assert (tmp_path / "c.ts").read_text() == "export const PORT = 3000;\n"
    (tmp_path / "into").mkdir()
    assert "copied 1 file(s)" in ok(reef(admin, "-n", ns, "cp", "api:workspace/api",
                                         str(tmp_path / "into")))
    assert (tmp_path / "into" / "api" / "src" / "config.ts").is_file()

    assert "workspace/nothing: no such file or directory on lieutenant api" in failed(
        reef(admin, "-n", ns, "cp", "api:workspace/nothing", str(tmp_path / "x")))
    assert "lieutenant 'ghost' not found in namespace" in failed(
        reef(admin, "-n", ns, "exec", "ghost", "--", "true"))
    assert "no command given" in failed(reef(admin, "-n", ns, "exec", "api"), code=2)


def test_pause_resume_wait_and_not_running_errors(admin: Kube, scripted: str,
                                                  operator: OperatorProcess) -> None:
    ns = scripted
    create(admin, ns)
    assert ok(reef(admin, "-n", ns, "pause", "api", "--wait")).splitlines() == [
        "lieutenant/api set to Paused", "lieutenant/api is paused"]
    assert admin.get("lieutenants", "api", ns)["status"]["phase"] == "Paused"
    assert "lieutenant/api is already Paused" in ok(reef(admin, "-n", ns, "pause", "api"))
    assert "lieutenant api is not running (Paused): resume it first" in failed(
        reef(admin, "-n", ns, "exec", "api", "--", "true"))
    # A task sent while paused waits for the resume.
    assert "(the lieutenant is paused: it runs after resume)" in ok(
        reef(admin, "-n", ns, "send", "api", "Scaffold the API"))
    assert "timed out after 2s waiting for api Ready=True" in failed(
        reef(admin, "-n", ns, "wait", "api", "--for=condition=Ready", "--timeout", "2"))

    assert ok(reef(admin, "-n", ns, "resume", "api", "--wait")).splitlines() == [
        "lieutenant/api set to Running", "lieutenant/api is running"]
    assert ok(reef(admin, "-n", ns, "read", "api", "--follow")) == \
        "Scaffolded: src/config.ts exports PORT.\n"
    ok(reef(admin, "-n", ns, "wait", "api", "--for=phase=Idle", "--timeout", "60"))
    assert "expected condition=TYPE[=STATUS] or phase=PHASE" in failed(
        reef(admin, "-n", ns, "wait", "api", "--for=ready"), code=2)


def test_destroy_star_destroys_only_lieutenants_and_asks_first(
    admin: Kube, scripted: str, operator: OperatorProcess
) -> None:
    ns = scripted
    create(admin, ns, "api")
    create(admin, ns, "web")
    admin.kubectl("apply", "-n", ns, "-f", "-", stdin=yaml.safe_dump({
        "apiVersion": API_VERSION, "kind": "VMNode", "metadata": {"name": "infra"},
        "spec": {"category": "Infra", "profileRef": {"name": "local"}}}))

    assert "refusing to destroy without confirmation" in failed(
        reef(admin, "-n", ns, "destroy", "*", stdin=""))
    assert [admin.get("lieutenants", n, ns)["spec"].get("state", "Running")
            for n in ("api", "web")] == ["Running", "Running"]

    assert ok(reef(admin, "-n", ns, "destroy", "*", "--yes")).splitlines() == [
        "lieutenant/api destroyed", "lieutenant/web destroyed"]
    for name in ("api", "web"):
        wait_for(lambda n=name: admin.get("lieutenants", n, ns)["status"].get("phase")  # type: ignore[misc]
                 == "Destroyed", 120, f"{name} destroyed", operator)
    node = admin.get("vmnodes", "infra", ns)
    assert node["spec"].get("state", "Running") == "Running"      # not a lieutenant: untouched
    assert "lieutenant api is Destroyed: it takes no more tasks" in failed(
        reef(admin, "-n", ns, "send", "api", "more work"))
    assert "lieutenant api is Destroyed: its VM is gone" in failed(
        reef(admin, "-n", ns, "resume", "api"))
    assert "no lieutenants in namespace" not in ok(reef(admin, "-n", ns, "status"))


def test_tree_diff_and_discover_after_an_operator_restart(
    admin: Kube, scripted: str, operator: OperatorProcess
) -> None:
    ns = scripted
    create(admin, ns)
    parent = spawn_worker(admin, ns, "api")

    tree = ok(reef(admin, "-n", ns, "tree")).splitlines()
    worker_vm = admin.get("vmnodes", "worker", ns)["status"]["vmId"]
    assert tree[0].startswith(f"{parent} [Lieutenant] running vm=")
    assert tree[1] == (f"└── worker [Swarm] running vm={worker_vm} dna: "
                       "modules=store,test-runner capabilities=npm")
    assert ok(reef(admin, "-n", ns, "tree", "worker")).splitlines() == [tree[1][4:]]
    difference = json.loads(ok(reef(admin, "-n", ns, "diff", parent, "worker", "-o", "json")))
    assert difference["modules"] == {"added": ["test-runner"], "removed": [],
                                     "common": ["store"]}
    assert difference["capabilities"]["added"] == ["npm"]
    assert "vmnode 'nope' not found" in failed(reef(admin, "-n", ns, "diff", parent, "nope"))

    before = {r["vmnode"]: r for r in json.loads(ok(reef(admin, "-n", ns, "discover",
                                                          "-o", "json")))}
    assert before[parent]["lieutenant"] == "api" and before[parent]["held"] == "created"
    assert before["worker"]["lieutenant"] == "" and before["worker"]["vmId"] == worker_vm

    time.sleep(6)   # so a re-attach is told apart from the start
    operator.restart()
    wait_for(lambda: admin.get("lieutenants", "api", ns)["status"]["session"]["attachedAt"]
             != before[parent]["attachedAt"], 120, "re-attached", operator)
    after = {r["vmnode"]: r for r in json.loads(ok(reef(admin, "-n", ns, "discover",
                                                         "-o", "json")))}
    assert after[parent]["held"] == "created, re-attached"
    assert after[parent]["vmId"] == before[parent]["vmId"]      # the same VM, not a new one
    table = ok(reef(admin, "-n", ns, "discover"))
    assert "created, re-attached" in table and "worker" in table


def test_errors_without_a_cluster_or_object(admin: Kube, namespace: str,
                                            tmp_path: Path) -> None:
    missing = reef(admin, "status", env={"KUBECONFIG": str(tmp_path / "none")})
    assert "no cluster configured" in failed(missing)

    config: dict[str, Any] = yaml.safe_load(admin.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{free_port()}"
    dead = tmp_path / "dead.kubeconfig"
    dead.write_text(yaml.safe_dump(config))
    assert "cannot reach the cluster at https://127.0.0.1:" in failed(
        reef(admin, "status", env={"KUBECONFIG": str(dead)}))

    assert f"lieutenant 'api' not found in namespace {namespace}; there are none" in failed(
        reef(admin, "-n", namespace, "read", "api"))
    assert ok(reef(admin, "-n", namespace, "status")) == \
        f"No lieutenants found in namespace {namespace}.\n"
    for command in ("create", "send", "read", "status", "pause", "resume", "destroy",
                    "discover", "tree", "diff", "exec", "cp", "wait", "config", "dashboard"):
        assert "usage: kubectl reef" in ok(reef(admin, command, "--help"))
    assert "invalid choice" in failed(reef(admin, "explode"), code=2)


def test_config_shows_each_value_with_its_source_and_masks_the_key(
    admin: Kube, namespace: str
) -> None:
    key = "vers-key-" + "9z" * 16
    rows = json.loads(ok(reef(admin, "config", "-o", "json", env={
        "VERS_API_KEY": key, "REEF_DEFAULT_PROFILE": "lightweight"})))
    found = {r["key"]: r for r in rows}
    assert found["REEF_DEFAULT_PROFILE"] == {"key": "REEF_DEFAULT_PROFILE",
                                             "value": "lightweight", "source": "env"}
    assert found["VERS_API_KEY"]["source"] == "env"
    assert key not in json.dumps(rows) and found["VERS_API_KEY"]["value"].startswith("vers")
    table = ok(reef(admin, "config", env={"VERS_API_KEY": key}))
    assert key not in table and table.splitlines()[0].split() == ["KEY", "VALUE", "SOURCE"]
    assert "no Deployment reef-system/reef-operator" in failed(
        reef(admin, "config", "--from-deployment"))


def test_config_set_checks_the_value_and_changes_only_the_configmap(
    admin: Kube, namespace: str
) -> None:
    ns = ["--operator-namespace", namespace]
    lines = ok(reef(admin, "config", "set", "REEF_PLATFORM_RATE", "50", *ns)).splitlines()
    assert lines[0] == f"REEF_PLATFORM_RATE=50 set in ConfigMap {namespace}/reef-operator-config"
    assert "rollout restart deployment/reef-operator" in lines[-1]
    rows = {r["key"]: r for r in json.loads(ok(reef(admin, "config", "-o", "json", *ns)))}
    assert rows["REEF_PLATFORM_RATE"] == {
        "key": "REEF_PLATFORM_RATE", "value": "50",
        "source": f"configmap {namespace}/reef-operator-config"}
    ok(reef(admin, "config", "set", "REEF_DEFAULT_PROFILE", "swarm", *ns))

    # Refused with the operator's own message; nothing stored is changed.
    assert "not set: REEF_PLATFORM_RATE" in failed(
        reef(admin, "config", "set", "REEF_PLATFORM_RATE", "fast", *ns))
    refused = failed(reef(admin, "config", "set", "VERS_API_KEY", "vers-secret-" + "x" * 20,
                          *ns))
    assert "never goes in a ConfigMap" in refused and "vers-secret" not in refused
    assert "unknown key 'REEF_SPEED'" in failed(
        reef(admin, "config", "set", "REEF_SPEED", "1", *ns))
    assert "expected `config set KEY VALUE`" in failed(
        reef(admin, "config", "set", "REEF_PLATFORM_RATE", *ns), code=2)
    data = admin.core.read_namespaced_config_map("reef-operator-config", namespace).data
    assert data == {"REEF_PLATFORM_RATE": "50", "REEF_DEFAULT_PROFILE": "swarm"}

    # The environment wins over the ConfigMap, and the plugin says so.
    assert "also set in the environment" in ok(reef(
        admin, "config", "set", "REEF_PLATFORM_RATE", "60", *ns,
        env={"REEF_PLATFORM_RATE": "5"}))
    assert ok(reef(admin, "config", "unset", "REEF_PLATFORM_RATE", *ns)).startswith(
        f"REEF_PLATFORM_RATE removed from ConfigMap {namespace}/reef-operator-config")
    rows = {r["key"]: r for r in json.loads(ok(reef(admin, "config", "-o", "json", *ns)))}
    assert rows["REEF_PLATFORM_RATE"]["source"] == "default"
    assert rows["REEF_DEFAULT_PROFILE"]["value"] == "swarm"
    assert "nothing to do" in ok(reef(admin, "config", "unset", "REEF_PLATFORM_RATE", *ns))
    assert "use `kubectl reef config unset REEF_DEFAULT_PROFILE`" in failed(
        reef(admin, "config", "set", "REEF_DEFAULT_PROFILE", " ", *ns))

    # A CA bundle lives in the operator's container: its path is not checked here.
    assert "not checked here" in ok(reef(admin, "config", "set", "VERS_TLS_VERIFY",
                                         "/etc/reef/ca.pem", *ns))

    # A key leaked into the ConfigMap by hand can be taken out (nothing else is accepted
    # while it is there).
    admin.core.patch_namespaced_config_map("reef-operator-config", namespace,
                                           {"data": {"VERS_API_KEY": "vers-leaked-1234567890"}})
    refused = failed(reef(admin, "config", "set", "REEF_PLATFORM_RATE", "10", *ns))
    assert "put VERS_API_KEY in a Secret" in refused and "vers-leaked" not in refused
    ok(reef(admin, "config", "unset", "VERS_API_KEY", *ns))
    data = admin.core.read_namespaced_config_map("reef-operator-config", namespace).data
    assert data == {"REEF_DEFAULT_PROFILE": "swarm", "VERS_TLS_VERIFY": "/etc/reef/ca.pem"}
