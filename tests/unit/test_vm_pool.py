"""VMPools: which member a claim may take, what one pool pass decides, and a pooled node's
pass taking a warm VM (or booting its own), with the in-memory apiserver and provider.

The apiserver fake refuses a claim whose resourceVersion is not the member's current
one, as the real one does (409): that is what makes a claim atomic.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
from typing import Any

from reef_operator.constants import (
    ANNOTATION_CLAIMED_BY,
    ANNOTATION_VM_REQUESTED,
    GROUP,
    LABEL_FROM_POOL,
    LABEL_POOL,
    VERSION,
)
from reef_operator.kube.conditions import now_iso
from reef_operator.pools.members import (
    claim_patch,
    claimable,
    claimed_by,
    handed_over,
    member,
    members_of,
)
from reef_operator.pools.plan import member_body, member_name, plan
from reef_operator.providers.base import VmRequest
from reef_operator.vmnodes.pooling import PoolClaims, owner_lieutenant, wants_pool
from reef_operator.vmnodes.reconcile import BOOT_POLL
from tests.unit.memory_provider import Journal, MemoryKube, MemoryProvider, MemoryVm
from tests.unit.test_vmnode_reconcile import Node

NOW = datetime.datetime(2026, 12, 2, 8, 0, tzinfo=datetime.UTC)
POOL: dict[str, Any] = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VMPool",
        "metadata": {"name": "warm", "namespace": "team-a", "uid": "uid-pool", "generation": 1},
        "spec": {"profileRef": {"name": "agent"}, "minReady": 3, "maxSize": 5}}


def _ago(seconds: float, now: datetime.datetime | None = None) -> str:
    return now_iso((now or datetime.datetime.now(datetime.UTC)) -
                   datetime.timedelta(seconds=seconds))


def a_member(name: str, *, rv: str = "1", ready: bool = True, stalled: bool = False,
             vm: str | None = None, profile: str = "agent", beat_ago: float = 5,
             claimed: str | None = None, created: str = "2026-12-02T07:00:00Z",
             now: datetime.datetime | None = None, uid: str | None = None) -> dict[str, Any]:
    annotations = {ANNOTATION_CLAIMED_BY: claimed} if claimed else {}
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "VMNode",
        "metadata": {"name": name, "namespace": "team-a", "uid": uid or f"uid-{name}",
                     "resourceVersion": rv, "creationTimestamp": created,
                     "labels": {LABEL_POOL: "warm"}, "annotations": annotations,
                     "ownerReferences": [{"kind": "VMPool", "name": "warm", "uid": "uid-pool",
                                          "controller": True}]},
        "spec": {"profileRef": {"name": profile}},
        "status": {"vmId": vm or f"vm-{name}", "vmState": "running", "address": "10.0.0.9",
                   "hostKeyFingerprint": "SHA256:memory",
                   "boot": {"profileHash": "h", "completedAt": _ago(60, now), "attempts": 1},
                   "lastHeartbeatTime": _ago(beat_ago, now),
                   "conditions": [{"type": "Ready", "status": str(ready)},
                                  {"type": "Stalled", "status": str(stalled)}]},
    }


# -- which members a claim may take ----------------------------------------------------------
def test_only_ready_free_members_of_the_claimers_profile_are_claimable() -> None:
    bodies = [a_member("ok", now=NOW), a_member("booting", ready=False, now=NOW),
              a_member("stale", beat_ago=600, now=NOW), a_member("other", profile="x", now=NOW),
              a_member("taken", claimed="uid-x", now=NOW),
              {**a_member("going", now=NOW), "metadata": {
                  **a_member("going")["metadata"], "deletionTimestamp": now_iso(NOW)}},
              {**a_member("elsewhere", now=NOW), "metadata": {
                  **a_member("elsewhere")["metadata"], "namespace": "team-b"}}]
    members = members_of("warm", "team-a", bodies, NOW)
    assert sorted(m.name for m in members) == ["booting", "going", "ok", "other", "stale",
                                               "taken"]
    assert [m.name for m in claimable(members, "agent", "uid-n")] == ["ok"]


def test_claimers_start_at_different_members_but_each_tries_them_all() -> None:
    bodies = [a_member(f"m{i}", created=f"2026-12-02T07:00:0{i}Z", now=NOW) for i in range(3)]
    members = members_of("warm", "team-a", bodies, NOW)
    orders = {tuple(m.name for m in claimable(members, "agent", f"uid-{n}")) for n in range(20)}
    assert all(sorted(order) == ["m0", "m1", "m2"] for order in orders)
    assert len({order[0] for order in orders}) > 1


def test_a_claim_is_guarded_by_the_members_version_and_makes_the_claimer_its_owner() -> None:
    target = member(a_member("m0", rv="42"), NOW)
    claimer = {"metadata": {"name": "lt", "uid": "uid-lt"}}
    patch = claim_patch(target, claimer)["metadata"]
    assert patch["resourceVersion"] == "42"
    assert patch["annotations"] == {ANNOTATION_CLAIMED_BY: "uid-lt"}
    assert [(o["kind"], o["name"], o["uid"], o["controller"]) for o in patch["ownerReferences"]] \
        == [("VMNode", "lt", "uid-lt", True)]


def test_after_a_crash_the_claimer_finds_its_member_by_its_uid() -> None:
    members = members_of("warm", "team-a", [a_member("m0", now=NOW),
                                            a_member("m1", claimed="uid-lt", now=NOW)], NOW)
    found = claimed_by(members, "uid-lt")
    assert found is not None and found.name == "m1"
    assert claimed_by(members, "uid-other") is None
    assert claimed_by(members, "") is None


def test_a_claimed_member_goes_once_its_claimer_holds_the_vm_or_is_gone() -> None:
    body = a_member("m0", vm="vm-7", claimed="uid-lt")
    assert not handed_over(body, {"status": {}})
    assert handed_over(body, {"status": {"vmId": "vm-7"}})
    assert handed_over(body, None)


def test_a_node_claims_only_without_a_vm_or_a_source_of_its_own() -> None:
    pooled = {"metadata": {}, "spec": {"poolRef": {"name": "warm"}}}
    assert wants_pool(pooled) == "warm"
    assert wants_pool({"metadata": {"annotations": {ANNOTATION_VM_REQUESTED: "t"}},
                       "spec": {"poolRef": {"name": "warm"}}}) == ""
    assert wants_pool({"metadata": {}, "spec": {}}) == ""
    assert wants_pool({"metadata": {}, "spec": {"poolRef": {"name": "warm"},
                                               "source": {"commitId": "c0ffee"}}}) == ""


# -- one pool pass -------------------------------------------------------------------------
def _members(*bodies: dict[str, Any]) -> list[Any]:
    return members_of("warm", "team-a", list(bodies), NOW)


def test_an_empty_pool_boots_min_ready_members() -> None:
    decided = plan(POOL["spec"], [], profile_exists=True, room=None)
    assert (decided.boot, decided.replace, decided.reason) == (3, (), "Filling")


def test_booting_members_count_so_a_claim_is_replaced_once() -> None:
    members = _members(a_member("a", now=NOW), a_member("b", ready=False, now=NOW),
                       a_member("c", claimed="uid-lt", now=NOW))
    decided = plan(POOL["spec"], members, profile_exists=True, room=None)
    assert (decided.boot, decided.ready, decided.size) == (1, 1, 2)


def test_a_full_pool_boots_nothing_and_says_filled() -> None:
    members = _members(*(a_member(n, now=NOW) for n in "abc"))
    decided = plan(POOL["spec"], members, profile_exists=True, room=None)
    assert (decided.boot, decided.ready, decided.reason) == (0, 3, "Filled")


def test_an_unhealthy_member_is_replaced_not_counted() -> None:
    members = _members(a_member("a", now=NOW), a_member("b", now=NOW),
                       a_member("sick", ready=False, stalled=True, now=NOW))
    decided = plan(POOL["spec"], members, profile_exists=True, room=None)
    assert decided.replace == ("sick",)
    assert (decided.boot, decided.size) == (1, 2)


def test_members_never_exceed_max_size() -> None:
    decided = plan({**POOL["spec"], "minReady": 5, "maxSize": 5},
                   _members(*(a_member(n, ready=False, now=NOW) for n in "ab")),
                   profile_exists=True, room=None)
    assert decided.boot == 3


def test_the_namespaces_running_vm_limit_leaves_the_pool_short() -> None:
    decided = plan(POOL["spec"], [], profile_exists=True, room=1)
    assert (decided.boot, decided.reason) == (1, "QuotaExceeded")
    assert "maxRunningVMs" in decided.message
    assert plan(POOL["spec"], [], profile_exists=True, room=-2).boot == 0


def test_a_pool_that_cannot_work_as_written_boots_nothing_and_says_why() -> None:
    bad = plan({**POOL["spec"], "minReady": 6, "maxSize": 5}, [], profile_exists=True,
               room=None)
    assert (bad.boot, bad.reason) == (0, "SizeInvalid")
    assert "spec.minReady (6)" in bad.message and "spec.maxSize (5)" in bad.message
    missing = plan(POOL["spec"], [], profile_exists=False, room=None)
    assert (missing.boot, missing.reason) == (0, "ProfileNotFound")
    assert "'agent'" in missing.message


def test_a_new_member_is_the_pools_labelled_and_owned() -> None:
    name = member_name("warm")
    body = member_body({**POOL, "spec": {**POOL["spec"], "resources": {"vcpu": 2}}}, name,
                       {"finalizers": ["f"], "labels": {"x": "y"}})
    assert name.startswith("warm-") and len(name) <= 63
    assert body["metadata"]["labels"] == {"x": "y", LABEL_POOL: "warm"}
    assert body["metadata"]["ownerReferences"][0]["uid"] == "uid-pool"
    assert body["spec"] == {"state": "Running", "category": "Lieutenant",
                            "profileRef": {"name": "agent"}, "resources": {"vcpu": 2}}
    assert len(member_name("p" * 63)) <= 63


# -- claims against the apiserver fake -----------------------------------------------------
class World:
    """Members on the apiserver fake and their VMs on the memory provider."""

    def __init__(self, *names: str) -> None:
        self.journal: Journal = []
        self.provider = MemoryProvider(self.journal)
        self.kube = MemoryKube(self.journal, {"metadata": {}, "status": {}})
        for name in names:
            self.add(name)

    def add(self, name: str, **kw: Any) -> None:
        self.kube.others[name] = a_member(name, **kw)
        self.provider.vms[f"vm-{name}"] = MemoryVm(owner_uid=f"uid-{name}", namespace="team-a")

    def claims(self, view: dict[str, dict[str, Any]] | None = None) -> PoolClaims:
        """A claimer seeing `view` (a stale cache) or the apiserver's current objects."""
        nodes = {("team-a", n): b for n, b in (view or self.kube.others).items()}
        return PoolClaims(self.kube, nodes, lambda ns, name: POOL if name == "warm" else None)


