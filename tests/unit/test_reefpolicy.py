"""A namespace's ReefPolicy: what admission refuses, how running-VM slots are handed out,
what a VMNode does over a limit, and the figures of the policy's status.

Pure: the decisions fed objects as the apiserver would send them; no processes.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import pytest

from reef_operator.api import reefpolicy
from reef_operator.cli.plugin.commands.policy import lines, report
from reef_operator.controllers.policy_admission import lieutenant_problems, vmnode_problems
from reef_operator.lieutenants.inputs import ModelProviderNotAllowed
from reef_operator.lieutenants.runner import LieutenantRunner
from reef_operator.policies.usage import cost_on, status_patch, used
from reef_operator.vmnodes.fleet import Fleet
from reef_operator.vmnodes.reconcile import IDLE
from tests.unit.test_vmnode_reconcile import Node

RESOURCES = {"small": {"vcpu": 1, "memoryMiB": 1024}, "big": {"vcpu": 8, "memoryMiB": 16384}}


def _policy(**limits: Any) -> dict[str, Any]:
    return {"metadata": {"name": "team-policy", "namespace": "team-a"},
            "spec": {"limits": limits}}


def _resources(name: str) -> Mapping[str, Any] | None:
    return RESOURCES.get(name)


def _lieutenant(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "lt", "namespace": "team-a"},
            "spec": {"role": "r", **spec}}


def _lt_problems(old: Mapping[str, Any], new: Mapping[str, Any],
                 policy: Mapping[str, Any] | None, existing: int = 0) -> list[str]:
    return lieutenant_problems(old, new, policy, existing, default_profile="small",
                               default_provider="anthropic", resources_of=_resources)


# -- admission ---------------------------------------------------------------------------

def test_without_a_policy_everything_is_admitted() -> None:
    new = _lieutenant(profileRef={"name": "big"}, model={"provider": "anything"})
    assert _lt_problems({}, new, None, existing=500) == []


def test_a_lieutenant_over_max_lieutenants_is_refused_naming_the_policy_and_figures() -> None:
    policy = _policy(maxLieutenants=2)
    assert _lt_problems({}, _lieutenant(), policy, existing=1) == []
    [problem] = _lt_problems({}, _lieutenant(), policy, existing=2)
    assert "ReefPolicy team-a/team-policy allows 2 lieutenants (limits.maxLieutenants)" in \
        problem and "2 already exist" in problem


def test_an_update_of_an_existing_lieutenant_is_not_counted_again() -> None:
    policy = _policy(maxLieutenants=2)
    old = _lieutenant(tasks=[])
    new = _lieutenant(tasks=[{"name": "t1", "message": "hi"}])
    assert _lt_problems(old, new, policy, existing=5) == []


def test_a_profile_outside_allowed_profiles_is_refused_and_the_default_counts() -> None:
    policy = _policy(allowedProfiles=["small"])
    assert _lt_problems({}, _lieutenant(), policy) == []            # default: small
    [problem] = _lt_problems({}, _lieutenant(profileRef={"name": "big"}), policy)
    assert "BootProfile 'big' is not allowed by ReefPolicy team-a/team-policy" in problem
    assert "allowedProfiles: small" in problem
    [problem] = _lt_problems({}, _lieutenant(), _policy(allowedProfiles=["big"]))
    assert "BootProfile 'small' is not allowed" in problem


def test_a_changed_profile_reference_is_checked_an_unchanged_one_is_not() -> None:
    policy = _policy(allowedProfiles=["small"])
    old = _lieutenant(profileRef={"name": "big"})       # admitted before the policy
    assert _lt_problems(old, _lieutenant(profileRef={"name": "big"}, tasks=[]), policy) == []
    assert _lt_problems(_lieutenant(), _lieutenant(profileRef={"name": "big"}), policy)


def test_a_model_provider_outside_the_allowed_ones_is_refused() -> None:
    policy = _policy(allowedModelProviders=["anthropic"])
    assert _lt_problems({}, _lieutenant(), policy) == []             # default: anthropic
    [problem] = _lt_problems({}, _lieutenant(model={"provider": "openai", "id": "x"}), policy)
    assert "model provider 'openai' is not allowed by ReefPolicy team-a/team-policy" in problem
    assert "spec.model.provider" in problem


def test_a_vm_larger_than_the_policy_allows_is_refused_with_both_figures() -> None:
    policy = _policy(maxVCPUPerVM=4, maxMemoryMiBPerVM=8192)
    assert _lt_problems({}, _lieutenant(profileRef={"name": "small"}), policy) == []
    problems = _lt_problems({}, _lieutenant(profileRef={"name": "big"}), policy)
    assert len(problems) == 2
    assert "8 vCPU (resources.vcpu), over ReefPolicy team-a/team-policy limits.maxVCPUPerVM " \
        "(4 vCPU)" in problems[0]
    assert "16384 MiB" in problems[1] and "(8192 MiB)" in problems[1]


def test_a_vmnode_is_judged_by_its_own_resources_before_its_profiles() -> None:
    policy = _policy(maxVCPUPerVM=4)
    node: dict[str, Any] = {
        "metadata": {"name": "n", "namespace": "team-a"},
        "spec": {"profileRef": {"name": "small"}, "resources": {"vcpu": 6}}}
    [problem] = vmnode_problems({}, node, policy, default_profile="small",
                                resources_of=_resources)
    assert "6 vCPU" in problem
    unchanged = copy.deepcopy(node)
    unchanged["spec"]["state"] = "Paused"
    assert vmnode_problems(node, unchanged, policy, default_profile="small",
                           resources_of=_resources) == []


def test_a_second_policy_in_a_namespace_is_refused() -> None:
    assert reefpolicy.duplicate_problem([]) == ""
    assert "already has ReefPolicy 'first'" in reefpolicy.duplicate_problem(["first"])


# -- running-VM slots ----------------------------------------------------------------------

def _node(name: str, created: str, status: Mapping[str, Any] | None = None,
          state: str = "Running", namespace: str = "team-a") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}",
                         "creationTimestamp": created},
            "spec": {"state": state}, "status": dict(status or {})}


RUNNING = {"vmId": "vm-1", "vmState": "running"}


def test_without_a_limit_every_node_may_run() -> None:
    fleet = Fleet()
    fleet.upsert(_node("a", "t1"))
    assert fleet.take_slot("team-a", "a", None)
    assert fleet.waiting_in("team-a") == []


def test_the_last_slot_goes_to_one_node_only_the_oldest_waiting_first() -> None:
    fleet = Fleet()
    fleet.upsert(_node("running", "t0", RUNNING))
    fleet.upsert(_node("young", "t2"))
    fleet.upsert(_node("old", "t1"))
    # Both wait while the limit is full.
    assert not fleet.take_slot("team-a", "young", 1)
    assert not fleet.take_slot("team-a", "old", 1)
    assert fleet.waiting_in("team-a") == [("team-a", "old"), ("team-a", "young")]
    # The running VM is paused: one slot. The younger asks first and still waits.
    fleet.upsert(_node("running", "t0", {"vmId": "vm-1", "vmState": "paused"}))
    assert fleet.running("team-a") == 0
    assert not fleet.take_slot("team-a", "young", 1)
    assert fleet.take_slot("team-a", "old", 1)
    assert not fleet.take_slot("team-a", "young", 1)
    assert fleet.running("team-a") == 1


def test_a_slot_holds_until_the_status_shows_the_vm_and_frees_when_it_pauses() -> None:
    fleet = Fleet()
    fleet.upsert(_node("a", "t1"))
    fleet.upsert(_node("b", "t2"))
    assert fleet.take_slot("team-a", "a", 1)
    assert fleet.take_slot("team-a", "a", 1)                # asking again keeps it
    fleet.upsert(_node("a", "t1", RUNNING))                  # the status now counts it
    assert fleet.granted == set() and fleet.running("team-a") == 1
    assert not fleet.take_slot("team-a", "b", 1)
    fleet.upsert(_node("a", "t1", RUNNING, state="Paused"))  # asked to pause: still running
    assert not fleet.take_slot("team-a", "b", 1)
    fleet.upsert(_node("a", "t1", {"vmId": "vm-1", "vmState": "paused"}, state="Paused"))
    assert fleet.take_slot("team-a", "b", 1)


def test_a_node_given_a_slot_that_stops_wanting_a_vm_gives_it_back() -> None:
    fleet = Fleet()
    fleet.upsert(_node("a", "t1"))
    assert fleet.take_slot("team-a", "a", 1)
    fleet.upsert(_node("a", "t1", state="Destroyed"))
    assert fleet.running("team-a") == 0
    fleet.upsert(_node("b", "t2"))
    fleet.remove("team-a", "a")
    assert fleet.take_slot("team-a", "b", 1)


def test_namespaces_do_not_share_slots() -> None:
    fleet = Fleet()
    fleet.upsert(_node("a", "t1", RUNNING))
    fleet.upsert(_node("b", "t2", namespace="team-b"))
    assert fleet.take_slot("team-b", "b", 1)


# -- a VMNode over a limit ----------------------------------------------------------------

async def test_a_node_over_max_running_vms_waits_without_creating_a_vm() -> None:
    node = Node()
    node.fleet.upsert(_node("other", "t0", RUNNING))
    node.reconciler.policy = lambda namespace: _policy(maxRunningVMs=1)
    assert await node.reconcile() == IDLE
    assert "create" not in node.calls()
    assert node.summary() == ("False", "True", "False", "QuotaExceeded")
    message = node.condition("Ready")["message"]
    assert "allows 1 running VMs (limits.maxRunningVMs) and 1 run in the namespace" in message
    assert node.reasons() == ["QuotaExceeded"]
    # Room again: the same node creates its VM.
    node.fleet.upsert(_node("other", "t0", {"vmId": "vm-0", "vmState": "paused"}))
    await node.reconcile()
    assert "create" in node.calls()
    assert node.condition("Ready")["status"] == "True"


async def test_a_waiting_node_stuck_on_something_else_leaves_the_line() -> None:
    node = Node()
    node.fleet.upsert(_node("other", "t0", RUNNING))
    node.reconciler.policy = lambda namespace: _policy(maxRunningVMs=1)
    await node.reconcile()
    assert node.fleet.waiting_in("team-a") == [("team-a", "n")]
    node.reconciler.policy = lambda namespace: _policy(maxRunningVMs=1,
                                                       allowedProfiles=["other"])
    await node.reconcile()
    assert node.summary()[3] == "PolicyRefused"
    assert node.fleet.waiting_in("team-a") == []


async def test_a_paused_node_over_max_running_vms_is_not_resumed() -> None:
    node = Node()
    await node.running()
    node.set_spec(state="Paused")
    await node.reconcile()
    node.fleet.upsert(node.body)
    node.fleet.upsert(_node("other", "t0", RUNNING))
    node.reconciler.policy = lambda namespace: _policy(maxRunningVMs=1)
    node.set_spec(state="Running")
    node.journal.clear()
    await node.reconcile()
    assert "resume" not in node.calls()
    assert node.summary()[3] == "QuotaExceeded"


async def test_a_node_whose_profile_the_policy_no_longer_allows_stalls_before_creating() -> None:
    node = Node()
    node.reconciler.policy = lambda namespace: _policy(allowedProfiles=["other"])
    await node.reconcile()
    assert "create" not in node.calls()
    assert node.summary() == ("False", "False", "True", "PolicyRefused")
    assert "BootProfile 'agent' is not allowed by ReefPolicy" in \
        node.condition("Stalled")["message"]


# -- the policy's status -------------------------------------------------------------------

def test_the_days_cost_counts_each_finished_task_once_and_the_running_ones() -> None:
    records = [
        {"spec": {"lieutenant": "a", "task": "t1", "completedAt": "2026-12-02T01:00:00Z",
                  "usage": {"cost": 0.25}}},
        {"spec": {"lieutenant": "a", "task": "t0", "completedAt": "2026-12-01T23:59:00Z",
                  "usage": {"cost": 9.0}}},                              # yesterday
    ]
    histories = {"a": [{"task": "t1", "completedAt": "2026-12-02T01:00:00Z",
                        "usage": {"cost": 0.25}}],                       # also recorded
                 "b": [{"task": "t9", "completedAt": "2026-12-02T02:00:00Z",
                        "usage": {"cost": 0.5}}]}                        # not listed yet
    assert cost_on("2026-12-02", records, histories, [0.125]) == 0.875
    assert cost_on("2026-12-03", records, histories, []) == 0


def test_the_status_is_written_only_when_a_figure_or_condition_changes() -> None:
    figures = used(2, 1, "2026-12-02", 0.42)
    first = status_patch({}, figures, "p", 1, "p")
    assert first is not None
    assert first["used"]["lieutenants"] == 2 and first["used"]["costTodayUSD"] == 0.42
    ready = next(c for c in first["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Active")
    assert status_patch(first, figures, "p", 1, "p") is None
    assert status_patch(first, used(2, 0, "2026-12-02", 0.42), "p", 1, "p") is not None


def test_a_younger_duplicate_says_which_policy_applies() -> None:
    patch = status_patch({}, used(0, 0, "2026-12-02", 0), "older", 1, "younger")
    assert patch is not None
    stalled = next(c for c in patch["conditions"] if c["type"] == "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "Duplicate")
    assert "ReefPolicy older is older and applies" in stalled["message"]


# -- kubectl reef policy -------------------------------------------------------------------

def test_kubectl_reef_policy_shows_each_limit_with_its_use_and_who_waits() -> None:
    policy = _policy(maxLieutenants=2, maxRunningVMs=3, costPerDayUSD=5,
                     allowedProfiles=["local"])
    policy["spec"]["defaults"] = {"idlePolicy": {"pauseAfter": "15m"}}
    policy["status"] = {"used": {"lieutenants": 2, "runningVMs": 1, "day": "2026-12-02",
                                 "costTodayUSD": 0.42, "updatedAt": "2026-12-02T04:00:00Z"}}
    waiting = {"metadata": {"name": "b"}, "status": {"conditions": [
        {"type": "Ready", "status": "False", "reason": "QuotaExceeded", "message": "full"}]}}
    own_node = {"metadata": {"name": "b", "labels": {"reef.vers.sh/lieutenant": "b"}},
                "status": waiting["status"]}
    text = "\n".join(lines(report(policy, [], [waiting], [own_node])))
    for expected in ("ReefPolicy team-a/team-policy", "lieutenants     2/2",
                     "running VMs     1/3", "cost today      $0.42/$5.00",
                     "vCPU per VM     unlimited", "profiles        local",
                     "model providers any", "Defaults: idlePolicy pauseAfter=15m",
                     "  Lieutenant b: full"):
        assert expected in text, text
    assert "VMNode b" not in text          # a lieutenant's node waits with it


# -- a lieutenant over a limit -------------------------------------------------------------

def _runner(policy: Mapping[str, Any] | None, older: int, has_node: bool = False,
            provider: str = "scripted") -> LieutenantRunner:
    body: dict[str, Any] = {"metadata": {"name": "l", "namespace": "team-a", "uid": "u"},
                            "spec": {"model": {"provider": provider, "id": "m"}},
                            "status": {}}
    rt: Any = SimpleNamespace(
        policy=lambda namespace: policy,
        older_lieutenants=lambda namespace, name: older,
        vmnode_bodies={("team-a", "l"): {}} if has_node else {},
        config=SimpleNamespace(default_model_provider="anthropic", default_model_id="x"))
    return LieutenantRunner(rt, body, asyncio.Event())


def test_a_lieutenant_ranked_over_max_lieutenants_waits_for_room() -> None:
    policy = _policy(maxLieutenants=2)
    assert _runner(policy, older=1).holding.crowded("Running") == ""
    assert "allows 2 lieutenants (limits.maxLieutenants) and 2 already exist" in \
        _runner(policy, older=2).holding.crowded("Running")
    assert _runner(policy, older=2, has_node=True).holding.crowded("Running") == ""   # keeps it
    assert _runner(policy, older=2).holding.crowded("Destroyed") == ""
    assert _runner(None, older=99).holding.crowded("Running") == ""


def test_a_lieutenant_whose_model_provider_is_no_longer_allowed_stalls() -> None:
    policy = _policy(allowedModelProviders=["anthropic"])
    with pytest.raises(ModelProviderNotAllowed, match="model provider 'scripted'"):
        _runner(policy, older=0).holding.crowded("Running")
    assert _runner(policy, older=0, provider="anthropic").holding.crowded("Running") == ""
