"""Resilience: a mixed workload under faults, then everything must match its spec.

Lieutenants (real pi on Vers-simulator VMs, scripted model) take tasks while plain
VMNodes are paused and resumed; every round injects one fault in turn:
  - the operator SIGKILLed (and restarted after a moment),
  - the platform answering 5xx, 429 bursts and slowly,
  - a VM frozen behind the operator's back, then thawed,
  - every SSH connection to the VMs cut,
  - the kube-apiserver restarted under the operator.
Afterwards: every object converges to its spec; the simulator's VMs are exactly the
nodes' VMs (none leaked, none doubled), and none is left after deletion; every task
reached the model exactly once and its answer is in the history once; no secret in any
log. A summary table is printed.

Small by default (as `make test` runs it); the environment variables
REEF_CHAOS_LIEUTENANTS and REEF_CHAOS_ROUNDS (10 and 20 for full scale) set its size.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client

from reef_devkit.controlplane import LocalControlPlane
from reef_devkit.operator_process import OperatorProcess, simulator_env
from reef_devkit.scripted_model.harness import ScriptedModel
from reef_devkit.versim.harness import VersSimulator
from reef_operator.constants import GROUP, LABEL_AGENT_CREDENTIALS, VERSION
from tests.conftest import Kube
from tests.e2e.conftest import vers_boot_profile

pytestmark = pytest.mark.controlplane

LIEUTENANTS = int(os.environ.get("REEF_CHAOS_LIEUTENANTS", "3"))
ROUNDS = int(os.environ.get("REEF_CHAOS_ROUNDS", "5"))
NODES = 2
SEED = int(os.environ.get("REEF_CHAOS_SEED", "7"))
CREDENTIAL = "sk-chaos-" + "4w" * 14
PROFILE = "chaos-vers"
FAULTS = ("operator-killed", "platform-errors", "vm-frozen", "ssh-cut", "apiserver-restarted")


def _answer(lt: int, task: int) -> str:
    return f"Answer {lt}-{task}: done."


SCRIPT = yaml.safe_dump({"tasks": [
    {"match": f"Chaos task {lt}-{task}.", "steps": [{"text": _answer(lt, task)}]}
    for lt in range(LIEUTENANTS) for task in range(ROUNDS)]})


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScriptedModel]:
    with ScriptedModel(SCRIPT, tmp_path_factory.mktemp("model")) as scripted:
        yield scripted


@pytest.fixture(scope="module")
def profile(admin: Kube) -> Iterator[str]:
    with vers_boot_profile(admin, PROFILE) as name:
        yield name


class Chaos:
    def __init__(self, admin: Kube, namespace: str, plane: LocalControlPlane,
                 sim: VersSimulator, operator: OperatorProcess) -> None:
        self.admin, self.namespace, self.plane = admin, namespace, plane
        self.sim, self.operator = sim, operator
        self.random = random.Random(SEED)
        self.injected: Counter[str] = Counter()

    # -- the workload ---------------------------------------------------------------------
    def get(self, plural: str, name: str) -> dict[str, Any]:
        for _ in range(60):   # the apiserver may be restarting
            try:
                return self.admin.get(plural, name, self.namespace)
            except Exception:  # any transport error while it restarts
                time.sleep(0.5)
        return self.admin.get(plural, name, self.namespace)

    def patch(self, plural: str, name: str, body: dict[str, Any]) -> None:
        for attempt in range(60):
            try:
                self.admin.custom.patch_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, plural, name, body)
                return
            except Exception:
                if attempt == 59:
                    raise
                time.sleep(0.5)

    def send(self, lt: int, task: int) -> None:
        tasks = self.get("lieutenants", f"lt{lt}")["spec"].get("tasks") or []
        self.patch("lieutenants", f"lt{lt}", {"spec": {"tasks": [
            *tasks, {"name": f"t{task}", "message": f"Chaos task {lt}-{task}."}]}})

    # -- the faults -----------------------------------------------------------------------
    def inject(self, fault: str) -> None:
        self.injected[fault] += 1
        if fault == "operator-killed":
            time.sleep(self.random.uniform(0, 1.5))
            self.operator.kill()
            time.sleep(self.random.uniform(0, 2))
            self.operator.start()
        elif fault == "platform-errors":
            self.sim.set_faults(error_rate=0.25, rate_limit_burst=3, latency=0.2)
            time.sleep(6)
            self.sim.set_faults(error_rate=0, rate_limit_burst=0, latency=0)
        elif fault == "vm-frozen":
            vm_id = self.random.choice(self.vm_ids())
            self.sim.vm_action(vm_id, "freeze")
            time.sleep(5)
            self.sim.vm_action(vm_id, "thaw")
        elif fault == "ssh-cut":
            time.sleep(self.random.uniform(0, 1))
            for vm_id in self.vm_ids():
                self.sim.cut_ssh(vm_id)
        elif fault == "apiserver-restarted":
            self.plane.restart("kube-apiserver")

    def vm_ids(self) -> list[str]:
        listing = cast(dict[str, Any], self.admin.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "vmnodes"))
        nodes = listing["items"]
        return [n["status"]["vmId"] for n in nodes if (n.get("status") or {}).get("vmId")]


def converge(check: Callable[[], str], within: float, operator: OperatorProcess) -> None:
    """Wait until `check` returns "" (its text says what is still wrong)."""
    deadline = time.monotonic() + within
    problem = "not checked"
    while time.monotonic() < deadline:
        try:
            problem = check()
        except Exception as error:  # the apiserver may be restarting
            problem = f"{type(error).__name__}: {error}"
        if not problem:
            return
        time.sleep(1)
    raise AssertionError(f"did not converge: {problem}\n{operator.log_tail(60)}")


def test_mixed_workload_survives_every_fault(
    admin: Kube, namespace: str, control_plane: LocalControlPlane, versim: VersSimulator,
    model: ScriptedModel, profile: str, tmp_path: Path,
) -> None:
    versim.set_faults(error_rate=0, lose_response_rate=0, rate_limit_burst=0, latency=0,
                      max_vms=0)
    admin.core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="models"), data={"models.json": model.models_json()}))
    admin.core.create_namespaced_secret(namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name="creds", labels={LABEL_AGENT_CREDENTIALS: "true"}),
        string_data={"SCRIPTED_API_KEY": CREDENTIAL}))
    operator = OperatorProcess(control_plane.operator_kubeconfig, tmp_path / "operator.log",
                               simulator_env(versim), namespaces=(namespace,))
    operator.start()
    chaos = Chaos(admin, namespace, control_plane, versim, operator)
    vms_before = {vm["vm_id"] for vm in versim.vms() if not vm.get("deleted")}
    try:
        for lt in range(LIEUTENANTS):
            admin.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump({
                "apiVersion": f"{GROUP}/{VERSION}", "kind": "Lieutenant",
                "metadata": {"name": f"lt{lt}"},
                "spec": {"role": "chaos", "profileRef": {"name": profile},
                         "model": {"provider": "scripted", "id": "scripted-1"},
                         "providersConfigMapRef": {"name": "models"},
                         "credentialsSecretRef": {"name": "creds"}}}))
        for node in range(NODES):
            admin.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump({
                "apiVersion": f"{GROUP}/{VERSION}", "kind": "VMNode",
                "metadata": {"name": f"node{node}"},
                "spec": {"category": "Swarm", "profileRef": {"name": profile}}}))
        node_states = {f"node{n}": "Running" for n in range(NODES)}

        for round_ in range(ROUNDS):
            for lt in range(LIEUTENANTS):
                chaos.send(lt, round_)
            flip = f"node{round_ % NODES}"
            node_states[flip] = "Paused" if node_states[flip] == "Running" else "Running"
            chaos.patch("vmnodes", flip, {"spec": {"state": node_states[flip]}})
            chaos.inject(FAULTS[round_ % len(FAULTS)])

        def settled() -> str:
            for lt in range(LIEUTENANTS):
                status = chaos.get("lieutenants", f"lt{lt}").get("status") or {}
                history = status.get("history") or []
                if len(history) < ROUNDS or status.get("phase") != "Idle":
                    return (f"lt{lt}: {len(history)}/{ROUNDS} answers, phase "
                            f"{status.get('phase')}")
            for name, state in node_states.items():
                conditions = {c["type"]: c["status"] for c in
                              (chaos.get("vmnodes", name).get("status") or {})
                              .get("conditions") or []}
                wanted = "Paused" if state == "Paused" else "Ready"
                if conditions.get(wanted) != "True":
                    return f"{name}: {wanted} is not True ({conditions})"
            return ""

        converge(settled, 300 + 60 * LIEUTENANTS, operator)

        # No task lost or duplicated: each reached the model once, is answered once.
        asked = Counter(r["conversation"][-1]["text"] for r in model.requests()
                        if r["conversation"] and r["conversation"][-1]["role"] == "user"
                        and r["conversation"][-1]["text"].startswith("Chaos task"))
        lost = duplicated = 0
        for lt in range(LIEUTENANTS):
            status = chaos.get("lieutenants", f"lt{lt}")["status"]
            answers = Counter((h["task"], h.get("response", "")) for h in status["history"])
            for task in range(ROUNDS):
                message = f"Chaos task {lt}-{task}."
                lost += asked[message] == 0 or answers[(f"t{task}", _answer(lt, task))] == 0
                duplicated += asked[message] > 1 or answers[(f"t{task}", _answer(lt, task))] > 1
            unexpected = [h for h in status["history"]
                          if h.get("response") != _answer(lt, int(h["task"][1:]))]
            assert not unexpected, f"lt{lt}: unexpected history entries {unexpected}"
            assert all(t["phase"] == "Succeeded" for t in status["tasks"]), status["tasks"]

        # No VM leaked or doubled: the simulator's live VMs are exactly the nodes' VMs.
        node_vms = set(chaos.vm_ids())
        live = {vm["vm_id"] for vm in versim.vms() if not vm.get("deleted")} - vms_before
        leaked, missing = live - node_vms, node_vms - live
    finally:
        versim.set_faults(error_rate=0, rate_limit_burst=0, latency=0)

    for lt in range(LIEUTENANTS):
        admin.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "lieutenants",
                                                     f"lt{lt}")
    for node in range(NODES):
        admin.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "vmnodes",
                                                     f"node{node}")
    converge(lambda: "" if not ({vm["vm_id"] for vm in versim.vms() if not vm.get("deleted")}
                                - vms_before) else "VMs still alive after deletion",
             180, operator)
    operator.stop()

    logs = {"operator": (tmp_path / "operator.log").read_text(errors="replace"),
            "scripted model": model.log_file.read_text(errors="replace"),
            **{f"control plane {p.name}": p.read_text(errors="replace")
               for p in (control_plane.state_dir / "logs").glob("*.log")}}
    api_key = simulator_env(versim)["VERS_API_KEY"]
    secrets_in_logs = [name for name, text in logs.items()
                       if CREDENTIAL in text or api_key in text]

    print(f"\n{'fault':24}{'injected':>10}")
    for fault in FAULTS:
        print(f"{fault:24}{chaos.injected[fault]:>10}")
    print("every object converged to its spec after the faults")
    print(f"tasks {LIEUTENANTS * ROUNDS}: lost {lost}, duplicated {duplicated}; VMs: leaked "
          f"{len(leaked)}, missing {len(missing)}; secrets in logs: {len(secrets_in_logs)}")
    assert (lost, duplicated) == (0, 0)
    assert (leaked, missing) == (set(), set())
    assert secrets_in_logs == []