def _claimer(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "team-a", "uid": f"uid-{name}"},
            "spec": {"poolRef": {"name": "warm"}}}


def _request(name: str) -> VmRequest:
    return VmRequest(owner_uid=f"uid-{name}", name=name, namespace="team-a")


async def test_two_claims_in_the_same_moment_never_get_the_same_vm() -> None:
    world = World("m0")
    stale = copy.deepcopy(world.kube.others)       # both read the member before either wrote
    first, second = await asyncio.gather(
        world.claims(stale).take(_claimer("a"), "warm", "agent", world.provider, _request("a")),
        world.claims(stale).take(_claimer("b"), "warm", "agent", world.provider, _request("b")))
    assert sorted((first.kind, second.kind)) == ["again", "claimed"]
    winner = "a" if first.kind == "claimed" else "b"
    assert world.provider.vms["vm-m0"].owner_uid == f"uid-{winner}"
    assert "rivals claimed" in (second if winner == "a" else first).message


async def test_a_refused_claim_tries_the_next_member() -> None:
    world = World("m0", "m1")
    stale = copy.deepcopy(world.kube.others)
    got = [await world.claims(stale).take(_claimer(n), "warm", "agent", world.provider,
                                          _request(n)) for n in ("a", "b")]
    assert [g.kind for g in got] == ["claimed", "claimed"]
    assert {g.vm_id for g in got} == {"vm-m0", "vm-m1"}


