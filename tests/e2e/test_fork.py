"""Forks and checkpoints: a fork continues its source's conversation on a copy of its VM,
and from then on the two go their own ways; a fork from a named checkpoint knows what
came before it and nothing after.

Real apiserver, the operator as its own process, real pi on the Vers simulator (commit
and from_commit) and on Local VMs (copies), the scripted model checking what each
request's conversation holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from reef_devkit.controlplane import LocalControlPlane
from reef_devkit.operator_process import OperatorProcess, simulator_env
from reef_devkit.scripted_model.harness import ScriptedModel
from reef_devkit.versim.harness import VersSimulator
from reef_operator.constants import GROUP, VERSION
from reef_operator.kube.conditions import find_condition
from tests.conftest import Kube
from tests.e2e.conftest import append_task, apply_lieutenant, vers_boot_profile, wait_for
from tests.e2e.plugin import failed, ok, reef

pytestmark = pytest.mark.controlplane

COLOR = "Remember the color teal."
ANIMAL = "Remember the animal otter."
CITY = "Remember the city Lisbon."
SCRIPT = """
tasks:
  - match: "Remember the color"
    steps:
      - text: "Noted: teal."
  - match: "Remember the animal"
    steps:
      - text: "Noted: otter."
  - match: "Remember the city"
    steps:
      - text: "Noted: Lisbon."
  - match: "What do you remember"
    steps:
      - text: "I remember what this conversation holds."
  - match: "Count"
    steps:
      - text: "Counted."
