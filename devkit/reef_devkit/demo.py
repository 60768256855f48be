"""The main job on its embedded local default: `make demo` runs the lieutenant tutorial.

Brings up a real local control plane and the operator, then walks the seed's
tutorial with `kubectl reef`: a lieutenant `api` builds an API in three
dependent tasks, shows its history, pauses, resumes, is steered mid-task and
is destroyed, printing what `kubectl get lieutenants` and `kubectl reef` show
at each step. Then a lieutenant `lead` with spec.delegation has its own agent spawn a
worker below it, with the identity the operator gives it, and is refused a second one.

    python -m reef_devkit.demo [--keep] [--state-dir DIR] [--vers-sim] [--dashboard-port N]

While it runs, `kubectl reef dashboard` shows the same in a browser (the URL is printed).

The model: Anthropic when ANTHROPIC_API_KEY is set (REEF_DEMO_MODEL picks the
id), otherwise a scripted model server on 127.0.0.1 that answers like one (the
demo says which). The VMs: the Local provider (directories and processes on
this machine); `--vers-sim` uses the Vers simulator (needs root); with
VERS_API_KEY and REEF_DEMO_GOLDEN_COMMIT set, real Vers VMs from that commit.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from reef_devkit.controlplane import LocalControlPlane
from reef_devkit.controlplane.processes import free_port
from reef_devkit.operator_process import OperatorProcess, simulator_env
from reef_operator.constants import DELEGATION_ENABLED, LABEL_AGENT_CREDENTIALS, LABEL_DELEGATION
from reef_operator.providers.local import kill_every_vm

NAMESPACE = "reef-demo"
TASK1 = ("Create a Node.js Express API server in ~/workspace/api. Put the port and the "
         "DATABASE_URL in src/config.ts and start the app from src/index.ts.")
TASK2 = ("Add PostgreSQL connection pooling: src/db.ts creates a pg Pool using DATABASE_URL "
         "from the config you already made, and exports it.")
TASK3 = ("Add user CRUD routes in src/routes/users.ts using the pool from db.ts, with a "
         "migration src/migrations/001-users.sql.")
TASK4 = ("Add input validation to the user routes, and explain each choice as you go "
         "in detail.")
STEER = "Stop adding Prisma. Use raw pg queries — keep this dependency-light."
SPAWN = ("Spawn a swarm worker VMNode named lead-worker-1 below you (spec.parentRef.name is "
         "your own name, $REEF_LIEUTENANT; category Swarm; your own BootProfile) with kubectl: "
         "KUBECONFIG is set. Then try a second one, lead-worker-2, and report what happened.")


def _spawn(name: str) -> str:
    """The agent's bash command: a worker below itself, on its own profile."""
    node = ('{"apiVersion": "reef.vers.sh/v1alpha1", "kind": "VMNode", "metadata": {"name": '
            f'"{name}"}}, "spec": {{"category": "Swarm", "profileRef": {{"name": "$P"}}, '
            '"parentRef": {"name": "$REEF_LIEUTENANT"}}}')
    return ("P=$(kubectl get lieutenant \"$REEF_LIEUTENANT\" -o "
            "jsonpath='{.spec.profileRef.name}') && "
            f'kubectl create -f - 2>&1 <<EOF\n{node}\nEOF')

# What the scripted model answers: each task checks that the conversation carries the
# earlier ones, as the real model would need them to.
def _write(path: str, *lines: str) -> dict[str, object]:
    return {"name": "write", "arguments": {"path": path, "content": "\n".join(lines) + "\n"}}


