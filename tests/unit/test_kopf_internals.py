"""kopf's private internals as the operator uses them: this fails loudly when kopf changes.

The question that matters is kopf's own: "does this object need a finalizer for
its daemons?" (`SpawningRegistry.requires_finalizer`, asked by kopf's processing
before it adds the finalizer). These tests ask it the way kopf does.
"""

from __future__ import annotations

import importlib.metadata
import logging
import tomllib
from pathlib import Path
from typing import Any, cast

import kopf
import pytest
from kopf._cogs.structs.ephemera import AnyMemo, Indices
from kopf._core.intents.causes import SpawningCause

from reef_operator.constants import GROUP, VERSION
from reef_operator.controllers import lieutenant, vmnode
from reef_operator.controllers.kopf_internals import KOPF_VERSION, without_finalizer

REPO_ROOT = Path(__file__).resolve().parents[2]


def _needs_finalizer(registry: kopf.OperatorRegistry, plural: str) -> bool:
    """kopf's verdict for one object of `plural`, asked as kopf's processing asks it."""
    cause = SpawningCause(
        logger=logging.getLogger(__name__), indices=cast(Indices, {}),
        memo=AnyMemo(kopf.Memo()), resource=kopf.Resource(GROUP, VERSION, plural),
        patch=kopf.Patch(),
        body=kopf.Body({"apiVersion": f"{GROUP}/{VERSION}", "kind": "Thing",
                        "metadata": {"name": "a", "namespace": "ns", "uid": "u"}}),
        reset=False)
    return bool(registry._spawning.requires_finalizer(cause=cause))


async def _daemon(**_: Any) -> None:
    """A daemon that never runs: only its registration matters."""


def test_installed_kopf_is_the_version_the_module_was_written_for() -> None:
    assert importlib.metadata.version("kopf") == KOPF_VERSION
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert f"kopf=={KOPF_VERSION}" in pyproject["project"]["dependencies"]


def test_a_daemon_without_finalizer_no_longer_asks_kopf_for_one() -> None:
    registry = kopf.OperatorRegistry()
    kopf.daemon(GROUP, VERSION, "things", registry=registry)(_daemon)
    assert _needs_finalizer(registry, "things")  # kopf's default: a finalizer per daemon

    without_finalizer(_daemon, registry)

    assert not _needs_finalizer(registry, "things")
    [handler] = registry._spawning.get_all_handlers()
    assert handler.fn is _daemon and handler.requires_finalizer is False


def test_other_daemons_keep_their_finalizer() -> None:
    async def other(**_: Any) -> None:
        """Another kind's daemon."""

    registry = kopf.OperatorRegistry()
    kopf.daemon(GROUP, VERSION, "things", registry=registry)(_daemon)
    kopf.daemon(GROUP, VERSION, "others", registry=registry)(other)
    without_finalizer(_daemon, registry)
    assert _needs_finalizer(registry, "others")


def test_an_unregistered_daemon_is_an_error_not_a_silent_no_op() -> None:
    with pytest.raises(LookupError, match="_daemon is not a registered kopf daemon"):
        without_finalizer(_daemon, kopf.OperatorRegistry())


def test_the_operator_registers_lieutenant_loops_without_and_vmnode_loops_with_a_finalizer(
) -> None:
    registry = kopf.get_default_registry()
    fns = {handler.fn for handler in registry._spawning.get_all_handlers()}
    assert {lieutenant.lieutenant_loop, vmnode.vmnode_loop} <= fns
    assert not _needs_finalizer(registry, "lieutenants")
    assert _needs_finalizer(registry, "vmnodes")
