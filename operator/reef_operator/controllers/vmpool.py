"""kopf handlers for VMPool: the watch keeps each pool in memory; a daemon per pool keeps
its warm members (pools/plan.py decides, this writes) and its status.

The daemon is woken when the pool or one of its members changes (controllers/vmnode.py),
and looks again every RECHECK seconds (a member's heartbeat ages without an event). No
finalizer: the members are owned by the pool, so deleting it deletes them (and each
member's own finalizer releases its VM).
"""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import kopf

from reef_operator.api import reefpolicy
from reef_operator.constants import GROUP, LABEL_FROM_POOL, VERSION
from reef_operator.controllers import daemon, runtime
from reef_operator.controllers.kopf_internals import without_finalizer
from reef_operator.kube.conditions import (
    merge_conditions,
    now_iso,
    summary,
    without_transition_times,
)
from reef_operator.pools.members import members_of
from reef_operator.pools.plan import Plan, member_body, member_name, plan

KIND = "VMPool"
PLURAL = "vmpools"
RECHECK = 30.0


@kopf.on.event(GROUP, VERSION, PLURAL)
async def vmpool_changed(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
    rt = runtime.current()
    key = (body.metadata.namespace or "", body.metadata.name or "")
    if event.get("type") == "DELETED":
        rt.pools.pop(key, None)
        waker = rt.pool_wakers.pop(key, None)
        if waker is not None:
            waker.set()           # its loop ends (no finalizer holds the object for it)
        return
    rt.pools[key] = dict(body)
    rt.wake_pool(key)


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=5.0)
async def vmpool_loop(body: kopf.Body, stopped: kopf.DaemonStopped, logger: kopf.Logger,
                      **_: Any) -> None:
    rt = runtime.current()
    key = (body.metadata.namespace or "", body.metadata.name or "")
    await daemon.run_keyed(rt.pool_wakers, key, lambda waker: _PoolPasses(rt, key, waker),
                           stopped=stopped, logger=logger, backing_off=rt.backing_off)


without_finalizer(vmpool_loop)


class _PoolPasses(daemon.Passes):
    """A pool's passes: replace the unhealthy members, boot the missing ones, count."""

    kind = KIND

    def __init__(self, rt: runtime.Runtime, key: tuple[str, str],
                 waker: asyncio.Event) -> None:
        self.rt, self.key, self.waker = rt, key, waker

    @property
    def gone(self) -> bool:
        return self.rt.pool_wakers.get(self.key) is not self.waker

    async def run(self) -> float:
        namespace, name = self.key
        pool = self.rt.pools.get(self.key)
        if pool is None:
            return RECHECK                # the watch has not handed it over yet
        spec = pool.get("spec") or {}
        members = members_of(name, namespace, list(self.rt.vmnode_bodies.values()),
                             datetime.datetime.now(datetime.UTC))
        decided = plan(spec, members,
                       profile_exists=self.rt.profiles.get(
                           (spec.get("profileRef") or {}).get("name", "")) is not None,
                       room=self._room(namespace))
        for member in decided.replace:
            await self.rt.kube.delete_object("vmnodes", namespace, member)
            runtime.post_event(pool, "Normal", "MemberReplaced",
                               f"member {member} is unhealthy (see its conditions): deleted, "
                               "a new one boots")
        for _ in range(decided.boot):
            await self._boot_member(pool)
        await self._write_status(pool, decided)
        return RECHECK

    def _room(self, namespace: str) -> int | None:
        """Running VMs the namespace's ReefPolicy still allows (None: no limit); nodes
        waiting for a slot go first."""
        limit = reefpolicy.limits(self.rt.policy(namespace)).get("maxRunningVMs")
        if limit is None:
            return None
        return int(limit) - self.rt.fleet.running(namespace) - \
            len(self.rt.fleet.waiting_in(namespace))

    async def _boot_member(self, pool: dict[str, Any]) -> None:
        namespace, pool_name = self.key
        name = member_name(pool_name)
        spec = member_body(pool, name, {})["spec"]
        body = member_body(pool, name, self.rt.vmnodes.metadata_for_new(namespace, name, spec))
        if await self.rt.kube.create_object("vmnodes", namespace, body):
            # Counted at once, so a pass woken before the watch event boots no second one.
            self.rt.vmnode_bodies.setdefault((namespace, name), body)

    async def _write_status(self, pool: dict[str, Any], decided: Plan) -> None:
        namespace, name = self.key
        claimed = sum(1 for (ns, _), node in list(self.rt.vmnode_bodies.items())
                      if ns == namespace and
                      ((node.get("metadata") or {}).get("labels") or {}).get(
                          LABEL_FROM_POOL) == name and
                      not (node.get("metadata") or {}).get("deletionTimestamp"))
        generation = int((pool.get("metadata") or {}).get("generation", 0))
        status = pool.get("status") or {}
        verdict = summary(KIND, decided.reason, decided.message,
                          ready=decided.reason == "Filled",
                          reconciling=decided.reason in ("Filling", "QuotaExceeded"),
                          stalled=decided.reason in ("ProfileNotFound", "SizeInvalid"))
        wanted = {"observedGeneration": generation, "ready": decided.ready,
                  "size": decided.size, "claimed": claimed,
                  "conditions": merge_conditions(status.get("conditions"), verdict,
                                                 generation, now_iso())}
        if _without_times(wanted) != _without_times(status):
            await self.rt.kube.patch_status(PLURAL, namespace, name, wanted)
            self.rt.pools[self.key] = {**pool, "status": wanted}


def _without_times(status: dict[str, Any]) -> dict[str, Any]:
    keys = ("observedGeneration", "ready", "size", "claimed")
    return {**{k: status.get(k) for k in keys},
            "conditions": without_transition_times(status.get("conditions"))}