async def test_the_handover_writes_the_claimers_status_before_the_member_goes() -> None:
    world = World("m0")
    outcome = await world.claims().take(_claimer("a"), "warm", "agent", world.provider,
                                        _request("a"))
    assert outcome.kind == "claimed" and outcome.vm_id == "vm-m0"
    assert [e[0] for e in world.journal] == ["patch_guarded", "claim", "patch_metadata",
                                             "patch_status", "delete_object"]
    assert world.journal[2][1] == {"labels": {LABEL_FROM_POOL: "warm"}}
    handed = world.journal[3][1]
    assert handed["vmId"] == "vm-m0" and handed["boot"]["profileHash"] == "h"
    assert "m0" not in world.kube.others
    assert world.provider.vms["vm-m0"].owner_uid == "uid-a"


async def test_after_a_crash_mid_handover_the_claimer_finishes_with_its_own_member() -> None:
    world = World("m0", "m1")
    # Claimed before the crash: the claim landed, nothing else did.
    world.kube.others["m1"]["metadata"]["annotations"] = {ANNOTATION_CLAIMED_BY: "uid-a"}
    outcome = await world.claims().take(_claimer("a"), "warm", "agent", world.provider,
                                        _request("a"))
    assert outcome.vm_id == "vm-m1"
    assert "patch_guarded" not in [e[0] for e in world.journal]   # no second claim
    assert "m0" in world.kube.others and "m1" not in world.kube.others


