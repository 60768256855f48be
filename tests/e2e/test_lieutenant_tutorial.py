"""The tutorial, declaratively: a lieutenant `api` builds a Node.js API in three dependent tasks.

Real apiserver, the operator as its own process, the real pi on a Local VM,
the scripted model checking that each task's request carries the earlier ones.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from reef_devkit.controlplane import LocalControlPlane
from reef_devkit.controlplane.processes import free_port
from reef_devkit.operator_process import OperatorProcess, simulator_env
from reef_devkit.scripted_model.harness import ScriptedModel
from reef_devkit.versim.harness import VersSimulator
from reef_operator.constants import GROUP, LABEL_AGENT_CREDENTIALS, VERSION
from tests.conftest import Kube
from tests.e2e.conftest import vers_boot_profile, wait_for

pytestmark = pytest.mark.controlplane

SECRET = "sk-tutorial-" + "7q" * 12
TASK1 = "Create a Node.js Express API server in /root/workspace/api with src/config.ts."
TASK2 = "Add PostgreSQL connection pooling using the config you already made."
TASK3 = "Add user CRUD routes that use the pool from db.ts."
LONG = "".join(f"part {n:02d}. " for n in range(40))
SCRIPT = f"""
tasks:
  - match: "Stream a long answer"
    steps:
      - text: "{LONG}"
        chunks: 40
        delay: 0.15
  - match: "Create a Node.js Express API server"
    steps:
      - tool_calls:
          - name: write
            arguments: {{path: api/src/config.ts, content: "export const PORT = 3000;\\n"}}
      - text: "Scaffolded the server: src/config.ts exports PORT."
  - match: "Add PostgreSQL connection pooling"
    expect_in_conversation: ["{TASK1}", "Scaffolded the server"]
    steps:
      - tool_calls:
          - name: write
            arguments: {{path: api/src/db.ts, content: "import {{ PORT }} from './config';\\n"}}
      - text: "Added src/db.ts importing ./config."
  - match: "Add user CRUD routes"
    expect_in_conversation: ["{TASK1}", "{TASK2}", "Added src/db.ts"]
    steps:
      - tool_calls:
          - name: write
            arguments:
              path: api/src/routes/users.ts
              content: "import {{ pool }} from '../db';\\n"
      - text: "Added user routes using the pool from db.ts."