SCRIPT = yaml.safe_dump({"tasks": [
    {"match": "Create a Node.js Express API server", "steps": [
        {"tool_calls": [
            _write("api/src/config.ts", "export const PORT = 3000;",
                   "export const DATABASE_URL = process.env.DATABASE_URL ?? "
                   "'postgres://localhost/api';"),
            _write("api/src/index.ts", "import express from 'express';",
                   "import { PORT } from './config';", "export const app = express();",
                   "app.listen(PORT);")]},
        {"text": "Scaffolded the API: src/config.ts (PORT, DATABASE_URL) and src/index.ts "
                 "(the Express app)."}]},
    {"match": "Add PostgreSQL connection pooling",
     "expect_in_conversation": ["Create a Node.js Express API server", "src/config.ts"],
     "steps": [
         {"tool_calls": [
             _write("api/src/db.ts", "import { Pool } from 'pg';",
                    "import { DATABASE_URL } from './config';",
                    "export const pool = new Pool({ connectionString: DATABASE_URL });")]},
         {"text": "Added src/db.ts: a pg Pool built from DATABASE_URL in the config I wrote "
                  "in the first task."}]},
    {"match": "Add user CRUD routes",
     "expect_in_conversation": ["src/config.ts", "src/db.ts"],
     "steps": [
         {"tool_calls": [
             _write("api/src/routes/users.ts", "import { pool } from '../db';",
                    "// GET/POST/PUT/DELETE /users"),
             _write("api/src/migrations/001-users.sql",
                    "CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL, "
                    "name text, created_at timestamptz DEFAULT now());")]},
         {"text": "Added src/routes/users.ts using the pool from db.ts, and the users "
                  "migration."}]},
    {"match": "Add input validation", "steps": [
        {"text": "Adding Prisma for schema validation of each route, step by step. " * 8,
         "chunks": 32, "delay": 0.25}]},
    {"match": "Stop adding Prisma", "expect_in_conversation": ["Add input validation"],
     "steps": [
         {"text": "Understood: no Prisma. Validation stays in plain functions and the routes "
                  "keep raw pg queries."}]},
    {"match": "Spawn a swarm worker", "steps": [
        {"tool_calls": [{"name": "bash", "arguments": {"command": _spawn("lead-worker-1")}}]},
        {"tool_calls": [{"name": "bash", "arguments": {"command": _spawn("lead-worker-2")}}]},
        {"text": "Spawned lead-worker-1 below me. lead-worker-2 was refused: my delegation "
                 "allows one child at a time."}]},
]}, sort_keys=False)


@dataclass(frozen=True)
class Model:
    provider: str
    model_id: str
    models_json: str = ""          # pi's custom-provider file, for the scripted model

    @property
    def scripted(self) -> bool:
        return bool(self.models_json)


@dataclass(frozen=True)
class Platform:
    operator_env: dict[str, str]
    profile: str                   # the BootProfile the lieutenant boots from
    documents: tuple[dict[str, object], ...] = ()
    # Whether its VMs reach the apiserver the operator uses (the host's network), so an
    # agent there can use the identity delegation gives it.
    reaches_apiserver: bool = True


class Tutorial:
    """Runs commands the way a person would and prints them with what they print."""

    def __init__(self, plane: LocalControlPlane, bin_dir: Path, env: dict[str, str]) -> None:
        self.plane = plane
        self.kubectl_binary = str(plane.binaries().kubectl)
        # kubectl finds the plugin (kubectl-reef) on PATH, as it would on a user's machine.
        self.env = {**os.environ, **env,
                    "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
                    "KUBECONFIG": str(plane.kubeconfig)}

    def run(self, *args: str, stdin: str | None = None, show: bool = True,
            check: bool = True, timeout: float = 120) -> str:
        if show:
            print(f"\n$ kubectl {' '.join(_quote(a) for a in args)}", flush=True)
        result = subprocess.run([self.kubectl_binary, *args], input=stdin, text=True,
                                capture_output=True, env=self.env, timeout=timeout)
        if show:
            print(result.stdout.rstrip("\n"), flush=True)
            if result.stderr.strip():
                print(result.stderr.rstrip("\n"), flush=True)
        if check and result.returncode != 0:
            raise SystemExit(f"kubectl {' '.join(args)} failed (exit {result.returncode}): "
                             f"{result.stderr.strip()}")
        return result.stdout

    def reef(self, *args: str, timeout: float = 900) -> str:
        return self.run("reef", "-n", NAMESPACE, *args, timeout=timeout)

    def dashboard(self, port: int, stack: contextlib.ExitStack) -> None:
        """`kubectl reef dashboard` beside the tutorial, to watch it in a browser."""
        args = ["reef", "-n", NAMESPACE, "dashboard", "--port", str(port)]
        print(f"\n$ kubectl {' '.join(args)} &", flush=True)
        process = subprocess.Popen([self.kubectl_binary, *args], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, env=self.env)
        stack.callback(_stop, process)
        assert process.stdout is not None
        print(process.stdout.readline().rstrip("\n") or "(the dashboard did not start)",
              flush=True)

    def lieutenants(self) -> str:
        return self.run("get", "lieutenants", "-n", NAMESPACE)

    def wait_phase(self, phase: str, within: float = 300, name: str = "api") -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.run("get", "lieutenant", name, "-n", NAMESPACE, "-o",
                        "jsonpath={.status.phase}", show=False) == phase:
                return
            time.sleep(0.3)
        raise SystemExit(f"lieutenant {name} did not reach {phase} within {within:g}s")


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


