"""What a lieutenant's runner uses of the operator process, as a narrow interface.

The controllers' Runtime satisfies it; lieutenants/ never imports controllers/, and a
test can hand the runner's rooms something smaller.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any, Protocol

from reef_operator.kube.api import KubeApi
from reef_operator.lieutenants.records import RecordApi
from reef_operator.lieutenants.startgate import StartGate
from reef_operator.providers.base import Provider

NodeKey = tuple[str, str]  # (namespace, name)


class ModelDefaults(Protocol):
    """The model a lieutenant uses when its spec names none."""

    @property
    def default_model_provider(self) -> str: ...

    @property
    def default_model_id(self) -> str: ...


class RunnerSettings(ModelDefaults, Protocol):
    """The operator's settings a lieutenant's runner reads."""

    @property
    def delegate_apiserver(self) -> str | None: ...

    @property
    def pi_package(self) -> Path | None: ...


class NodeMetadata(Protocol):
    def metadata_for_new(self, namespace: str, name: str,
                         spec: Mapping[str, Any]) -> dict[str, Any]:
        """Metadata for a VMNode the operator creates itself (labels, finalizer, ...)."""
        ...


class StatusPatcher(RecordApi, Protocol):
    """Status patches, and the TaskRecords written with them."""

    async def patch_status(self, plural: str, namespace: str, name: str,
                           status: dict[str, Any]) -> None: ...


class StatusHost(Protocol):
    """What writing a lieutenant's status uses: the patch and the records, its VMNode,
    Events."""

    @property
    def kube(self) -> StatusPatcher: ...

    @property
    def vmnode_bodies(self) -> Mapping[NodeKey, Mapping[str, Any]]: ...

    def post_event(self, body: Mapping[str, Any], kind: str, reason: str,
                   message: str) -> None:
        """A Kubernetes Event on the object."""
        ...


class LieutenantRuntime(StatusHost, Protocol):
    @property
    def config(self) -> RunnerSettings: ...

    @property
    def kube(self) -> KubeApi: ...

    @property
    def providers(self) -> Mapping[str, Provider]: ...

    @property
    def vmnodes(self) -> NodeMetadata: ...

    @property
    def vmnode_bodies(self) -> MutableMapping[NodeKey, dict[str, Any]]:
        """The VMNodes lieutenants own, as last seen by the watch."""
        ...

    @property
    def agent_starts(self) -> StartGate: ...

    def policy(self, namespace: str) -> Mapping[str, Any] | None:
        """The namespace's ReefPolicy as last seen by the watch, if it has one."""
        ...

    def lieutenant_body(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        """A lieutenant of this operator as the watch last saw it (None: no such)."""
        ...

    def watch_fork_source(self, namespace: str, fork: str, source: str | None) -> None:
        """Wake lieutenant `fork` when lieutenant `source` changes (None: no longer)."""
        ...

    def older_lieutenants(self, namespace: str, name: str) -> int:
        """Lieutenants of the namespace created before this one (then by name)."""
        ...
