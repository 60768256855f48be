"""One reconciliation of a VM node: observe the VM, compare with the spec, act, report.

Level-triggered and safe to re-run at any moment: every pass starts from the
object as it is and the VM as the provider reports it. The only state carried
between passes is what is written on the object (status, the vm-requested-at
annotation), so a killed operator picks up exactly where it stopped.

Never two VMs for one node: the vm-requested-at annotation is written before a
create is sent (a lieutenant writes it when it creates its node), the VM carries
the node's uid as a label, and while status has no VM id the VM is looked up
before any new create (unless this very process marked the request and has sent
nothing for it yet). So the id is recorded with the pass's status write, not in
a write of its own: a crash before that write is recovered by the lookup.

Writes are few on purpose (they are what an apiserver shared by thousands of
objects pays for): one status write per pass at most, a progress write only
before a long step nothing has reported yet, and the heartbeat's time only every
half stale-after interval (the liveness itself is kept in memory between those).
"""

from __future__ import annotations

import copy
import datetime
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from reef_operator.api import reefpolicy
from reef_operator.constants import (
    ANNOTATION_CLAIMED_BY,
    ANNOTATION_VM_REQUESTED,
    FINALIZER,
    LABEL_FROM_POOL,
)
from reef_operator.kube.annotations import reconciliation_paused
from reef_operator.kube.conditions import (
    Condition,
    find_condition,
    merge_conditions,
    now_iso,
    parse_time,
    without_transition_times,
)
from reef_operator.providers.base import Provider, Shell, VmOwner, VmRequest
from reef_operator.providers.errors import HostKeyMismatch, ProviderError
from reef_operator.retry import RetryLater
from reef_operator.vmnodes import boot as boots
from reef_operator.vmnodes import heartbeat
from reef_operator.vmnodes.checkpoints import CheckpointPolicy
from reef_operator.vmnodes.fleet import Fleet, LineageError
from reef_operator.vmnodes.heartbeat import HeartbeatPolicy
from reef_operator.vmnodes.lineage import lineage_labels, lineage_patch
from reef_operator.vmnodes.ownership import judge
from reef_operator.vmnodes.pooling import Outcome, PoolClaims, owner_lieutenant, wants_pool
from reef_operator.vmnodes.profiles import ProfileBook, ProfileView

logger = logging.getLogger(__name__)

PLURAL = "vmnodes"
IDLE = 600.0          # nothing to do: sleep until woken by a change
BOOT_POLL = 1.0

EventFn = Callable[[Mapping[str, Any], str, str, str], None]


@dataclass
class Pass:
    """What one reconciliation gathers before writing status once."""

    body: Mapping[str, Any]
    status: dict[str, Any]
    conditions: list[Condition] = field(default_factory=list)

    @property
    def meta(self) -> Mapping[str, Any]:
        return cast(Mapping[str, Any], self.body.get("metadata", {}))

    @property
    def spec(self) -> Mapping[str, Any]:
        return cast(Mapping[str, Any], self.body.get("spec") or {})

    @property
    def heartbeat(self) -> HeartbeatPolicy:
        return HeartbeatPolicy.from_spec(self.spec)

    @property
    def checkpoints(self) -> CheckpointPolicy | None:
        return CheckpointPolicy.from_spec(self.spec)

    @property
    def namespace(self) -> str:
        return str(self.meta.get("namespace", ""))

    @property
    def name(self) -> str:
        return str(self.meta.get("name", ""))

    def condition(self, type_: str, status: bool | None, reason: str, message: str = "") -> None:
        self.conditions.append(Condition("VMNode", type_, status, reason, message))


