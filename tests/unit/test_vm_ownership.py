"""Whose VM it is: the pure decision every action on an existing VM waits for."""

from __future__ import annotations

import pytest

from reef_operator.config import parsers
from reef_operator.providers.base import VmOwner
from reef_operator.providers.vers.provider import VersProvider, owner_in_record, owner_record
from reef_operator.vmnodes.ownership import judge


def test_the_nodes_own_vm_is_acted_on() -> None:
    assert judge("vm", VmOwner("b", "uid"), "b", "uid", ()).outcome == "mine"


def test_a_vm_of_another_namespace_is_refused_whatever_adoption_allows() -> None:
    verdict = judge("vm-1", VmOwner("a", "uid-a"), "b", "uid-b", ("b", "a"))
    assert verdict.outcome == "refuse"
    assert "VM vm-1 belongs to namespace 'a'" in verdict.message
    assert "remove spec.vmId" in verdict.message


def test_a_vm_of_another_node_in_the_same_namespace_is_refused() -> None:
    verdict = judge("vm-1", VmOwner("b", "uid-other"), "b", "uid-b", ("b",))
    assert verdict.outcome == "refuse"
    assert "another node (uid uid-other)" in verdict.message


def test_a_half_labelled_vm_is_nobodys_to_adopt() -> None:
    assert judge("vm", VmOwner("", "uid-b"), "b", "uid-b", ("b",)).outcome == "refuse"
    assert judge("vm", VmOwner("b", ""), "b", "uid-b", ("b",)).outcome == "refuse"


def test_an_unlabelled_vm_is_adopted_only_where_the_setting_lists_the_namespace() -> None:
    assert judge("vm", None, "b", "uid", ("b",)).outcome == "adopt"
    refused = judge("vm", None, "b", "uid", ("a",))
    assert refused.outcome == "refuse"
    assert "namespace 'b' may not adopt" in refused.message
    assert "REEF_ADOPTION_NAMESPACES" in refused.message


def test_the_adoption_setting_reads_a_comma_separated_list_of_namespaces() -> None:
    assert parsers.namespaces("a, b,,a", "K", "env") == ("a", "b")
    assert parsers.namespaces("", "K", "env") == ()
    with pytest.raises(parsers.ConfigError, match="K from env: 'Team_A' is not a namespace"):
        parsers.namespaces("Team_A", "K", "env")


def test_a_vers_commit_records_its_owner_and_labels_name_one() -> None:
    owner = VmOwner("team-a", "uid-1")
    assert owner_in_record(owner_record(owner)) == owner
    assert owner_in_record("") is None and owner_in_record("a checkpoint") is None
    assert VersProvider.owner_of({}) is None
    assert VersProvider.owner_of({"reef.vers.sh/uid": "u"}) == VmOwner("", "u")
