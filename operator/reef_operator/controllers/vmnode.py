"""kopf handlers for VMNode: the watch keeps the fleet current, a daemon per node reconciles."""

from __future__ import annotations

import contextlib
import functools
import time
from typing import Any

import kopf

from reef_operator import fairshare, metrics
from reef_operator.constants import (
    ANNOTATION_CHECKPOINT_COMMITS,
    ANNOTATION_CLAIMED_BY,
    ANNOTATION_VM_REQUESTED,
    GROUP,
    LABEL_POOL,
    VERSION,
)
from reef_operator.controllers import daemon, runtime
from reef_operator.kube.conditions import Condition, merge_conditions, now_iso
from reef_operator.lieutenants.checkpoints import kept_commits
from reef_operator.providers.base import Provider, VmOwner, VmRequest
from reef_operator.providers.errors import NotFound, ProviderError
from reef_operator.retry import RetryLater, backoff
from reef_operator.vmnodes.ownership import judge


@kopf.on.event(GROUP, VERSION, "vmnodes")
async def vmnode_changed(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
    rt = runtime.current()
    key = (body.metadata.namespace or "", body.metadata.name or "")
    occupied = rt.fleet.occupies(key)
    if event.get("type") == "DELETED":
        # A fork's node under it leaves the tree's gone branch: its lieutenant drops the
        # parentRef (lieutenants/node.py).
        for child in rt.fleet.children(*key):
            _wake_lieutenant(rt, (child.namespace, child.name))
        rt.fleet.remove(*key)
        rt.wakers.pop(key, None)
        rt.vmnode_bodies.pop(key, None)
        rt.vmnodes.forget(*key)
        _wake_lieutenant(rt, key)
    else:
        rt.vmnode_bodies[key] = dict(body)
        _wake_lieutenant(rt, key)
        before = rt.fleet.nodes.get(key)
        after = rt.fleet.upsert(body)
        rt.wake(key)
        if before is None or (before.state, before.parent) != (after.state, after.parent):
            rt.wake_subtree(*key)
    rt.wake_policies(key[0])            # its runningVMs may have changed (rate-limited)
    pool = (body.metadata.labels or {}).get(LABEL_POOL)
    if pool:
        rt.wake_pool((key[0], pool))    # one of its members changed: count again
    if occupied and not rt.fleet.occupies(key):
        rt.wake_quota_waiters(key[0])   # a running VM paused or went: room for another


def _wake_lieutenant(rt: runtime.Runtime, key: tuple[str, str]) -> None:
    waker = rt.lieutenant_wakers.get(key)
    if waker is not None:
        waker.set()


@kopf.daemon(GROUP, VERSION, "vmnodes", cancellation_timeout=10.0)
async def vmnode_loop(body: kopf.Body, stopped: kopf.DaemonStopped, logger: kopf.Logger,
                      **_: Any) -> None:
    """Reconcile until the object goes away: after each change, and when a pass asks to."""
    rt = runtime.current()
    key = (body.metadata.namespace or "", body.metadata.name or "")
    try:
        with fairshare.acting_for(key[0]):
            await daemon.run_passes(_VmNodePasses(rt, body, logger), waker=rt.waker(key),
                                    stopped=stopped, logger=logger,
                                    backing_off=functools.partial(rt.backing_off, "VMNode", key))
    finally:
        rt.backing_off("VMNode", key, 0)


class _VmNodePasses(daemon.Passes):
    """A VM node's passes: the reconciler's; RetryLater means its status already says why."""

    kind = "VMNode"

    def __init__(self, rt: runtime.Runtime, body: kopf.Body, logger: kopf.Logger) -> None:
        self.rt, self.body, self.logger = rt, body, logger

    async def run(self) -> float:
        return await self.rt.vmnodes.reconcile(self.body)

    def classify(self, error: Exception) -> daemon.Failure:
        return "retry" if isinstance(error, RetryLater) else "error"

    async def report(self, error: Exception, failure: daemon.Failure, failures: int,
                     delay: float) -> None:
        self.logger.info("retrying in %.1fs: %s", delay, str(error).splitlines()[0])


@kopf.on.delete(GROUP, VERSION, "vmnodes")
async def vmnode_deleted(body: kopf.Body, retry: int, **_: Any) -> None:
    """Release the VM before the finalizer lets the object go (unless deletionPolicy Orphan)."""
    started = time.monotonic()
    try:
        with fairshare.acting_for(body.metadata.namespace or ""):
            await _release_vm(body, retry)
    except kopf.TemporaryError:
        metrics.reconciled("VMNode", "retry", time.monotonic() - started)
        raise
    except Exception:
        metrics.reconciled("VMNode", "error", time.monotonic() - started)
        raise
    metrics.reconciled("VMNode", "success", time.monotonic() - started)


async def _release_vm(body: kopf.Body, retry: int) -> None:
    rt = runtime.current()
    spec, status, meta = body.spec, body.status, body.metadata
    vm_id = status.get("vmId") or spec.get("vmId")
    if spec.get("deletionPolicy") == "Orphan":
        if vm_id:
            runtime.post_event(body, "Normal", "Orphaned", f"left VM {vm_id} running")
        return
    provider = rt.providers.get(meta.labels.get(f"{GROUP}/provider", "vers"))
    if provider is None:
        return
    step = f"VM {vm_id}" if vm_id else "its VM"
    try:
        if not vm_id and ANNOTATION_VM_REQUESTED in meta.annotations:
            vm_id = await provider.find(VmRequest(owner_uid=meta.uid or "", name=meta.name or "",
                                                  namespace=meta.namespace or ""))
        if vm_id:
            observed = await provider.observe(vm_id)
            # Only this node's VM is released: spec.vmId may name anyone's (no adoption
            # here: a VM this node adopted carries its labels by now).
            verdict = judge(vm_id, observed.owner, meta.namespace or "", meta.uid or "", ())
            if observed.state != "gone" and verdict.outcome != "mine":
                if ANNOTATION_CLAIMED_BY in meta.annotations:
                    return   # a pool member whose VM was handed to its claimer
                runtime.post_event(body, "Warning", "VMOwnedElsewhere",
                                   f"released nothing: {verdict.message}")
                return
            await provider.delete(vm_id)
            runtime.post_event(body, "Normal", "Deleted", f"deleted VM {vm_id}")
        step = "the lieutenant's checkpoint commits"
        await _delete_checkpoint_commits(body, provider)
    except (ProviderError, RetryLater, OSError) as error:
        delay = backoff(retry + 1, cap=60)
        message = f"cannot delete {step} yet ({error}); the finalizer holds until it is gone"
        conditions = merge_conditions(status.get("conditions"), [
            Condition("VMNode", "Ready", False, "DeletionBlocked", message)],
            meta.get("generation", 0), now_iso())
        with contextlib.suppress(Exception):
            await rt.kube.patch_status("vmnodes", meta.namespace or "", meta.name or "",
                                       {"conditions": conditions})
        runtime.post_event(body, "Warning", "DeletionBlocked", message)
        raise kopf.TemporaryError(message, delay=delay) from error


async def _delete_checkpoint_commits(body: kopf.Body, provider: Provider) -> None:
    """The commits of the lieutenant's checkpoints, once its VMNode goes (the lieutenant
    is deleted). A commit a fork's VM still uses is refused by the platform: the error
    holds the finalizer and the deletion is retried, so none is lost track of. Only a
    snapshot the platform says this node's VM was taken of is deleted (the annotation is
    writable by whoever may edit the node)."""
    meta = body.metadata
    mine = VmOwner(meta.namespace or "", meta.uid or "")
    for commit in kept_commits(meta.annotations.get(ANNOTATION_CHECKPOINT_COMMITS)):
        try:
            if await provider.snapshot_owner(commit) != mine:
                continue
            await provider.delete_snapshot(commit)
        except NotFound:
            continue            # gone already (an earlier attempt)
        runtime.post_event(body, "Normal", "CheckpointDeleted",
                           f"deleted checkpoint commit {commit}")
