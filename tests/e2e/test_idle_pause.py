"""Idle pause: a lieutenant without work is paused by the operator with the agent's memory,
the next task resumes it with the conversation intact, and a lieutenant its spec pauses
stays paused for a task (with a note) while one the operator paused wakes beside it.

Real apiserver, the operator as its own process, real pi on Local VMs and on the Vers
simulator, the scripted model checking that the second task's request carries the first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reef_devkit.controlplane import LocalControlPlane
from reef_devkit.operator_process import OperatorProcess, simulator_env
from reef_devkit.scripted_model.harness import ScriptedModel
from reef_devkit.versim.harness import VersSimulator
from reef_operator.constants import GROUP, VERSION
from reef_operator.kube.conditions import find_condition
from reef_operator.lieutenants.holds import PAUSED_BY_SPEC_NOTE as PAUSED_NOTE
from reef_operator.providers.local import LocalProvider
from tests.conftest import Kube
from tests.e2e.conftest import append_task, apply_lieutenant, scraped, vers_boot_profile, wait_for

pytestmark = pytest.mark.controlplane

ROLE = "Remember things"
REMEMBER = "Remember the number 4217 for later."
RECALL = "Which number did I ask you to remember?"
SCRIPT = f"""
tasks:
  - match: "Remember the number"
    steps:
      - text: "Noted: 4217."
  - match: "Which number did I ask"
    expect_in_conversation: ["{REMEMBER}", "Noted: 4217."]
    steps:
      - text: "You asked me to remember 4217."
  - match: "Count"
    steps:
      - text: "Counted."
