"""What the handlers share for the life of the operator process."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from reef_operator.config import OperatorConfig
from reef_operator.kube.api import KubeApi
from reef_operator.providers.base import Provider
from reef_operator.vmnodes.fleet import Fleet, Key
from reef_operator.vmnodes.profiles import ProfileBook
from reef_operator.vmnodes.reconcile import VmNodeReconciler


@dataclass
class Runtime:
    config: OperatorConfig
    kube: KubeApi
    providers: dict[str, Provider]
    fleet: Fleet
    profiles: ProfileBook
    vmnodes: VmNodeReconciler
    wakers: dict[Key, asyncio.Event] = field(default_factory=dict)
    # Lieutenants: their loops' wake-ups, and the VMNodes they own as last seen.
    lieutenant_wakers: dict[Key, asyncio.Event] = field(default_factory=dict)
    vmnode_bodies: dict[Key, dict[str, Any]] = field(default_factory=dict)

    @staticmethod
    def post_event(body: Mapping[str, Any], kind: str, reason: str, message: str) -> None:
        post_event(body, kind, reason, message)

    def waker(self, key: Key) -> asyncio.Event:
        return self.wakers.setdefault(key, asyncio.Event())

    def wake(self, key: Key) -> None:
        waker = self.wakers.get(key)
        if waker is not None:
            waker.set()

    def wake_subtree(self, namespace: str, name: str) -> None:
        for node in self.fleet.descendants(namespace, name):
            self.wake((node.namespace, node.name))

    def wake_profile_users(self, profile: str) -> None:
        for key, node in self.fleet.nodes.items():
            if (node.profile or self.config.default_profile) == profile:
                self.wake(key)


_runtime: Runtime | None = None


def install(runtime: Runtime) -> None:
    global _runtime
    _runtime = runtime


def current() -> Runtime:
    if _runtime is None:
        raise kopf.PermanentError("the operator runtime is not initialised (startup failed)")
    return _runtime


def post_event(body: Mapping[str, Any], kind: str, reason: str, message: str) -> None:
    """A Kubernetes Event on the object (posted in the background by kopf)."""
    kopf.event(body, type=kind, reason=reason, message=message[:1024])  # type: ignore[arg-type]