def step(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)


def _quote(arg: str) -> str:
    return f'"{arg}"' if any(c in arg for c in " '*|") else arg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--keep", action="store_true",
                        help="leave the control plane and the lieutenant's object afterwards")
    parser.add_argument("--state-dir", type=Path, default=None,
                        help="control-plane state directory (default: the dev one)")
    parser.add_argument("--dashboard-port", type=int, default=8474,
                        help="where `kubectl reef dashboard` shows the tutorial live in a "
                        "browser (default: %(default)s; 0 picks a free port)")
    parser.add_argument("--vers-sim", action="store_true",
                        help="run the VM on the Vers simulator instead of the Local provider")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="reef-demo-"))
    try:
        with contextlib.ExitStack() as stack:
            return _tutorial(args, work, stack)
    finally:
        kill_every_vm(work / "vms")   # a demo stopped half way leaves no agent running
        shutil.rmtree(work, ignore_errors=True)


def _tutorial(args: argparse.Namespace, work: Path, stack: contextlib.ExitStack) -> int:
    plane = LocalControlPlane(args.state_dir)
    step("1. a real local control plane (etcd, kube-apiserver, kube-controller-manager)")
    plane.up()
    if not args.keep:
        stack.callback(_down, plane)

    model = _model(work, stack)
    platform = _platform(args, work, stack)
    profile = platform.profile
    tutorial = Tutorial(plane, Path(sys.executable).parent, {})

    step("2. the operator, with its own least-privilege identity")
    operator = OperatorProcess(plane.operator_kubeconfig, work / "operator.log",
                               platform.operator_env)
    operator.start()
    stack.callback(operator.stop)
    print(f"operator running, VMs from profile {profile!r} (operator log: {operator.log_file})")

    tutorial.dashboard(args.dashboard_port, stack)
    tutorial.run("apply", "-f", "-", stdin=_setup_documents(model, platform))
    step("3. create the lieutenant `api` (it boots a VM and starts pi in RPC mode)")
    create = ["reef", "-n", NAMESPACE, "create", "api", "--role",
              "Build and maintain the Node.js API server", "--profile", profile,
              "--model", f"{model.provider}/{model.model_id}", "--credentials", "model-credentials",
              "--wait", "--timeout", "300"]
    if model.scripted:
        create[create.index("--wait"):create.index("--wait")] = ["--providers", "demo-models"]
    tutorial.run(*create, timeout=330)
    tutorial.lieutenants()

    for number, (task, title, message) in enumerate(
            (("scaffold", "scaffold the API", TASK1),
             ("database", "add the database layer", TASK2),
             ("users", "add user routes", TASK3)), start=4):
        step(f"{number}. task {number - 3}: {title} (same conversation, no spec repeated)")
        tutorial.reef("send", "api", message, "--task-name", task)
        tutorial.reef("read", "api", "--follow")
    tutorial.lieutenants()

    step("7. how the work evolved: the last three responses")
    tutorial.reef("read", "api", "--history", "3")

    step("8. the files it wrote, on its own VM")
    tutorial.reef("exec", "api", "--", "find workspace/api -type f | sort")
    tutorial.reef("cp", "api:workspace/api/src/db.ts", str(work / "db.ts"))
    print((work / "db.ts").read_text().rstrip("\n"))

    step("9. pause for the night: the VM freezes with pi's memory intact")
    tutorial.reef("pause", "api", "--wait")
    tutorial.lieutenants()
    tutorial.run("get", "vmnodes", "-n", NAMESPACE)

    step("10. resume: pi carries on in the same conversation")
    tutorial.reef("resume", "api", "--wait")
    tutorial.lieutenants()

    step("11. steer it mid-task")
    tutorial.reef("send", "api", TASK4, "--task-name", "validation")
    tutorial.wait_phase("Working")
    tutorial.reef("read", "api", "--tail", "120")
    tutorial.reef("send", "api", STEER, "--mode", "steer", "--task-name", "no-prisma")
    tutorial.reef("read", "api", "--follow")
    tutorial.reef("read", "api", "--history", "2")

    step("12. what the operator manages")
    tutorial.reef("status")
    tutorial.reef("discover")
    tutorial.run("apply", "-f", "-", stdin=_worker(tutorial, profile))
    tutorial.reef("wait", "vmnode/api-worker-1", "--for=condition=Ready", "--timeout", "300")
    tutorial.reef("tree")
    tutorial.reef("tree", "--capability", "npm")
    tutorial.reef("diff", "api", "api-worker-1")

    step("13. destroy it: the agent stops and the VM is deleted; the history stays")
    tutorial.run("delete", "vmnode", "api-worker-1", "-n", NAMESPACE, "--wait=true")
    tutorial.reef("destroy", "api", "--yes")
    tutorial.wait_phase("Destroyed")
    tutorial.lieutenants()
    tutorial.reef("read", "api", "--history", "1")

    step("14. a lieutenant that leads: its own agent spawns a worker below it")
    if platform.reaches_apiserver:
        _lead_and_worker(tutorial, model, profile)
    else:
        print("skipped: real Vers VMs cannot reach this machine's apiserver; set "
              "REEF_DELEGATE_APISERVER to an address they can reach")
    if not args.keep:
        tutorial.run("delete", "lieutenant", "api", "-n", NAMESPACE, "--wait=true",
                     timeout=180)
        tutorial.run("delete", "namespace", NAMESPACE, "--wait=false")
    if model.scripted:
        print("\n(the answers came from the scripted model: set ANTHROPIC_API_KEY to run "
              "this tutorial with Claude)")
    return 0