"""


@pytest.fixture(scope="module")
def operator(control_plane: LocalControlPlane, versim: VersSimulator, local_root: Path,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    process = OperatorProcess(control_plane.operator_kubeconfig,
                              tmp_path_factory.mktemp("operator") / "operator.log",
                              {**simulator_env(versim), "REEF_LOCAL_ROOT": str(local_root),
                               "REEF_WEBHOOK_PORT": str(free_port()),
                               "REEF_WEBHOOK_ADDR": "127.0.0.1"})
    process.start()
    yield process
    process.stop()


def _scripted_lieutenant(admin: Kube, namespace: str, model: ScriptedModel, profile: str,
                         tasks: list[dict[str, str]]) -> None:
    """Lieutenant `api` on `profile`, talking to the scripted model."""
    admin.core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="scripted-models"),
        data={"models.json": model.models_json()}))
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Lieutenant", "metadata": {"name": "api"},
            "spec": {"role": "r", "profileRef": {"name": profile},
                     "model": {"provider": "scripted", "id": "scripted-1"},
                     "providersConfigMapRef": {"name": "scripted-models"}, "tasks": tasks}}
    admin.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(body))


def _lieutenant(admin: Kube, namespace: str, name: str) -> dict[str, Any]:
    return admin.get("lieutenants", name, namespace)


@pytest.fixture(scope="module")
def vers_profile(admin: Kube) -> Iterator[str]:
    with vers_boot_profile(admin, "e2e-vers") as name:
        yield name


@pytest.mark.parametrize("provider", ["Local", "Vers"])
def test_tutorial_three_dependent_tasks(admin: Kube, namespace: str, operator: OperatorProcess,
                                       model: ScriptedModel, local_root: Path, provider: str,
                                       vers_profile: str, versim: VersSimulator) -> None:
    admin.core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="scripted-models"),
        data={"models.json": model.models_json()}))
    admin.core.create_namespaced_secret(namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name="api-credentials",
                                     labels={LABEL_AGENT_CREDENTIALS: "true"}),
        string_data={"SCRIPTED_API_KEY": SECRET}))
    body = {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Lieutenant",
        "metadata": {"name": "api"},
        "spec": {
            "role": "Build and maintain the Node.js API server",
            "profileRef": {"name": "local" if provider == "Local" else vers_profile},
            "model": {"provider": "scripted", "id": "scripted-1"},
            "providersConfigMapRef": {"name": "scripted-models"},
            "credentialsSecretRef": {"name": "api-credentials"},
            "instructions": "Keep dependencies light.",
            "tasks": [{"name": "scaffold", "message": TASK1},
                      {"name": "database", "message": TASK2},
                      {"name": "users", "message": TASK3}],
        },
    }
    admin.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(body))
    done = wait_for(lambda: (lambda o: o if len((o.get("status") or {}).get("history", [])) == 3
                             and o["status"].get("phase") == "Idle" else None)(
        _lieutenant(admin, namespace, "api")), 180, "three responses", operator)
    status = done["status"]
    assert [h["task"] for h in status["history"]] == ["scaffold", "database", "users"]
    assert [h["response"] for h in status["history"]] == [
        "Scaffolded the server: src/config.ts exports PORT.",
        "Added src/db.ts importing ./config.",
        "Added user routes using the pool from db.ts."]
    assert [t["phase"] for t in status["tasks"]] == ["Succeeded"] * 3
    assert status["taskCount"] == 3
    assert status["session"]["offset"] > 0
    # The version is read from pi's package.json; it must say what pi itself says.
    assert status["session"]["piVersion"] == subprocess.run(  # pi prints it on stderr
        ["pi", "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        check=True).stdout.strip()
    assert status["usage"]["outputTokens"] > 0

    recorded = model.requests()
    assert all(r["failures"] == [] for r in recorded), [r["failures"] for r in recorded]
    assert "Build and maintain the Node.js API server" in recorded[-1]["system"]
    assert "Keep dependencies light." in recorded[-1]["system"]

    vm_root = (local_root / status["vmId"] / "root" if provider == "Local" else
               Path(next(vm["directory"] for vm in versim.vms()
                         if vm["vm_id"] == status["vmId"])) / "root")
    workspace = vm_root / "workspace" / "api" / "src"
    assert (workspace / "config.ts").exists()
    assert (workspace / "db.ts").read_text() == "import { PORT } from './config';\n"
    assert (workspace / "routes" / "users.ts").exists()

    table = admin.kubectl("get", "lieutenants", "-n", namespace).stdout.splitlines()
    # NAME PHASE REASON TASK TASKS ...: an idle lieutenant has no task (a blank cell).
    assert table[1].split()[:4] == ["api", "Idle", "SessionReady", "3"]

    # The credential reached the agent's environment, and nothing else.
    env_file = vm_root / ".reef" / "credentials.env"
    assert SECRET in env_file.read_text() and oct(env_file.stat().st_mode)[-3:] == "600"
    seen = "\n".join([
        admin.kubectl("get", "lieutenant,vmnode", "-n", namespace, "-o", "yaml").stdout,
        admin.kubectl("get", "events", "-n", namespace, "-o", "yaml").stdout,
        operator.log_file.read_text(),
        subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout,
        str(model.requests()),
    ])
    assert SECRET not in seen


def test_dropped_ssh_connections_mid_stream_lose_and_repeat_nothing(
    admin: Kube, namespace: str, operator: OperatorProcess, model: ScriptedModel,
    versim: VersSimulator, vers_profile: str
) -> None:
    _scripted_lieutenant(admin, namespace, model, vers_profile,
                         [{"name": "long", "message": "Stream a long answer"}])
    working = wait_for(lambda: (lambda o: o if (o.get("status") or {}).get("currentTask", {})
                                .get("output") else None)(_lieutenant(admin, namespace, "api")),
                       120, "streaming output", operator)
    vm_id = working["status"]["vmId"]
    assert versim.cut_ssh(vm_id), "no SSH connection to cut"
    done = wait_for(lambda: (lambda o: o if len((o.get("status") or {}).get("history", [])) == 1
                             and o["status"].get("phase") == "Idle" else None)(
        _lieutenant(admin, namespace, "api")), 120, "the answer after the drop", operator)
    assert done["status"]["history"][0]["response"] == LONG.strip()  # no gap, no repeat
    assert [t["phase"] for t in done["status"]["tasks"]] == ["Succeeded"]
    prompts = [r for r in model.requests() if r["conversation"]
               and r["conversation"][-1]["text"] == "Stream a long answer"]
    assert len(prompts) == 1  # delivered once despite the reconnect


def test_a_sent_task_cannot_be_edited_and_a_finished_one_leaves_for_good(
        admin: Kube, namespace: str, operator: OperatorProcess, model: ScriptedModel) -> None:
    _scripted_lieutenant(admin, namespace, model, "local",
                         [{"name": "scaffold", "message": TASK1}])
    wait_for(lambda: (lambda o: o if len((o.get("status") or {}).get("history", [])) == 1
                      else None)(_lieutenant(admin, namespace, "api")), 120, "sent", operator)
    edit = admin.kubectl("patch", "lieutenant", "api", "-n", namespace, "--type=json", "-p",
                         '[{"op":"replace","path":"/spec/tasks/0/message","value":"other"}]',
                         check=False)
    assert edit.returncode != 0
    assert "task 'scaffold' was already sent to the agent (Succeeded)" in edit.stderr
    # A finished task may leave the spec (pruned), but its name never comes back.
    admin.kubectl("patch", "lieutenant", "api", "-n", namespace, "--type=json", "-p",
                  '[{"op":"remove","path":"/spec/tasks/0"}]')
    again = admin.kubectl("patch", "lieutenant", "api", "-n", namespace, "--type=json", "-p",
                          '[{"op":"add","path":"/spec/tasks/-","value":{"name":"scaffold",'
                          '"message":"again"}}]', check=False)
    assert again.returncode != 0
    assert "task 'scaffold' already ran" in again.stderr and "never reused" in again.stderr
    append = admin.kubectl("patch", "lieutenant", "api", "-n", namespace, "--type=json", "-p",
                           '[{"op":"add","path":"/spec/tasks/-","value":{"name":"db",'
                           f'"message":"{TASK2}"}}}}]', check=False)
    assert append.returncode == 0, append.stderr


def test_pi_killed_on_the_vm_is_restarted_and_the_conversation_continues(
    admin: Kube, namespace: str, operator: OperatorProcess, model: ScriptedModel,
    local_root: Path
) -> None:
    _scripted_lieutenant(admin, namespace, model, "local",
                         [{"name": "scaffold", "message": TASK1}])
    first = wait_for(lambda: (lambda o: o if len((o.get("status") or {}).get("history", [])) == 1
                              and o["status"].get("phase") == "Idle" else None)(
        _lieutenant(admin, namespace, "api")), 120, "first answer", operator)
    run = local_root / first["status"]["vmId"] / "root" / ".reef" / "run"
    killed = subprocess.run(
        ["bash", "-c", f"kill -9 $(pgrep -P $(tmux -S {run}/tmux.sock display -p -t pi-rpc "
                       "'#{pane_pid}'))"], capture_output=True, text=True)
    assert killed.returncode == 0, killed.stderr
    current = _lieutenant(admin, namespace, "api")["spec"]["tasks"]
    admin.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "lieutenants", "api", {
        "spec": {"tasks": [*current, {"name": "database", "message": TASK2}]}})
    done = wait_for(lambda: (lambda o: o if len((o.get("status") or {}).get("history", [])) == 2
                             and o["status"].get("phase") == "Idle" else None)(
        _lieutenant(admin, namespace, "api")), 120, "answer after the restart", operator)
    assert done["status"]["history"][1]["response"] == "Added src/db.ts importing ./config."
    assert done["status"]["session"]["restarts"] == 1
    database = [r for r in model.requests() if r["task"] == "Add PostgreSQL connection pooling"]
    assert database and database[-1]["failures"] == []  # it still saw task 1 and its answer
    events = admin.core.list_namespaced_event(namespace).items
    assert "AgentRestarted" in [e.reason for e in events]