async def test_a_member_whose_vm_is_gone_is_deleted_not_handed_out() -> None:
    world = World("m0")
    del world.provider.vms["vm-m0"]                # behind the operator's back
    outcome = await world.claims().take(_claimer("a"), "warm", "agent", world.provider,
                                        _request("a"))
    assert outcome.kind == "again" and "unhealthy" in outcome.message
    assert "m0" not in world.kube.others
    assert "claim" not in [e[0] for e in world.journal]


async def test_no_ready_member_or_no_pool_means_a_vm_of_its_own() -> None:
    world = World("m0")
    world.kube.others["m0"]["status"]["conditions"][0]["status"] = "False"
    empty = await world.claims().take(_claimer("a"), "warm", "agent", world.provider,
                                      _request("a"))
    assert empty.kind == "cold" and "no ready member" in empty.message
    missing = await world.claims().take(_claimer("a"), "nope", "agent", world.provider,
                                        _request("a"))
    assert missing.kind == "cold" and "VMPool 'nope' does not exist" in missing.message
    assert world.journal == []


async def test_a_claimed_member_deletes_itself_once_handed_over() -> None:
    world = World("m0")
    member_node = world.kube.others["m0"]
    member_node["metadata"]["annotations"] = {ANNOTATION_CLAIMED_BY: "uid-a"}
    member_node["metadata"]["ownerReferences"] = [{"kind": "VMNode", "name": "a",
                                                   "uid": "uid-a", "controller": True}]
    claimer = {**_claimer("a"), "status": {}}
    claims = PoolClaims(world.kube, {("team-a", "m0"): member_node, ("team-a", "a"): claimer},
                        lambda ns, name: POOL)
    await claims.settle_member(member_node)
    assert "m0" in world.kube.others               # the claimer is still handing over
    claimer["status"] = {"vmId": "vm-m0"}
    await claims.settle_member(member_node)
    assert "m0" not in world.kube.others


