"""What a delegating lieutenant's agent may write (api/delegation.py), and the webhook that
asks it only in namespaces that enable delegation (controllers/delegation_admission.py),
and a child lieutenant owned by its parent (lieutenants/parent.py)."""

from __future__ import annotations

from typing import Any

import pytest

from reef_operator.api import delegation
from reef_operator.api.delegation import Write
from reef_operator.constants import LABEL_LIEUTENANT
from reef_operator.controllers.delegation_admission import namespace_selectors
from reef_operator.lieutenants.delegation import kubeconfig
from reef_operator.lieutenants.parent import owners_with, parent_lieutenant

CALLER = ("team-a", "lead")
LEAD: dict[str, Any] = {"metadata": {"name": "lead", "namespace": "team-a"},
                        "spec": {"role": "r", "profileRef": {"name": "local"},
                                 "credentialsSecretRef": {"name": "keys"},
                                 "delegation": {"maxChildren": 2, "profiles": ["local"]}}}


def child(kind: str, name: str, parent: str | None = "lead", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": kind, "metadata": {"name": name, "namespace": "team-a"},
                            "spec": {"profileRef": {"name": "local"}, **spec}}
    if parent:
        body["spec"]["parentRef"] = {"name": parent}
    return body


def problems(write: Write, alive: int = 0, leader: dict[str, Any] | None = LEAD) -> list[str]:
    return delegation.delegated_write_problems(CALLER, leader, write, alive, "full")


def create(body: dict[str, Any], namespace: str = "team-a") -> Write:
    return Write("CREATE", body["kind"], namespace, body["metadata"]["name"], {}, body)


def test_only_a_delegates_service_account_is_a_delegate() -> None:
    assert delegation.delegate_of("system:serviceaccount:team-a:reef-delegate-lead") == CALLER
    assert delegation.delegate_of("system:serviceaccount:team-a:default") is None
    assert delegation.delegate_of("alice") is None
    assert delegation.delegate_of("reef-delegate-lead") is None
    assert delegation.service_account("lead") == "reef-delegate-lead"


def test_children_up_to_max_children_are_admitted_the_next_is_refused() -> None:
    assert problems(create(child("VMNode", "w1", category="Swarm")), alive=0) == []
    assert problems(create(child("Lieutenant", "sub", role="r")), alive=1) == []
    [refused] = problems(create(child("VMNode", "w2")), alive=2)
    assert refused == ("VMNode w2: lieutenant lead already has 2 children alive, its "
                       "spec.delegation.maxChildren is 2; destroy or delete one first")


def test_an_object_with_another_parent_or_none_is_refused() -> None:
    [other] = problems(create(child("VMNode", "w1", parent="sibling")))
    assert other == ("VMNode w1: the agent of lieutenant lead may only touch objects whose "
                     "spec.parentRef.name is lead (its own children); this one's is sibling")
    [orphan] = problems(create(child("Lieutenant", "x", parent=None, role="r")))
    assert "this one's is not set" in orphan


def test_another_namespace_and_other_kinds_are_refused() -> None:
    [elsewhere] = problems(create(child("VMNode", "w1"), namespace="team-b"))
    assert elsewhere == ("the agent of lieutenant lead may act only in its namespace team-a, "
                         "not in team-b")
    [kind] = problems(Write("CREATE", "BootProfile", "team-a", "p", {}, {"spec": {}}))
    assert "may write only Lieutenants and VMNodes, not BootProfile" in kind


def test_a_siblings_objects_cannot_be_changed_nor_deleted_nor_taken_over() -> None:
    theirs = child("VMNode", "w9", parent="sibling")
    mine = child("VMNode", "w9", parent="lead")
    for write in (Write("UPDATE", "VMNode", "team-a", "w9", theirs, mine),
                  Write("DELETE", "VMNode", "team-a", "w9", theirs, {})):
        assert "this one's is sibling" in problems(write)[0]
    # Its own child: changed and deleted freely.
    assert problems(Write("UPDATE", "VMNode", "team-a", "w9", mine,
                          {**mine, "spec": {**mine["spec"], "state": "Paused"}}), alive=2) == []
    assert problems(Write("DELETE", "VMNode", "team-a", "w9", mine, {}), alive=2) == []