class VmNodeReconciler:
    def __init__(self, kube: Any, providers: Mapping[str, Provider], fleet: Fleet,
                 profiles: ProfileBook, default_profile: str, post_event: EventFn,
                 secret_reader: Callable[[str, str], Awaitable[Mapping[str, Any] | None]],
                 disabled: Mapping[str, str] | None = None,
                 adoption_namespaces: Collection[str] = ()) -> None:
        self.kube = kube
        self.adoption_namespaces = adoption_namespaces
        self.providers = providers
        # Providers the configuration turns off, with why (the node's Stalled message).
        self.disabled = disabled or {}
        self.fleet = fleet
        self.profiles = profiles
        self.default_profile = default_profile
        self.post_event = post_event
        self.read_secret = secret_reader
        self.heartbeats = heartbeat.Heartbeats()
        # VM requests this process marked (namespace, name, vm-requested-at) and has not
        # sent a create for yet: no create can be in flight for them, so the first create
        # needs no lookup (a list of every VM: O(N) per node, O(N²) for a fleet). After a
        # restart the set is empty and every pending request is looked up first.
        self.fresh_requests: set[tuple[str, str, str]] = set()
        # Nodes whose current pass ended waiting for a running-VM slot.
        self._waiting: set[tuple[str, str]] = set()
        # The namespace's ReefPolicy as the watch last saw it (set by the runtime).
        self.policy: Callable[[str], Mapping[str, Any] | None] = lambda namespace: None
        # Warm VMs of the namespace's VMPools (the runtime gives it the watch's picture).
        self.pool_claims = PoolClaims(kube, {}, lambda namespace, name: None)

    def forget(self, namespace: str, name: str) -> None:
        """The node is gone: drop what memory holds for it."""
        self.heartbeats.forget((namespace, name))
        self.pool_claims.forget(namespace, name)
        self.fresh_requests = {r for r in self.fresh_requests if r[:2] != (namespace, name)}

    # -- entry point --------------------------------------------------------------------
    async def reconcile(self, body: Mapping[str, Any]) -> float:
        """One pass; returns seconds until the next pass is due (unless woken earlier)."""
        try:
            return await self._pass(body)
        finally:
            meta = body.get("metadata", {})
            key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
            # Only a node whose pass ended waiting for a slot holds its place in the line
            # (one stuck on something else must not keep younger ones waiting).
            if key in self._waiting:
                self._waiting.discard(key)
            else:
                self.fleet.stop_waiting(*key)

    async def _pass(self, body: Mapping[str, Any]) -> float:
        meta = body.get("metadata", {})
        if meta.get("deletionTimestamp") or reconciliation_paused(meta):
            return IDLE
        if ANNOTATION_CLAIMED_BY in (meta.get("annotations") or {}):
            await self.pool_claims.settle_member(body)   # a pool member, taken by a claim
            return IDLE
        current = copy.deepcopy(dict(body.get("status") or {}))
        work = Pass(body, copy.deepcopy(current))
        try:
            delay = await self._reconcile(work)
        except RetryLater:
            await self._write_status(work, current)
            raise
        except ProviderError as error:
            self._summarize(work, "PlatformError", str(error), reconciling=True)
            self._warn_once(work, current, "PlatformError", str(error))
            await self._write_status(work, current)
            raise RetryLater(str(error)) from error
        await self._write_status(work, current)
        return delay

    async def _reconcile(self, work: Pass) -> float:
        spec, status = work.spec, work.status
        profile = self._profile(work, status)
        if profile is None:
            return IDLE
        try:
            lineage = self.fleet.lineage(work.namespace, work.name)
        except LineageError as error:
            self._invalid(work, error.reason, str(error))
            return IDLE
        metadata_patch = lineage_patch(work.meta, spec, profile, lineage.root,
                                       lineage.ancestors[0].uid if lineage.ancestors else None)
        status["lineage"] = {"root": lineage.root, "depth": lineage.depth}
        status["dna"] = profile.dna_for(spec)

        provider = self.providers[profile.provider]
        desired = self.fleet.effective_state(work.namespace, work.name)
        # A VM this process handed over from a pool, which the body may not show yet.
        status.update(self.pool_claims.handed(work.namespace, work.name, status))
        self._pooled(work)
        vm_id = status.get("vmId") or spec.get("vmId")
        if spec.get("vmId") and status.get("vmId") and spec["vmId"] != status["vmId"]:
            self._invalid(work, "VmIdChanged", f"spec.vmId changed from {status['vmId']} to "
                          f"{spec['vmId']}; vmId cannot change once set")
            return IDLE
        if not vm_id:
            if desired == "Destroyed":
                await self._forget_request(work)
                return self._destroyed(work)
            refusal = await self._commit_refusal(work, provider)
            if refusal:
                self._invalid(work, "CommitNotAllowed", refusal)
                return IDLE
            taken = await self._from_pool(work, provider, profile)
            if taken is not None and taken.kind == "again":
                return BOOT_POLL
            if taken is not None and taken.kind == "claimed":
                vm_id = taken.vm_id
            else:
                if not self._policy_allows(work, profile):
                    return IDLE
                vm_id = await self._create(work, provider, profile, metadata_patch)
                metadata_patch = {}
        if metadata_patch:
            await self.kube.patch_metadata(PLURAL, work.namespace, work.name, metadata_patch)

        observed = await provider.observe(vm_id)
        if observed.state == "gone":
            status["vmId"] = vm_id
            if desired == "Destroyed":
                await self._forget_request(work)
            return self._vm_gone(work, desired, adopted=bool(spec.get("vmId")))
        verdict = judge(vm_id, observed.owner, work.namespace, str(work.meta.get("uid", "")),
                        self.adoption_namespaces)
        if verdict.outcome == "refuse":
            # Nothing of the VM is recorded: status.vmId would lend it to a lieutenant.
            for key in ("vmId", "vmState", "address", "hostKeyFingerprint", "boot"):
                status.pop(key, None)
            self._invalid(work, "VMOwnedElsewhere", verdict.message)
            return IDLE
        if verdict.outcome == "adopt":
            await provider.claim(vm_id, self._request(work, profile, None))
        status["vmId"] = vm_id
        status["vmState"] = observed.state
        if observed.address:
            status["address"] = observed.address
        if spec.get("vmId") and not work.body.get("status", {}).get("vmId"):
            self._event(work, "Normal", "Adopted", f"adopted existing VM {vm_id}")

        if desired == "Destroyed":
            await provider.delete(vm_id)
            self._event(work, "Normal", "Destroyed", f"deleted VM {vm_id}; object kept")
            await self._forget_request(work)
            for key in ("vmId", "vmState", "address", "hostKeyFingerprint", "boot",
                        "lastHeartbeatTime"):
                status.pop(key, None)
            return self._destroyed(work)
        if observed.state in ("sleeping", "dead"):
            reason = "VMSleeping" if observed.state == "sleeping" else "VMDead"
            text = f"the platform reports VM {vm_id} as {observed.state}"
            work.condition("Alive", False, reason, text)
            self._summarize(work, reason, text, stalled=True)
            self._warn_once(work, work.body.get("status") or {}, reason, text)
            return work.heartbeat.interval if observed.state == "sleeping" else IDLE
        if observed.state == "booting":
            self._summarize(work, "Booting", f"VM {vm_id} is booting", reconciling=True)
            return BOOT_POLL

        if desired == "Paused":
            if observed.state != "paused":
                await provider.pause(vm_id)
                status["vmState"] = "paused"
                why = "" if work.spec.get("state") == "Paused" else " (an ancestor is paused)"
                self._event(work, "Normal", "Paused", f"paused VM {vm_id}{why}")
            work.condition("Paused", True, "Paused", "the VM is frozen with its memory intact")
            self._summarize(work, "Paused", "the VM is paused" + (
                "" if work.spec.get("state") == "Paused" else " (an ancestor is paused)"))
            return IDLE
        if observed.state == "paused":
            if not self._policy_allows(work, profile):
                return IDLE
            await provider.resume(vm_id)
            status["vmState"] = "running"
            self._event(work, "Normal", "Resumed", f"resumed VM {vm_id}")
        work.condition("Paused", False, "Running", "")
        return await self._running(work, provider, profile, vm_id)

    # -- steps --------------------------------------------------------------------------
    def _profile_name(self, namespace: str, spec: Mapping[str, Any]) -> str:
        """The node's profileRef, else its pool's profile, else the operator's default."""
        pool = (spec.get("poolRef") or {}).get("name")
        return str((spec.get("profileRef") or {}).get("name")
                   or (pool and self.pool_claims.profile_of(namespace, pool))
                   or self.default_profile)

    def _profile(self, work: Pass, status: dict[str, Any]) -> ProfileView | None:
        name = self._profile_name(work.namespace, work.spec)
        profile = self.profiles.get(name)
        if profile is None:
            self._invalid(work, "ProfileNotFound",
                          f"BootProfile {name!r} does not exist; create it or set "
                          "spec.profileRef.name to an existing profile (kubectl get bootprofiles)")
            return None
        if profile.problems:
            self._invalid(work, "ProfileInvalid",
                          f"BootProfile {name!r} is invalid: {'; '.join(profile.problems)}")
            return None
        if profile.provider in self.disabled:
            self._invalid(work, "ProviderDisabled", f"BootProfile {name!r} uses provider "
                          f"{profile.provider}: {self.disabled[profile.provider]}")
            return None
        if profile.provider not in self.providers:
            self._invalid(work, "ProviderUnavailable",
                          f"BootProfile {name!r} uses provider {profile.provider}, which this "
                          "operator is not configured for (for Vers: set VERS_API_KEY)")
            return None
        return profile

    async def _from_pool(self, work: Pass, provider: Provider,
                         profile: ProfileView) -> Outcome | None:
        """A warm VM from the node's VMPool (vmnodes/pooling.py), said in the Pooled
        condition and an Event on the node and its lieutenant; None: the node does not
        claim (no poolRef, a VM of its own asked for already, or a profile the namespace's
        ReefPolicy refuses, which the cold path reports)."""
        pool = wants_pool(work.body)
        resources = work.spec.get("resources") or profile.resources
        if not pool or reefpolicy.profile_problems(self.policy(work.namespace), profile.name,
                                                   resources):
            return None
        outcome = await self.pool_claims.take(work.body, pool, profile.name, provider,
                                              self._request(work, profile, None))
        if outcome.kind == "again":
            self._summarize(work, "Booting", outcome.message, reconciling=True)
            return outcome
        claimed = outcome.kind == "claimed"
        reason = "Claimed" if claimed else "PoolEmpty"
        work.status.update(outcome.status or {})
        self._pooled(work, cold=not claimed)
        if find_condition(work.body, "Pooled").get("reason") != reason:
            for body in (work.body, owner_lieutenant(work.body)):
                if body is not None:
                    self.post_event(body, "Normal", reason, outcome.message)
        return outcome

    def _pooled(self, work: Pass, cold: bool = False) -> None:
        """The Pooled condition, on every pass of a node with a poolRef that has its VM (a
        pass may start from a body older than the one that wrote it): taken warm when the
        node is labelled from the pool (or was just handed the VM), else its own. The
        Events carry the details of the moment."""
        pool = (work.spec.get("poolRef") or {}).get("name")
        if not pool:
            return
        if self.pool_claims.took(work.namespace, work.name) or \
                LABEL_FROM_POOL in (work.meta.get("labels") or {}):
            work.condition("Pooled", True, "Claimed",
                           f"the VM was taken warm from VMPool {pool!r}")
        elif cold or work.status.get("vmId") or \
                ANNOTATION_VM_REQUESTED in (work.meta.get("annotations") or {}):
            work.condition("Pooled", False, "PoolEmpty",
                           f"VMPool {pool!r} had no ready member of the node's profile when "
                           "it needed a VM; it booted one of its own")

    def _policy_allows(self, work: Pass, profile: ProfileView) -> bool:
        """The namespace's ReefPolicy, asked before a VM is created or resumed: a profile or
        size it does not allow (any more) stalls the node; no free running-VM slot makes it
        wait, QuotaExceeded, until a VM of the namespace pauses or goes (it is woken)."""
        policy = self.policy(work.namespace)
        resources = work.spec.get("resources") or profile.resources
        problems = reefpolicy.profile_problems(policy, profile.name, resources)
        if problems:
            self._invalid(work, "PolicyRefused", "; ".join(problems))
            return False
        limit = reefpolicy.limits(policy).get("maxRunningVMs")
        if self.fleet.take_slot(work.namespace, work.name, limit):
            return True
        self._waiting.add((work.namespace, work.name))
        message = reefpolicy.running_vms_message(policy, self.fleet.running(work.namespace))
        self._summarize(work, "QuotaExceeded", message, reconciling=True)
        if not self._already(work, "QuotaExceeded"):
            self._event(work, "Normal", "QuotaExceeded", message)
        return False

    @staticmethod
    def _already(work: Pass, reason: str) -> bool:
        ready = find_condition(work.body, "Ready")
        return bool(ready and ready.get("reason") == reason)

    def metadata_for_new(self, namespace: str, name: str,
                         spec: Mapping[str, Any]) -> dict[str, Any]:
        """Metadata for a node the operator itself creates (a lieutenant's own).

        What the first passes would otherwise write one patch at a time: the lineage
        labels, the finalizer, the vm-requested-at mark (a lookup before the first
        create costs one platform call; a create is about to be sent anyway).
        """
        metadata: dict[str, Any] = {"finalizers": [FINALIZER]}
        # A node that takes a warm VM from a pool asks for one of its own only when the
        # pool has none (vmnodes/pooling.py): it is marked then.
        if not (spec.get("poolRef") or {}).get("name"):
            requested = now_iso()
            self.fresh_requests.add((namespace, name, requested))
            metadata["annotations"] = {ANNOTATION_VM_REQUESTED: requested}
        profile = self.profiles.get(self._profile_name(namespace, spec))
        parent = (spec.get("parentRef") or {}).get("name")
        try:
            root = self.fleet.lineage(namespace, parent).root if parent else name
        except LineageError:
            return metadata  # the node's own passes report the broken chain
        if profile is not None:
            metadata["labels"] = lineage_labels(spec, profile, root)
        return metadata

    async def _create(self, work: Pass, provider: Provider, profile: ProfileView,
                      metadata_patch: dict[str, Any]) -> str:
        annotations = work.meta.get("annotations") or {}
        requested = annotations.get(ANNOTATION_VM_REQUESTED)
        if requested is None:
            requested = now_iso()
            # Persisted before the create is sent: the proof that one may be in flight.
            await self.kube.patch_metadata(PLURAL, work.namespace, work.name, {
                **metadata_patch, "annotations": {ANNOTATION_VM_REQUESTED: requested}})
            self.fresh_requests.add((work.namespace, work.name, requested))
        elif metadata_patch:
            await self.kube.patch_metadata(PLURAL, work.namespace, work.name, metadata_patch)
        request = self._request(work, profile, parse_time(requested))
        fresh = (work.namespace, work.name, requested)
        vm_id = None if fresh in self.fresh_requests else await provider.find(request)
        if vm_id is None:
            self.fresh_requests.discard(fresh)  # from here on a create may be in flight
            vm_id = await provider.create(request)
            self._event(work, "Normal", "Created", f"created VM {vm_id} ({provider.name})")
        else:
            self._event(work, "Normal", "Recovered",
                        f"found VM {vm_id} made before an interruption; using it")
        work.status["vmId"] = vm_id
        return vm_id

    async def _commit_refusal(self, work: Pass, provider: Provider) -> str:
        """Why the node may not boot from its spec.source.commitId ("" when it may).

        A commit id is only a string a tenant can type: it may be a snapshot of another
        namespace's VM, with that namespace's files and secrets on its disk. Allowed are
        the golden images BootProfiles name (the cluster admin's choice) and snapshots of
        this namespace's own nodes, as the platform records them.
        """
        commit = (work.spec.get("source") or {}).get("commitId")
        if not commit or commit in self.profiles.commits():
            return ""
        owner = await provider.snapshot_owner(commit)
        if owner is not None and owner.namespace == work.namespace:
            return ""
        whose = ("the platform cannot say whose it is" if owner is None
                 else f"it was taken of a VM of namespace {owner.namespace!r}")
        return (f"source.commitId {commit} is neither a golden image a BootProfile names nor "
                f"a checkpoint of a node in namespace {work.namespace!r} ({whose}); use one "
                "of those, or ask a cluster admin for a BootProfile naming it")

    async def _forget_request(self, work: Pass) -> None:
        """The VM was released on purpose: a later create is a new request."""
        if ANNOTATION_VM_REQUESTED in (work.meta.get("annotations") or {}):
            await self.kube.patch_metadata(PLURAL, work.namespace, work.name,
                                           {"annotations": {ANNOTATION_VM_REQUESTED: None}})

    def _request(self, work: Pass, profile: ProfileView,
                 pending_since: datetime.datetime | None) -> VmRequest:
        source = dict(work.spec.get("source") or profile.source or {})
        resources = dict(work.spec.get("resources") or profile.resources or {})
        return VmRequest(
            owner_uid=str(work.meta.get("uid")), name=work.name, namespace=work.namespace,
            commit_id=source.get("commitId"), tag=source.get("tag"), ref=source.get("ref"),
            vcpu=resources.get("vcpu"), memory_mib=resources.get("memoryMiB"),
            disk_mib=resources.get("diskMiB"), pending_since=pending_since,
        )

    async def _running(self, work: Pass, provider: Provider, profile: ProfileView,
                       vm_id: str) -> float:
        status = work.status
        pinned = status.get("hostKeyFingerprint") or None
        try:
            shell = await provider.shell(vm_id, pinned)
        except HostKeyMismatch as error:
            self._invalid(work, "HostKeyMismatch", str(error))
            return IDLE
        except ProviderError as error:
            return self._heartbeat_failed(work, str(error))
        if shell.host_key_fingerprint and not pinned:
            status["hostKeyFingerprint"] = shell.host_key_fingerprint

        boot = dict(status.get("boot") or {})
        if not boot.get("profileHash"):
            await self._report_progress(work, "Booting", "running the profile's boot script")
            await self._boot(work, shell, profile, boot)
        work.condition("Booted", True, "BootScriptSucceeded",
                       f"booted with profile {profile.name}")
        uptodate = boot.get("profileHash") == profile.hash
        work.condition("UpToDate", uptodate, "ProfileCurrent" if uptodate else "ProfileChanged",
                       "" if uptodate else f"BootProfile {profile.name} changed since this VM "
                       "booted; running VMs are not rebooted behind your back: recreate the "
                       "node to apply it")

        try:
            beat = await shell.run(heartbeat.COMMAND, within=work.heartbeat.command_timeout)
            alive = heartbeat.answered(beat)
        except ProviderError as error:
            return self._heartbeat_failed(work, str(error))
        if not alive:
            return self._heartbeat_failed(work, f"heartbeat command failed: {beat.stderr[-200:]}")
        previous = find_condition(work.body, "Alive")
        if previous and previous.get("status") == "False":
            self._event(work, "Normal", "HeartbeatRecovered", f"VM {vm_id} answers again")
        self._beat(work, alive_before=bool(previous and previous.get("status") == "True"))
        work.condition("Alive", True, "HeartbeatOk", "")
        await self._checkpoints(work, provider, vm_id)
        self._summarize(work, "Running", f"VM {vm_id} is running and answering", ready=True)
        return min(work.heartbeat.interval, self._next_checkpoint_in(work))

    async def _boot(self, work: Pass, shell: Shell, profile: ProfileView,
                    boot: dict[str, Any]) -> None:
        attempt = int(boot.get("attempts") or 0) + 1
        env = boots.identity_env(work.namespace, work.name, work.spec, work.status, profile)
        secrets = boots.secret_env_file(await self._secret_env(work, profile))
        command = boots.boot_command(profile.script, env, with_secrets=bool(secrets))
        result = await shell.run(command, stdin=secrets or None,
                                 within=float(profile.boot_timeout))
        if result.exit_status != 0:
            boot["attempts"] = attempt
            work.status["boot"] = boot
            message = boots.failure_message(result.exit_status, result.stdout, attempt)
            work.condition("Booted", False, "BootScriptFailed", message)
            # Retried with backoff either way; after a few failures it needs a person.
            stalled = boots.needs_a_person(attempt)
            self._summarize(work, "BootScriptFailed", message, reconciling=not stalled,
                            stalled=stalled)
            self._event(work, "Warning", "BootFailed", message)
            raise RetryLater(message)
        boot.update({"profileHash": profile.hash, "completedAt": now_iso(),
                     "attempts": attempt})
        work.status["boot"] = boot
        self._event(work, "Normal", "Booted", f"boot script of profile {profile.name} succeeded")

    async def _secret_env(self, work: Pass, profile: ProfileView) -> list[tuple[str, str]]:
        """The profile's Secret-backed variables, read now (never kept, never logged)."""
        values = []
        for entry in profile.secret_env:
            ref = entry["valueFrom"]["secretKeyRef"]
            data = await self.read_secret(ref["namespace"], ref["name"])
            if data is None or ref["key"] not in data:
                message = (f"Secret {ref['namespace']}/{ref['name']} key {ref['key']} "
                           f"(env {entry['name']} of profile {profile.name}) not found")
                self._invalid(work, "SecretNotFound", message)
                raise RetryLater(message)
            value = data[ref["key"]]
            values.append((str(entry["name"]),
                           value.reveal() if hasattr(value, "reveal") else str(value)))
        return values

    async def _checkpoints(self, work: Pass, provider: Provider, vm_id: str) -> None:
        policy = work.checkpoints
        if policy is None or self._next_checkpoint_in(work) > 0:
            return
        snapshot = await provider.snapshot(vm_id)
        taken = [*list(work.status.get("checkpoints") or []),
                 {"commitId": snapshot, "createdAt": now_iso()}]
        self._event(work, "Normal", "CheckpointTaken", f"snapshot {snapshot} of VM {vm_id}")
        kept, expired = policy.prune(taken)
        mine = VmOwner(work.namespace, str(work.meta.get("uid", "")))
        for oldest in expired:
            # status.checkpoints is writable by whoever may write the status: only a
            # snapshot the platform says this node took is deleted; others only leave the list.
            if await provider.snapshot_owner(oldest["commitId"]) == mine:
                await provider.delete_snapshot(oldest["commitId"])
        work.status["checkpoints"] = kept

    def _next_checkpoint_in(self, work: Pass) -> float:
        policy = work.checkpoints
        if policy is None:
            return IDLE
        return policy.due_in(work.status.get("checkpoints") or [],
                             datetime.datetime.now(datetime.UTC))

    def _beat(self, work: Pass, alive_before: bool) -> None:
        """Remember a heartbeat; put its time in status when it is time to (heartbeat.py)."""
        now = datetime.datetime.now(datetime.UTC)
        self.heartbeats.beat((work.namespace, work.name), now)
        written = parse_time(work.status.get("lastHeartbeatTime"))
        if work.heartbeat.time_to_write(now, written, alive_before):
            work.status["lastHeartbeatTime"] = now_iso()

    def _heartbeat_failed(self, work: Pass, reason: str) -> float:
        policy = work.heartbeat
        last = self.heartbeats.last((work.namespace, work.name),
                                    parse_time(work.status.get("lastHeartbeatTime")))
        message = policy.stale_message(datetime.datetime.now(datetime.UTC), last, reason)
        if message is not None:
            work.condition("Alive", False, "HeartbeatStale", message)
            self._summarize(work, "HeartbeatStale", message, stalled=True)
            previous = find_condition(work.body, "Alive")
            if not previous or previous.get("reason") != "HeartbeatStale":
                self._event(work, "Warning", "HeartbeatStale", message)
        return policy.interval

    def _vm_gone(self, work: Pass, desired: str, adopted: bool) -> float:
        vm_id = work.status.get("vmId")
        if desired == "Destroyed":
            for key in ("vmId", "vmState", "address", "hostKeyFingerprint", "boot"):
                work.status.pop(key, None)
            return self._destroyed(work)
        text = (f"VM {vm_id} no longer exists on the platform; set spec.state to Destroyed "
                "and back to Running for a new VM" + ("" if not adopted else
                                                       ", or adopt another with spec.vmId"))
        work.status["vmState"] = "dead"
        work.condition("Alive", False, "VMNotFound", text)
        self._summarize(work, "VMNotFound", text, stalled=True)
        self._warn_once(work, work.body.get("status") or {}, "VMNotFound", text)
        return IDLE

    def _destroyed(self, work: Pass) -> float:
        self._summarize(work, "Destroyed", "the VM was released; the object is kept")
        work.condition("Paused", False, "Destroyed", "")
        return IDLE

    def _invalid(self, work: Pass, reason: str, message: str) -> None:
        self._summarize(work, reason, message, stalled=True)
        self._warn_once(work, work.body.get("status") or {}, reason, message)

    @staticmethod
    def _summarize(work: Pass, reason: str, message: str, *, ready: bool = False,
                   reconciling: bool = False, stalled: bool = False) -> None:
        """Ready, Reconciling and Stalled, always together and with one reason.

        kstatus reads only Reconciling and Stalled (abnormal-true), so neither may be
        left over from an earlier pass: Reconciling=True while the operator is still
        bringing the VM to its spec, Stalled=True when it cannot without a person.
        """
        work.condition("Ready", ready, reason, message)
        work.condition("Reconciling", reconciling, reason, message if reconciling else "")
        work.condition("Stalled", stalled, reason, message if stalled else "")

    async def _report_progress(self, work: Pass, reason: str, message: str) -> None:
        """Say Reconciling=True before a long step (the boot script), unless already said.

        The status gathered so far (the VM id among it) goes with it.
        """
        reconciling = find_condition(work.body, "Reconciling")
        if reconciling and reconciling.get("status") == "True":
            return
        generation = int(work.meta.get("generation", 0))
        progress = Pass(work.body, {})
        self._summarize(progress, reason, message, reconciling=True)
        current = (work.body.get("status") or {}).get("conditions")
        await self.kube.patch_status(PLURAL, work.namespace, work.name, {
            **work.status, "observedGeneration": generation,
            "conditions": merge_conditions(current, progress.conditions, generation, now_iso()),
        })

    # -- reporting ----------------------------------------------------------------------
    def _event(self, work: Pass, kind: str, reason: str, message: str) -> None:
        self.post_event(work.body, kind, reason, message)

    def _warn_once(self, work: Pass, previous_status: Mapping[str, Any], reason: str,
                   message: str) -> None:
        """A Warning event, unless the same failure is already reported."""
        ready = find_condition({"status": previous_status}, "Ready")
        if ready and ready.get("reason") == reason and ready.get("message") == message:
            return
        self._event(work, "Warning", reason, message)

    async def _write_status(self, work: Pass, current: Mapping[str, Any]) -> None:
        status = work.status
        status["observedGeneration"] = work.meta.get("generation", 0)
        status["conditions"] = merge_conditions(current.get("conditions"), work.conditions,
                                                int(work.meta.get("generation", 0)), now_iso())
        if _without_times(status) == _without_times(current) and \
                status.get("lastHeartbeatTime") == current.get("lastHeartbeatTime"):
            return
        patch = dict(status)
        for key in current:
            if key not in status:
                patch[key] = None  # merge patch: remove
        await self.kube.patch_status(PLURAL, work.namespace, work.name, patch)




def _without_times(status: Mapping[str, Any]) -> dict[str, Any]:
    stripped = {k: v for k, v in status.items() if k != "lastHeartbeatTime"}
    stripped["conditions"] = without_transition_times(status.get("conditions"))
    return stripped