def _model(work: Path, stack: contextlib.ExitStack) -> Model:
    step("the model")
    if os.environ.get("ANTHROPIC_API_KEY"):
        model_id = os.environ.get("REEF_DEMO_MODEL", "claude-sonnet-4-5")
        print(f"ANTHROPIC_API_KEY is set: the lieutenant talks to anthropic/{model_id}")
        return Model("anthropic", model_id)
    from reef_devkit.scripted_model.harness import ScriptedModel

    scripted = stack.enter_context(ScriptedModel(SCRIPT, work / "model"))
    print("ANTHROPIC_API_KEY is not set: using the SCRIPTED model server at "
          f"{scripted.base_url} (it answers the tutorial's tasks like a model would; "
          "set ANTHROPIC_API_KEY for the real thing)")
    return Model("scripted", "scripted-1", scripted.models_json())


def _platform(args: argparse.Namespace, work: Path, stack: contextlib.ExitStack) -> Platform:
    """The operator's environment and the BootProfile the lieutenant uses."""
    step("the VMs")
    # Short: tmux's socket path (under the VM's TMPDIR) must fit in 107 bytes. The admission
    # webhook checks what the leading lieutenant's agent writes (step 14).
    env = {"REEF_LOCAL_ROOT": str(work / "vms"), "REEF_WEBHOOK_PORT": str(free_port()),
           "REEF_WEBHOOK_ADDR": "127.0.0.1"}
    golden = os.environ.get("REEF_DEMO_GOLDEN_COMMIT", "")
    if os.environ.get("VERS_API_KEY") and golden:
        print(f"VERS_API_KEY and REEF_DEMO_GOLDEN_COMMIT are set: real Vers VMs from {golden}")
        env["VERS_API_KEY"] = os.environ["VERS_API_KEY"]
        apiserver = os.environ.get("REEF_DELEGATE_APISERVER", "")
        if apiserver:
            env["REEF_DELEGATE_APISERVER"] = apiserver
        return Platform(env, "demo-vers", (_vers_profile("demo-vers", golden),),
                        reaches_apiserver=bool(apiserver))
    if args.vers_sim:
        from reef_devkit.versim.harness import VersSimulator

        simulator = stack.enter_context(VersSimulator(work / "versim"))
        print(f"the Vers simulator at {simulator.base_url} (same API, SSH inside TLS)")
        return Platform({**env, **simulator_env(simulator)}, "demo-vers",
                        (_vers_profile("demo-vers", None),))
    print("the Local provider: each VM is a directory and processes on this machine "
          "(set VERS_API_KEY and REEF_DEMO_GOLDEN_COMMIT for real Vers VMs)")
    return Platform(env, "local")