def test_a_child_lieutenants_own_vmnode_is_not_the_delegates() -> None:
    node = child("VMNode", "sub")
    node["metadata"]["labels"] = {LABEL_LIEUTENANT: "sub"}
    [refused] = problems(Write("DELETE", "VMNode", "team-a", "sub", node, {}))
    assert refused == "VMNode sub belongs to lieutenant sub: change that lieutenant instead"


def test_profiles_credentials_and_nested_delegation_are_bounded() -> None:
    [profile] = problems(create(child("VMNode", "w1", profileRef={"name": "full"})))
    assert profile == ("VMNode w1: profile full is not in the profiles lieutenant lead may "
                       "use (local); set spec.profileRef.name to one of them")
    [nested] = problems(create(child("Lieutenant", "s", role="r",
                                     delegation={"maxChildren": 9})))
    assert "may not delegate in turn" in nested
    [keys] = problems(create(child("Lieutenant", "s", role="r",
                                   credentialsSecretRef={"name": "prod-keys"})))
    assert keys == ("Lieutenant s: spec.credentialsSecretRef may name only lieutenant lead's "
                    "own Secret (keys), not prod-keys")
    assert problems(create(child("Lieutenant", "s", role="r",
                                 credentialsSecretRef={"name": "keys"}))) == []


def test_without_profiles_only_the_leaders_own_profile_is_allowed() -> None:
    leader = {**LEAD, "spec": {**LEAD["spec"], "delegation": {"maxChildren": 1}}}
    assert problems(create(child("VMNode", "w1")), leader=leader) == []
    assert problems(create(child("VMNode", "w1", profileRef={"name": "full"})), leader=leader)


@pytest.mark.parametrize("leader", [
    None,
    {**LEAD, "spec": {**LEAD["spec"], "state": "Destroyed"}},
    {**LEAD, "spec": {"role": "r"}},
    {**LEAD, "metadata": {**LEAD["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"}},
])
def test_a_leader_gone_destroyed_or_without_delegation_may_create_nothing(
        leader: dict[str, Any] | None) -> None:
    [refused] = problems(create(child("VMNode", "w1")), leader=leader)
    assert "has no delegation" in refused


def test_children_alive_count_a_child_lieutenant_once_and_leave_out_the_destroyed() -> None:
    sub = child("Lieutenant", "sub", role="r")
    subs_node = child("VMNode", "sub")
    subs_node["metadata"]["labels"] = {LABEL_LIEUTENANT: "sub"}
    worker = child("VMNode", "w1")
    gone = child("VMNode", "w2", state="Destroyed")
    theirs = child("VMNode", "w3", parent="sibling")
    nodes = [subs_node, worker, gone, theirs]
    assert delegation.children_alive("lead", [sub], nodes) == 2
    assert delegation.children_alive("lead", [sub], nodes, leaving="VMNode/w1") == 1


def test_only_the_delegates_webhooks_select_enabled_namespaces() -> None:
    webhooks = [{"name": "delegated-vmnode-writes.reef.vers.sh", "failurePolicy": "Fail"},
                {"name": "lieutenant-tasks-are-kept.reef.vers.sh", "failurePolicy": "Ignore"}]
    delegated, other = namespace_selectors(webhooks)
    assert delegated["namespaceSelector"] == {
        "matchLabels": {"reef.vers.sh/delegation": "enabled"}}
    assert "namespaceSelector" not in other


def test_the_kubeconfig_reads_its_token_from_the_file_and_holds_none() -> None:
    text = kubeconfig("https://10.0.0.1:6443", b"CA", "team-a", "/home/vm/.reef/kube/token")
    assert "tokenFile: /home/vm/.reef/kube/token" in text
    assert "namespace: team-a" in text and "server: https://10.0.0.1:6443" in text
    assert "token:" not in text


def test_a_child_lieutenant_is_given_its_parent_as_owner_once() -> None:
    assert parent_lieutenant({"parentRef": {"kind": "Lieutenant", "name": "lead"}}) == "lead"
    assert parent_lieutenant({"parentRef": {"name": "lead"}}) is None     # a VMNode parent
    assert parent_lieutenant({}) is None
    other = {"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "uid": "c1"}
    owners = owners_with([other], "lead", "u1")
    assert owners == [other, {"apiVersion": "reef.vers.sh/v1alpha1", "kind": "Lieutenant",
                              "name": "lead", "uid": "u1"}]
    assert owners_with(owners, "lead", "u1") is None
