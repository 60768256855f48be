"""kopf handlers for ReefPolicy: the watch keeps each namespace's policy in memory and wakes
the namespace's lieutenants and VMNodes when it changes (their holds read its defaults,
the nodes its limits: a node waiting for a slot or refused by an older limit may go on);
a daemon per policy writes what the namespace uses of it.

`status.used` is taken from memory (the lieutenants' runners, the fleet's running VMs)
and, for the day's cost, from the namespace's TaskRecords: the cost of the tasks that
completed on the current UTC day, plus what the running tasks have cost so far. Records
are objects, so the figure survives an operator restart; a running task counts on the
day it completes. Only the day's records are listed (their label
`reef.vers.sh/completed-day`), and since records are whole objects (answers up to 256 KiB)
at most every LIST_EVERY seconds; a task finished since is counted from its lieutenant's
history entry meanwhile. A record deleted by its lieutenant's retention the same day
takes its cost out of the figure (keep `taskRecords.maxRecords` above a day's tasks).
The status is written at most every WRITE_EVERY seconds and only when a figure or a
condition changes (the time of the figures alone is no change).
"""

from __future__ import annotations

import asyncio
import datetime
import time
from typing import Any

import kopf

from reef_operator.api import reefpolicy
from reef_operator.constants import GROUP, LABEL_COMPLETED_DAY, VERSION
from reef_operator.controllers import daemon, runtime
from reef_operator.controllers.kopf_internals import without_finalizer
from reef_operator.policies.usage import cost_on, day_of, status_patch, used

KIND = "ReefPolicy"
WRITE_EVERY = 5.0      # seconds between two status writes of one policy, at least
RECHECK = 60.0         # the running tasks' cost and the UTC day move without any event
LIST_EVERY = 60.0      # seconds between two listings of the namespace's TaskRecords
WATCH_FIRST = 1.0      # a daemon that starts before the watch event is handled waits this


@kopf.on.event(GROUP, VERSION, "reefpolicies")
async def reefpolicy_changed(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
    rt = runtime.current()
    namespace, name = body.metadata.namespace or "", body.metadata.name or ""
    known = rt.policies.setdefault(namespace, {})
    before = known.get(name)
    if event.get("type") == "DELETED":
        known.pop(name, None)
        waker = rt.policy_wakers.pop((namespace, name), None)
        if waker is not None:
            waker.set()           # its loop ends (no finalizer holds the object for it)
    else:
        known[name] = dict(body)
    if not known:
        rt.policies.pop(namespace, None)
    status_only = before is not None and event.get("type") != "DELETED" and \
        before.get("metadata", {}).get("generation") == body.metadata.get("generation")
    if not status_only or reefpolicy.limits(body).get("costPerDayUSD") is not None:
        rt.wake_lieutenants(namespace)   # their holds read the day's cost (status.used)
    if status_only:
        return   # only its status moved: the nodes and the other policies are unaffected
    for key in list(rt.fleet.nodes):
        if key[0] == namespace:
            rt.wake(key)
    rt.wake_policies(namespace)   # a duplicate's conditions depend on the others


@kopf.daemon(GROUP, VERSION, "reefpolicies", cancellation_timeout=5.0)
async def reefpolicy_loop(body: kopf.Body, stopped: kopf.DaemonStopped, logger: kopf.Logger,
                          **_: Any) -> None:
    rt = runtime.current()
    key = (body.metadata.namespace or "", body.metadata.name or "")
    await daemon.run_keyed(rt.policy_wakers, key, lambda waker: _PolicyPasses(rt, body, waker),
                           stopped=stopped, logger=logger, backing_off=rt.backing_off)


# Nothing to do when a policy goes: a finalizer would be two writes per policy for nothing
# (and a permission to patch policies the operator otherwise never needs).
without_finalizer(reefpolicy_loop)


class _PolicyPasses(daemon.Passes):
    """A policy's passes: take the namespace's figures, write them when they changed."""

    kind = KIND

    def __init__(self, rt: runtime.Runtime, body: kopf.Body, waker: asyncio.Event) -> None:
        self.rt, self.body, self.waker = rt, body, waker
        self.written_at = -WRITE_EVERY
        self.records: list[dict[str, Any]] = []
        self.listed_at = -LIST_EVERY

    @property
    def gone(self) -> bool:
        key = (self.body.metadata.namespace or "", self.body.metadata.name or "")
        return self.rt.policy_wakers.get(key) is not self.waker

    async def run(self) -> float:
        wait = self.written_at + WRITE_EVERY - time.monotonic()
        if wait > 0:
            return wait                   # woken too soon: the figures are taken later
        namespace, name = self.body.metadata.namespace or "", self.body.metadata.name or ""
        day = day_of(datetime.datetime.now(datetime.UTC))
        if time.monotonic() - self.listed_at >= LIST_EVERY:
            self.records = await self.rt.kube.list_in(
                "taskrecords", namespace, label_selector=f"{LABEL_COMPLETED_DAY}={day}")
            self.listed_at = time.monotonic()
        cost = cost_on(day, self.records, self.rt.histories(namespace),
                       self.rt.running_costs(namespace))
        figures = used(self.rt.lieutenants_in(namespace), self.rt.fleet.running(namespace),
                       day, cost)
        active = self.rt.policy(namespace)
        if active is None:
            return WATCH_FIRST            # the watch has not handed it over yet
        patch = status_patch(dict(self.body.status), figures,
                             active.get("metadata", {}).get("name"),
                             int(self.body.metadata.get("generation", 0)), name)
        if patch is not None:
            await self.rt.kube.patch_status("reefpolicies", namespace, name, patch)
            self.written_at = time.monotonic()
        return RECHECK