def _vers_profile(name: str, golden: str | None) -> dict[str, object]:
    spec: dict[str, object] = {"provider": "Vers", "category": "Lieutenant"}
    if golden:
        spec["source"] = {"commitId": golden}
    else:  # the simulator's VMs see the host's binaries, as a golden image would carry pi
        spec["agent"] = {"install": False}
    return {"apiVersion": "reef.vers.sh/v1alpha1", "kind": "BootProfile",
            "metadata": {"name": name}, "spec": spec}


def _setup_documents(model: Model, platform: Platform) -> str:
    """The namespace, the model's credentials (and provider file), the Vers profile."""
    documents: list[dict[str, object]] = [
        # Its admin lets lieutenants here lead their own workers (step 14).
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": NAMESPACE, "labels": {LABEL_DELEGATION: DELEGATION_ENABLED}}},
        *platform.documents]
    if model.scripted:
        documents.append({"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": "demo-models", "namespace": NAMESPACE},
                          "data": {"models.json": model.models_json}})
        key = "SCRIPTED_API_KEY", "scripted-demo-key"
    else:
        key = "ANTHROPIC_API_KEY", os.environ["ANTHROPIC_API_KEY"]
    # Given to kubectl on stdin, so the key is in no process's arguments.
    documents.append({"apiVersion": "v1", "kind": "Secret",
                      "metadata": {"name": "model-credentials", "namespace": NAMESPACE,
                                   "labels": {LABEL_AGENT_CREDENTIALS: "true"}},
                      "stringData": {key[0]: key[1]}})
    return "---\n".join(yaml.safe_dump(d) for d in documents)


def _lead_and_worker(tutorial: Tutorial, model: Model, profile: str) -> None:
    """Step 14: `lead` spawns a worker through the Kubernetes API, is refused a second (its
    delegation allows one child), and takes its worker with it when deleted."""
    tutorial.run("apply", "-f", "-", stdin=_lead(model, profile))
    tutorial.wait_phase("Idle", name="lead")
    tutorial.reef("send", "lead", SPAWN, "--task-name", "spawn")
    tutorial.reef("read", "lead", "--follow")
    tutorial.reef("wait", "vmnode/lead-worker-1", "--for=condition=Ready", "--timeout", "300")
    tutorial.reef("tree")
    # The agent's identity, tried by hand on its VM: api's VM is not its child.
    tutorial.reef("exec", "lead", "--", "KUBECONFIG=$HOME/.reef/kube/config kubectl delete "
                  "vmnode api 2>&1; true")
    tutorial.run("delete", "lieutenant", "lead", "-n", NAMESPACE, "--wait=true", timeout=180)
    tutorial.run("wait", "--for=delete", "vmnode/lead-worker-1", "-n", NAMESPACE,
                 "--timeout=120s", check=False, timeout=150)
    tutorial.run("get", "vmnodes", "-n", NAMESPACE)


def _lead(model: Model, profile: str) -> str:
    """A lieutenant whose agent may keep one child of its own, on its own profile."""
    spec: dict[str, object] = {
        "role": "Split work into parts and hand each to a worker",
        "profileRef": {"name": profile}, "model": {"provider": model.provider,
                                                   "id": model.model_id},
        "credentialsSecretRef": {"name": "model-credentials"},
        "delegation": {"maxChildren": 1, "profiles": [profile]}}
    if model.scripted:
        spec["providersConfigMapRef"] = {"name": "demo-models"}
    return yaml.safe_dump({"apiVersion": "reef.vers.sh/v1alpha1", "kind": "Lieutenant",
                           "metadata": {"name": "lead", "namespace": NAMESPACE},
                           "spec": spec})


def _worker(tutorial: Tutorial, profile: str) -> str:
    """A swarm worker spawned below the lieutenant's VM, with DNA of its own."""
    parent = tutorial.run("get", "lieutenant", "api", "-n", NAMESPACE, "-o",
                          "jsonpath={.status.vmNodeName}", show=False)
    return yaml.safe_dump({
        "apiVersion": "reef.vers.sh/v1alpha1", "kind": "VMNode",
        "metadata": {"name": "api-worker-1", "namespace": NAMESPACE},
        "spec": {"category": "Swarm", "profileRef": {"name": profile},
                 "parentRef": {"name": parent}, "modules": ["test-runner"],
                 "capabilities": ["npm"]}})


def _down(plane: LocalControlPlane) -> None:
    plane.down()
    print("\ncontrol plane stopped (run with --keep to leave it up)")


if __name__ == "__main__":
    sys.exit(main())