def test_events_reach_the_nodes_lieutenant() -> None:
    node = {"metadata": {"namespace": "team-a", "ownerReferences": [
        {"kind": "Lieutenant", "name": "lt", "uid": "uid-lt", "controller": True}]}}
    assert owner_lieutenant(node) == {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Lieutenant",
                                      "metadata": {"name": "lt", "uid": "uid-lt",
                                                   "namespace": "team-a"}}
    assert owner_lieutenant({"metadata": {}}) is None


# -- a pooled node's pass -------------------------------------------------------------------
def _pooled_node(*members: str) -> Node:
    node = Node(spec={"poolRef": {"name": "warm"}})
    for name in members:
        node.kube.others[name] = a_member(name)
        node.provider.vms[f"vm-{name}"] = MemoryVm(owner_uid=f"uid-{name}", namespace="team-a")
    node.reconciler.pool_claims = PoolClaims(
        node.kube, {("team-a", n): b for n, b in node.kube.others.items()},
        lambda ns, name: POOL if name == "warm" else None)
    return node


async def test_a_pooled_node_takes_a_warm_vm_and_boots_nothing() -> None:
    node = _pooled_node("m0")
    await node.reconcile()
    assert "create" not in node.calls()
    assert not any(e[0] == "run" and "bash -c" in e[2] for e in node.journal)   # no boot
    assert node.status["vmId"] == "vm-m0"
    assert node.summary() == ("True", "False", "False", "Running")
    pooled = node.condition("Pooled")
    assert (pooled["status"], pooled["reason"]) == ("True", "Claimed")
    assert "Claimed" in node.reasons()


async def test_a_pooled_node_with_an_empty_pool_boots_its_own_and_says_so() -> None:
    node = _pooled_node()
    await node.reconcile()
    assert "create" in node.calls()
    pooled = node.condition("Pooled")
    assert (pooled["status"], pooled["reason"]) == ("False", "PoolEmpty")
    assert "PoolEmpty" in node.reasons()
    # Marked before its create: it never claims from then on.
    assert ANNOTATION_VM_REQUESTED in node.body["metadata"]["annotations"]


async def test_a_pooled_node_whose_member_turns_out_dead_waits_a_moment_and_claims_another(
        ) -> None:
    node = _pooled_node("m0")
    node.provider.vms["vm-m0"].state = "dead"
    assert await node.reconcile() == BOOT_POLL
    assert "create" not in node.calls() and "m0" not in node.kube.others
    assert node.summary()[3] == "Booting"


# -- admission ------------------------------------------------------------------------------
def test_admission_judges_a_pooled_object_by_its_pools_profile() -> None:
    from types import SimpleNamespace

    from reef_operator.controllers.policy_admission import _default_profile

    rt: Any = SimpleNamespace(config=SimpleNamespace(default_profile="default"),
                              pool=lambda ns, name: POOL if (ns, name) == ("team-a", "warm")
                              else None)
    pooled = {"metadata": {"namespace": "team-a"}, "spec": {"poolRef": {"name": "warm"}}}
    assert _default_profile(rt, pooled) == "agent"
    assert _default_profile(rt, {"metadata": {"namespace": "team-a"},
                                 "spec": {"poolRef": {"name": "nope"}}}) == "default"
    assert _default_profile(rt, {"metadata": {"namespace": "team-a"}, "spec": {}}) == "default"


async def test_a_pass_from_a_body_older_than_the_handover_neither_claims_again_nor_forgets(
        ) -> None:
    node = _pooled_node("m0", "m1")
    stale = copy.deepcopy(node.body)               # as the watch showed it before the claim
    await node.reconcile()
    taken = node.status["vmId"]
    claims = node.reconciler.pool_claims
    claims.nodes = {k: v for k, v in claims.nodes.items() if k[1] in node.kube.others}
    node.journal.clear()
    await node.reconciler.reconcile(stale)
    assert "patch_guarded" not in node.calls() and "create" not in node.calls()
    assert node.status["vmId"] == taken
    pooled = node.condition("Pooled")
    assert (pooled["status"], pooled["reason"]) == ("True", "Claimed")
