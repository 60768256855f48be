"""The metadata a VM node's place in its tree asks for: labels and the parent's ownerReference."""

from __future__ import annotations

from typing import Any

from reef_operator.constants import (
    GROUP,
    LABEL_CATEGORY,
    LABEL_FORKED_FROM,
    LABEL_PARENT,
    LABEL_PROFILE,
    LABEL_PROVIDER,
    LABEL_ROOT,
    VERSION,
)
from reef_operator.vmnodes.fleet import Fleet
from reef_operator.vmnodes.lineage import lineage_labels, lineage_patch
from reef_operator.vmnodes.profiles import ProfileView

PROFILE = ProfileView.from_body({"metadata": {"name": "agent"},
                                 "spec": {"provider": "Local", "category": "Agent"}})
CHILD = {"category": "Swarm", "parentRef": {"name": "boss"}}


def test_labels_name_the_category_root_profile_provider_and_parent() -> None:
    assert lineage_labels(CHILD, PROFILE, "root") == {
        LABEL_CATEGORY: "Swarm", LABEL_ROOT: "root", LABEL_PROFILE: "agent",
        LABEL_PROVIDER: "local", LABEL_PARENT: "boss"}
    assert LABEL_PARENT not in lineage_labels({}, PROFILE, "solo")
    assert lineage_labels({}, PROFILE, "solo")[LABEL_CATEGORY] == "Agent"


def test_a_node_already_labelled_and_owned_needs_no_patch() -> None:
    meta = {"labels": lineage_labels(CHILD, PROFILE, "root"),
            "ownerReferences": [{"uid": "uid-boss"}]}
    assert lineage_patch(meta, CHILD, PROFILE, "root", "uid-boss") == {}


def test_only_the_labels_that_differ_are_patched() -> None:
    meta = {"labels": {**lineage_labels(CHILD, PROFILE, "old-root"), "team": "a"}}
    assert lineage_patch(meta, CHILD, PROFILE, "root", None) == {"labels": {LABEL_ROOT: "root"}}


def test_a_parent_label_left_from_an_earlier_parent_is_removed() -> None:
    meta = {"labels": {**lineage_labels({}, PROFILE, "solo"), LABEL_PARENT: "boss"}}
    assert lineage_patch(meta, {}, PROFILE, "solo", None) == {"labels": {LABEL_PARENT: None}}


def test_the_parent_becomes_the_owner_replacing_an_earlier_parent_and_keeping_others() -> None:
    lieutenant = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Lieutenant", "uid": "uid-lt"}
    earlier = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VMNode", "uid": "uid-earlier"}
    meta = {"labels": lineage_labels(CHILD, PROFILE, "root"),
            "ownerReferences": [lieutenant, earlier]}
    assert lineage_patch(meta, CHILD, PROFILE, "root", "uid-boss") == {"ownerReferences": [
        lieutenant, {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VMNode", "name": "boss",
                     "uid": "uid-boss", "blockOwnerDeletion": True}]}


def test_no_owner_while_the_parent_uid_is_unknown() -> None:
    meta = {"labels": lineage_labels(CHILD, PROFILE, "root")}
    assert lineage_patch(meta, CHILD, PROFILE, "root", None) == {}


def test_a_forks_node_sits_under_its_source_without_being_owned_or_paused_by_it() -> None:
    forked = {"labels": {**lineage_labels(CHILD, PROFILE, "root"), LABEL_FORKED_FROM: "boss"}}
    assert lineage_patch(forked, CHILD, PROFILE, "root", "uid-boss") == {}

    def node(name: str, parent: str | None, state: str = "Running",
             fork: bool = False) -> dict[str, Any]:
        return {"metadata": {"namespace": "ns", "name": name, "uid": name,
                             "labels": {LABEL_FORKED_FROM: "x"} if fork else {}},
                "spec": {"state": state, **({"parentRef": {"name": parent}} if parent else {})}}
    fleet = Fleet()
    for body in (node("boss", None, "Paused"), node("worker", "boss"),
                 node("fork", "boss", fork=True), node("helper", "fork")):
        fleet.upsert(body)
    assert fleet.effective_state("ns", "worker") == "Paused"     # a worker pauses with it
    assert fleet.effective_state("ns", "fork") == "Running"      # a fork does not
    assert fleet.effective_state("ns", "helper") == "Running"    # nor what is under the fork
    fleet.upsert(node("fork", "boss", "Paused", fork=True))
    assert fleet.effective_state("ns", "helper") == "Paused"     # the fork's own pause passes
    assert [n.name for n in fleet.children("ns", "boss")] == ["worker", "fork"]