"""


@pytest.fixture(scope="module")
def operator(control_plane: LocalControlPlane, versim: VersSimulator, local_root: Path,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    process = OperatorProcess(control_plane.operator_kubeconfig,
                              tmp_path_factory.mktemp("operator") / "operator.log",
                              {**simulator_env(versim), "REEF_LOCAL_ROOT": str(local_root)},
                              metrics=True)
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def vers_profile(admin: Kube) -> Iterator[str]:
    with vers_boot_profile(admin, "e2e-idle-vers") as name:
        yield name



def _status(admin: Kube, namespace: str, name: str) -> dict[str, Any]:
    return dict(admin.get("lieutenants", name, namespace).get("status") or {})


def _answered(admin: Kube, namespace: str, name: str, count: int,
              operator: OperatorProcess) -> dict[str, Any]:
    status: dict[str, Any] = wait_for(
        lambda: (lambda s: s if len(s.get("history", [])) >= count
                 and s.get("phase") == "Idle" else None)(_status(admin, namespace, name)),
        150, f"{count} answers from {name}", operator)
    return status


def _paused(admin: Kube, namespace: str, name: str, reason: str,
            operator: OperatorProcess) -> dict[str, Any]:
    status: dict[str, Any] = wait_for(
        lambda: (lambda s: s if s.get("phase") == "Paused" and find_condition(
            {"status": s}, "Paused").get("reason") == reason else None)(
            _status(admin, namespace, name)), 120, f"{name} paused ({reason})", operator)
    return status


def _platform_state(provider: str, vm_id: str, local_root: Path,
                    versim: VersSimulator) -> str:
    """What the platform itself says of the VM (not the operator's status)."""
    if provider == "Local":
        return asyncio.run(LocalProvider(local_root).observe(vm_id)).state
    return str(next(vm["state"] for vm in versim.vms() if vm["vm_id"] == vm_id))


def _events(admin: Kube, namespace: str, name: str, reason: str) -> list[str]:
    return [str(e.message) for e in admin.core.list_namespaced_event(namespace).items
            if e.involved_object.name == name and e.involved_object.kind == "Lieutenant"
            and e.reason == reason]


@pytest.mark.parametrize("provider", ["Local", "Vers"])
def test_idle_lieutenant_pauses_and_the_next_task_resumes_it_with_its_memory(
        admin: Kube, scripted: str, operator: OperatorProcess, model: ScriptedModel,
        local_root: Path, versim: VersSimulator, vers_profile: str, provider: str) -> None:
    namespace = scripted
    apply_lieutenant(admin, namespace, "api", [{"name": "remember", "message": REMEMBER}],
                     profile="local" if provider == "Local" else vers_profile, role=ROLE,
                     idlePolicy={"pauseAfter": "20s"})
    first = _answered(admin, namespace, "api", 1, operator)
    vm_id = first["vmId"]

    paused = _paused(admin, namespace, "api", "Idle", operator)
    assert _platform_state(provider, vm_id, local_root, versim) == "paused"
    lieutenant = admin.get("lieutenants", "api", namespace)
    assert lieutenant["spec"].get("state", "Running") == "Running"   # GitOps stays in sync
    ready = find_condition({"status": paused}, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "IdlePaused")
    assert "20s" in find_condition({"status": paused}, "Paused")["message"]
    assert len(_events(admin, namespace, "api", "IdlePaused")) == 1
    assert scraped(operator, "reef_lieutenants_held", namespace=namespace,
                   reason="IdlePaused") == 1

    asked_before = len(model.requests())   # the model serves every test of the module
    append_task(admin, namespace, "api", {"name": "recall", "message": RECALL})
    done = _answered(admin, namespace, "api", 2, operator)
    assert done["history"][-1]["response"] == "You asked me to remember 4217."
    recall = [r for r in model.requests()[asked_before:] if r["task"] == "Which number did I ask"]
    assert len(recall) == 1 and recall[0]["failures"] == []   # the first exchange was there
    # The same VM and the same pi process: resumed, not rebuilt from a session file.
    assert done["vmId"] == vm_id and done["session"].get("restarts", 0) == 0
    assert _platform_state(provider, vm_id, local_root, versim) == "running"
    resumed = _events(admin, namespace, "api", "Resumed")
    assert len(resumed) == 1 and "task recall arrived" in resumed[0], resumed
    assert [t["phase"] for t in done["tasks"]] == ["Succeeded", "Succeeded"]
    assert scraped(operator, "reef_lieutenants_held", namespace=namespace,
                   reason="IdlePaused") == 0


def test_a_lieutenant_paused_by_its_spec_does_not_wake_for_a_task(
        admin: Kube, scripted: str, operator: OperatorProcess, model: ScriptedModel,
        local_root: Path, versim: VersSimulator) -> None:
    namespace = scripted
    # `held` is paused by its spec; `woken`, beside it, by the operator for idleness.
    apply_lieutenant(admin, namespace, "held", [{"name": "remember", "message": REMEMBER}],
                     role=ROLE)
    apply_lieutenant(admin, namespace, "woken", [{"name": "count", "message": "Count to 3"}],
                     role=ROLE, idlePolicy={"pauseAfter": "20s"})
    _answered(admin, namespace, "held", 1, operator)
    admin.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "lieutenants",
                                                "held", {"spec": {"state": "Paused"}})
    held = _paused(admin, namespace, "held", "Paused", operator)
    _paused(admin, namespace, "woken", "Idle", operator)

    asked_before = len(model.requests())
    append_task(admin, namespace, "held", {"name": "recall", "message": RECALL})
    waiting = wait_for(lambda: (lambda s: s if any(
        t.get("note") == PAUSED_NOTE for t in s.get("tasks", [])) else None)(
        _status(admin, namespace, "held")), 60, "the note on the held task", operator)
    assert [t["phase"] for t in waiting["tasks"]] == ["Succeeded", "Pending"]
    append_task(admin, namespace, "woken", {"name": "count-again", "message": "Count to 4"})
    _answered(admin, namespace, "woken", 2, operator)          # the operator acted meanwhile

    still = _status(admin, namespace, "held")
    assert still["phase"] == "Paused" and len(still["history"]) == 1
    assert still["tasks"][1]["phase"] == "Pending" and still["tasks"][1]["note"] == PAUSED_NOTE
    assert _platform_state("Local", held["vmId"], local_root, versim) == "paused"
    assert not [r for r in model.requests()[asked_before:]
                if r["task"] == "Which number did I ask"]

    admin.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "lieutenants",
                                                "held", {"spec": {"state": "Running"}})
    done = _answered(admin, namespace, "held", 2, operator)
    assert done["history"][-1]["response"] == "You asked me to remember 4217."
    assert "note" not in done["tasks"][1]
