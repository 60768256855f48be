"""A lieutenant starts its agent only on the VM its own VMNode owns: a VM id slipped into
the node's status (the status subresource is writable by whoever may write it) that names
another node's VM is refused before any shell is opened."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from reef_operator.lieutenants.node import OwnershipError
from reef_operator.lieutenants.runner import LieutenantRunner
from tests.unit.memory_provider import MemoryProvider, MemoryVm


class ShellReached(Exception):
    pass


def _runner(provider: MemoryProvider) -> LieutenantRunner:
    body: dict[str, Any] = {"metadata": {"name": "l", "namespace": "team-b", "uid": "uid-l"},
                            "spec": {}, "status": {}}
    rt: Any = SimpleNamespace(
        providers={"vers": provider},
        vmnode_bodies={("team-b", "l"): {"metadata": {"uid": "uid-node", "labels": {}}}})
    provider.shell_error = ShellReached()
    return LieutenantRunner(rt, body, asyncio.Event())


@pytest.mark.parametrize("owner", [("team-a", "uid-a"), ("team-b", "uid-other"), ("", "")],
                         ids=["other namespace", "other node", "unlabelled"])
async def test_a_vm_not_labelled_for_the_lieutenants_node_is_never_shelled_into(
        owner: tuple[str, str]) -> None:
    provider = MemoryProvider([])
    provider.vms["vm-x"] = MemoryVm(owner_uid=owner[1], namespace=owner[0])
    with pytest.raises(OwnershipError, match="VM vm-x in the status of VMNode l"):
        await _runner(provider)._start_and_follow({"vmId": "vm-x"}, lambda: None)


async def test_the_nodes_own_vm_is_shelled_into() -> None:
    provider = MemoryProvider([])
    provider.vms["vm-x"] = MemoryVm(owner_uid="uid-node", namespace="team-b")
    with pytest.raises(ShellReached):
        await _runner(provider)._start_and_follow({"vmId": "vm-x"}, lambda: None)
