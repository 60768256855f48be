"""What the handlers share for the life of the operator process."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from reef_operator import metrics
from reef_operator.api import reefpolicy
from reef_operator.config import OperatorConfig
from reef_operator.kube.api import KubeApi
from reef_operator.lieutenants.runner import LieutenantRunner
from reef_operator.lieutenants.startgate import StartGate
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
    # For the metrics' gauges (read at scrape time): the lieutenants' runners, and the
    # objects of each kind whose loop is backing off after a failed pass.
    lieutenants: dict[Key, LieutenantRunner] = field(default_factory=dict)
    in_backoff: dict[str, set[Key]] = field(default_factory=dict)
    # Forks waiting on their source: source (namespace, name) -> the forks' names.
    fork_watchers: dict[Key, set[str]] = field(default_factory=dict)
    # ReefPolicies as last seen by the watch: namespace -> name -> body.
    policies: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    # The policies' daemons: their wake-ups, (namespace, name) -> event.
    policy_wakers: dict[Key, asyncio.Event] = field(default_factory=dict)
    # VMPools as last seen by the watch, and their daemons' wake-ups; (namespace, name).
    pools: dict[Key, dict[str, Any]] = field(default_factory=dict)
    pool_wakers: dict[Key, asyncio.Event] = field(default_factory=dict)
    # Agent starts in flight are bounded (REEF_MAX_AGENT_STARTS).
    agent_starts: StartGate = field(init=False)

    def __post_init__(self) -> None:
        self.agent_starts = StartGate(self.config.max_agent_starts)

    @staticmethod
    def post_event(body: Mapping[str, Any], kind: str, reason: str, message: str) -> None:
        post_event(body, kind, reason, message)

    def policy(self, namespace: str) -> Mapping[str, Any] | None:
        """The namespace's ReefPolicy: the oldest when several slipped past admission."""
        return reefpolicy.applied((self.policies.get(namespace) or {}).values())

    def lieutenants_in(self, namespace: str) -> int:
        return sum(1 for key, runner in list(self.lieutenants.items())
                   if key[0] == namespace and not runner.gone)

    def older_lieutenants(self, namespace: str, name: str) -> int:
        def age(key: Key, runner: LieutenantRunner) -> tuple[str, str]:
            return (str(runner.body.get("metadata", {}).get("creationTimestamp", "")), key[1])
        runners = [(key, runner) for key, runner in list(self.lieutenants.items())
                   if key[0] == namespace and not runner.gone]
        mine = next((age(key, r) for key, r in runners if key[1] == name), ("", name))
        return sum(1 for key, runner in runners if key[1] != name and age(key, runner) < mine)

    def lieutenant_body(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        runner = self.lieutenants.get((namespace, name))
        return None if runner is None or runner.gone else runner.body

    def watch_fork_source(self, namespace: str, fork: str, source: str | None) -> None:
        for key, forks in list(self.fork_watchers.items()):
            if key[0] == namespace and key[1] != source:
                forks.discard(fork)
                if not forks:
                    del self.fork_watchers[key]
        if source is not None:
            self.fork_watchers.setdefault((namespace, source), set()).add(fork)

    def wake_forks_of(self, key: Key) -> None:
        """A lieutenant changed: forks waiting on it look again."""
        for fork in list(self.fork_watchers.get(key, ())):
            waker = self.lieutenant_wakers.get((key[0], fork))
            if waker is not None:
                waker.set()

    def running_costs(self, namespace: str) -> list[float]:
        """What the namespace's running tasks have cost so far (their ledgers, in memory)."""
        return [runner.ledger.task_usage.cost for (lt_namespace, _), runner
                in list(self.lieutenants.items())
                if lt_namespace == namespace and runner.ledger.running is not None]

    def histories(self, namespace: str) -> dict[str, list[dict[str, Any]]]:
        """The namespace's lieutenants' status.history as last seen, by lieutenant."""
        return {name: list((runner.body.get("status") or {}).get("history") or [])
                for (lt_namespace, name), runner in list(self.lieutenants.items())
                if lt_namespace == namespace}

    def wake_policies(self, namespace: str) -> None:
        """The namespace's ReefPolicy takes its figures again (it writes them rate-limited)."""
        for (policy_namespace, _), waker in list(self.policy_wakers.items()):
            if policy_namespace == namespace:
                waker.set()

    def pool(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.pools.get((namespace, name))

    def wake_pool(self, key: Key) -> None:
        waker = self.pool_wakers.get(key)
        if waker is not None:
            waker.set()

    def wake_lieutenants(self, namespace: str) -> None:
        for (lt_namespace, _), waker in list(self.lieutenant_wakers.items()):
            if lt_namespace == namespace:
                waker.set()

    def wake_quota_waiters(self, namespace: str) -> None:
        """Nodes waiting for a running-VM slot (oldest first: the fleet gives the slot)."""
        for key in self.fleet.waiting_in(namespace):
            self.wake(key)

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

    def backing_off(self, kind: str, key: Key, failures: int) -> None:
        """Note whether an object's loop is retrying after failures (for the metrics)."""
        keys = self.in_backoff.setdefault(kind, set())
        if failures > 0:
            keys.add(key)
        else:
            keys.discard(key)

    def picture(self) -> metrics.Picture:
        """The current picture for the metrics' gauges, from memory only."""
        picture = metrics.Picture(in_backoff={k: len(v) for k, v in self.in_backoff.items()},
                                  agent_starts={"starting": self.agent_starts.starting,
                                                "waiting": self.agent_starts.waiting})
        for (namespace, _), runner in list(self.lieutenants.items()):
            key = (namespace, runner.phase)
            picture.lieutenant_phases[key] = picture.lieutenant_phases.get(key, 0) + 1
            hold = runner.held()
            if hold is not None:
                reason = (namespace, hold.reason)
                picture.held[reason] = picture.held.get(reason, 0) + 1
            if runner.backlog_bytes is not None:
                picture.backlog_bytes[namespace] = max(picture.backlog_bytes.get(namespace, 0),
                                                       runner.backlog_bytes)
        return picture


_runtime: Runtime | None = None


def install(runtime: Runtime) -> None:
    global _runtime
    _runtime = runtime
    metrics.show_picture(runtime.picture)


def installed() -> Runtime | None:
    """The runtime once startup has made it (for the health and readiness checks)."""
    return _runtime


def current() -> Runtime:
    if _runtime is None:
        raise kopf.PermanentError("the operator runtime is not initialised (startup failed)")
    return _runtime


def post_event(body: Mapping[str, Any], kind: str, reason: str, message: str) -> None:
    """A Kubernetes Event on the object (posted in the background by kopf)."""
    kopf.event(body, type=kind, reason=reason, message=message[:1024])  # type: ignore[arg-type]