"""
RECALL = "What do you remember? (asked of {who})"


@pytest.fixture(scope="module")
def operator(control_plane: LocalControlPlane, versim: VersSimulator, local_root: Path,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    process = OperatorProcess(control_plane.operator_kubeconfig,
                              tmp_path_factory.mktemp("operator") / "operator.log",
                              {**simulator_env(versim), "REEF_LOCAL_ROOT": str(local_root)})
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def vers_profile(admin: Kube) -> Iterator[str]:
    with vers_boot_profile(admin, "e2e-fork-vers") as name:
        yield name


def _status(admin: Kube, namespace: str, name: str) -> dict[str, Any]:
    return dict(admin.get("lieutenants", name, namespace).get("status") or {})


def _answered(admin: Kube, namespace: str, name: str, task: str,
              operator: OperatorProcess) -> dict[str, Any]:
    """The status once `task` is answered and the lieutenant is Idle again."""
    status: dict[str, Any] = wait_for(
        lambda: (lambda s: s if s.get("phase") == "Idle" and any(
            h.get("task") == task for h in s.get("history") or []) else None)(
            _status(admin, namespace, name)), 180, f"{name} answers {task}", operator)
    return status


def _idle(admin: Kube, namespace: str, name: str, operator: OperatorProcess) -> None:
    wait_for(lambda: _status(admin, namespace, name).get("phase") == "Idle", 180,
             f"{name} Idle", operator)


def _asked(model: ScriptedModel, text: str) -> list[str]:
    """The conversation of the one request whose last user message is `text`."""
    found = [r for r in model.requests()
             if [m for m in r["conversation"] if m["role"] == "user"][-1:]
             and [m for m in r["conversation"] if m["role"] == "user"][-1]["text"] == text]
    assert len(found) == 1, [r["conversation"][-1:] for r in model.requests()]
    return [str(m["text"]) for m in found[0]["conversation"]]


def _stalled(admin: Kube, namespace: str, name: str, reason: str,
             operator: OperatorProcess) -> dict[str, Any]:
    stalled: dict[str, Any] = wait_for(
        lambda: (lambda c: c if c.get("status") == "True" and c.get("reason") == reason
                 else None)(find_condition(admin.get("lieutenants", name, namespace),
                                           "Stalled")),
        90, f"{name} Stalled {reason}", operator)
    return stalled


@pytest.mark.parametrize("provider", ["Vers", "Local"])
def test_a_fork_continues_the_conversation_and_then_goes_its_own_way(
        admin: Kube, scripted: str, operator: OperatorProcess, model: ScriptedModel,
        versim: VersSimulator, vers_profile: str, provider: str) -> None:
    namespace = scripted
    profile = vers_profile if provider == "Vers" else "local"
    apply_lieutenant(admin, namespace, "src", [{"name": "color", "message": COLOR}],
                     profile=profile)
    source = _answered(admin, namespace, "src", "color", operator)

    out = ok(reef(admin, "-n", namespace, "fork", "src", "branch", "--role", "Try another way"))
    assert out == "lieutenant/branch created: a fork of lieutenant/src at a checkpoint taken now\n"
    _idle(admin, namespace, "branch", operator)
    fork = admin.get("lieutenants", "branch", namespace)
    assert fork["spec"]["forkFrom"] == {"lieutenant": "src"}
    assert fork["spec"]["role"] == "Try another way"
    point = fork["status"]["forkedFrom"]
    # The checkpoint taken for the fork is the source's, recorded on both.
    taken = _status(admin, namespace, "src")["checkpoints"]
    assert [(c.get("fork"), c["commitId"], c.get("afterTask")) for c in taken] == [
        ("branch", point["commitId"], "color")]
    marker = fork["status"]["history"][0]
    assert marker["task"] == "(forked)" and marker["forkedFrom"] == {
        "lieutenant": "src", "commitId": point["commitId"]}
    assert "Forked from lieutenant src" in marker["response"]
    assert fork["status"]["vmId"] != source["vmId"]

    # Both go on: each task reaches only the lieutenant it was sent to.
    append_task(admin, namespace, "src", {"name": "animal", "message": ANIMAL})
    append_task(admin, namespace, "branch", {"name": "city", "message": CITY})
    _answered(admin, namespace, "src", "animal", operator)
    _answered(admin, namespace, "branch", "city", operator)
    ask_source, ask_fork = RECALL.format(who=f"src {provider}"), \
        RECALL.format(who=f"branch {provider}")
    append_task(admin, namespace, "src", {"name": "recall", "message": ask_source})
    append_task(admin, namespace, "branch", {"name": "recall", "message": ask_fork})
    _answered(admin, namespace, "src", "recall", operator)
    _answered(admin, namespace, "branch", "recall", operator)
    forked = _asked(model, ask_fork)
    assert COLOR in forked and "Noted: teal." in forked and CITY in forked   # the source's past
    assert ANIMAL not in forked                                               # not its present
    kept = _asked(model, ask_source)
    assert COLOR in kept and ANIMAL in kept and CITY not in kept

    # A fresh event log and sent-log on the fork: its own task named like one the source
    # ran before the fork ("color") is delivered, not refused as a reused name.
    append_task(admin, namespace, "branch", {"name": "color", "message": "Count to two."})
    done = _answered(admin, namespace, "branch", "color", operator)
    assert [t["phase"] for t in done["tasks"] if t["name"] == "color"] == ["Succeeded"]

    # The lineage tree: the fork's VMNode under the source's.
    assert admin.get("vmnodes", "branch", namespace)["spec"]["parentRef"] == {"name": "src"}
    tree = ok(reef(admin, "-n", namespace, "tree")).splitlines()
    assert tree[0].startswith("src [Lieutenant] running")
    assert tree[1].startswith("└── branch [Lieutenant] running")
    if provider == "Vers":
        _commit_kept_until_the_lieutenant_and_its_forks_are_gone(
            admin, namespace, operator, versim, point["commitId"])


def _commit_kept_until_the_lieutenant_and_its_forks_are_gone(
        admin: Kube, namespace: str, operator: OperatorProcess, versim: VersSimulator,
        commit: str) -> None:
    assert commit in versim.commits()
    admin.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "lieutenants", "src")
    # The source's VMNode holds its finalizer: the fork's VM still uses the commit.
    blocked = wait_for(lambda: (lambda c: c if c.get("reason") == "DeletionBlocked" else None)(
        find_condition(admin.get("vmnodes", "src", namespace), "Ready")), 120,
        "the source's node waits for the fork", operator)
    assert "checkpoint commits" in blocked["message"]
    assert commit in versim.commits()
    admin.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "lieutenants",
                                                 "branch")
    wait_for(lambda: commit not in versim.commits(), 180,
             "the commit deleted once the fork is gone", operator)


def test_a_fork_from_a_named_checkpoint_knows_what_came_before_it_and_nothing_after(
        admin: Kube, scripted: str, operator: OperatorProcess, model: ScriptedModel,
        vers_profile: str) -> None:
    namespace = scripted
    apply_lieutenant(admin, namespace, "src", [{"name": "t1", "message": COLOR},
                                                {"name": "t2", "message": ANIMAL}],
                     profile=vers_profile)
    _answered(admin, namespace, "src", "t2", operator)
    out = ok(reef(admin, "-n", namespace, "checkpoint", "src", "--label", "before-3",
                  "--wait", "--timeout", "120"))
    assert "checkpoint before-3 of lieutenant/src taken: commit " in out
    append_task(admin, namespace, "src", {"name": "t3", "message": CITY})
    _answered(admin, namespace, "src", "t3", operator)
    checkpoint = _status(admin, namespace, "src")["checkpoints"][0]
    assert (checkpoint["label"], checkpoint["afterTask"]) == ("before-3", "t2")
    annotations = admin.get("lieutenants", "src", namespace)["metadata"].get("annotations") or {}
    assert not [k for k in annotations if k.startswith("checkpoint.")]   # the request is done

    # The label is taken: asking again is refused, and so is an unknown one for a fork.
    assert "already has a checkpoint 'before-3'" in failed(
        reef(admin, "-n", namespace, "checkpoint", "src", "--label", "before-3"))
    assert "has no checkpoint 'nope'" in failed(
        reef(admin, "-n", namespace, "fork", "src", "other", "--checkpoint", "nope"))

    # The source moves on and is destroyed; its checkpoint still forks.
    admin.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "lieutenants", "src",
                                                {"spec": {"state": "Destroyed"}})
    wait_for(lambda: _status(admin, namespace, "src").get("phase") == "Destroyed", 120,
             "src destroyed", operator)
    ok(reef(admin, "-n", namespace, "fork", "src", "early", "--checkpoint", "before-3"))
    _idle(admin, namespace, "early", operator)
    ask = RECALL.format(who="early")
    append_task(admin, namespace, "early", {"name": "recall", "message": ask})
    _answered(admin, namespace, "early", "recall", operator)
    conversation = _asked(model, ask)
    assert COLOR in conversation and ANIMAL in conversation     # tasks 1 and 2
    assert CITY not in conversation                             # not task 3
    assert _status(admin, namespace, "early")["forkedFrom"]["checkpoint"] == "before-3"


def test_a_fork_that_cannot_start_says_why(admin: Kube, scripted: str,
                                           operator: OperatorProcess, vers_profile: str) -> None:
    namespace = scripted
    apply_lieutenant(admin, namespace, "orphan", [], forkFrom={"lieutenant": "nobody"})
    stalled = _stalled(admin, namespace, "orphan", "ForkSourceNotFound", operator)
    assert "no lieutenant 'nobody'" in stalled["message"]

    # A source that cannot get a VM (its profile does not exist): nothing to checkpoint.
    apply_lieutenant(admin, namespace, "vmless", [], profile="no-such-profile")
    apply_lieutenant(admin, namespace, "too-early", [], forkFrom={"lieutenant": "vmless"})
    stalled = _stalled(admin, namespace, "too-early", "ForkSourceHasNoVM", operator)
    assert "'vmless' has no VM yet" in stalled["message"]

    apply_lieutenant(admin, namespace, "unlabelled", [],
                     forkFrom={"lieutenant": "vmless", "checkpoint": "nope"})
    stalled = _stalled(admin, namespace, "unlabelled", "CheckpointNotFound", operator)
    assert "has no checkpoint 'nope'" in stalled["message"]

    # A source that appears later is forked then (the fork is woken by its source).
    nodes = cast(dict[str, Any], admin.custom.list_namespaced_custom_object(
        GROUP, VERSION, namespace, "vmnodes"))
    assert "orphan" not in {n["metadata"]["name"] for n in nodes["items"]}
    apply_lieutenant(admin, namespace, "nobody", [{"name": "color", "message": COLOR}],
                     profile=vers_profile)
    wait_for(lambda: _status(admin, namespace, "orphan").get("forkedFrom"), 180,
             "orphan forks nobody once it exists", operator)


def test_a_paused_source_is_checkpointed_as_it_is_and_stays_paused(
        admin: Kube, scripted: str, operator: OperatorProcess, model: ScriptedModel,
        versim: VersSimulator, vers_profile: str) -> None:
    namespace = scripted
    apply_lieutenant(admin, namespace, "sleeper", [{"name": "color", "message": COLOR}],
                     profile=vers_profile)
    _answered(admin, namespace, "sleeper", "color", operator)
    ok(reef(admin, "-n", namespace, "pause", "sleeper", "--wait"))
    vm_id = _status(admin, namespace, "sleeper")["vmId"]

    ok(reef(admin, "-n", namespace, "fork", "sleeper", "awake"))
    _idle(admin, namespace, "awake", operator)
    ask = RECALL.format(who="awake")
    append_task(admin, namespace, "awake", {"name": "recall", "message": ask})
    _answered(admin, namespace, "awake", "recall", operator)
    assert COLOR in _asked(model, ask)
    # The source was not woken for it: its VM is still paused on the platform.
    assert _status(admin, namespace, "sleeper")["phase"] == "Paused"
    assert next(vm["state"] for vm in versim.vms() if vm["vm_id"] == vm_id) == "paused"
