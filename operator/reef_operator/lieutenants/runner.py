"""One lieutenant, driven by its own loop (a kopf daemon): VM node, pi session, tasks, status.

The loop is level-triggered around a long attachment: it makes sure the
lieutenant's VMNode exists and matches the spec, waits for it to be Ready,
starts (or re-attaches to) pi, then consumes pi's event stream from
`status.session.offset`, delivering tasks and writing coalesced status until
something asks it to step out (pause, destroy, a dropped connection).

The runner orchestrates rooms of one job each: node.py (the lieutenant's VMNode),
inputs.py (what pi needs from the spec, Secrets and ConfigMaps), delegation.py (the
agent's Kubernetes identity, spec.delegation), parent.py (a child lieutenant owned by its
parent), protocol.py (pi's event protocol and the task ledger it feeds), delivery.py
(writing tasks into pi), phases.py (the phase and conditions of each situation) and
status.py (writing it all).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any, cast

from reef_operator import metrics
from reef_operator.agent.events import message_usage
from reef_operator.agent.framing import Rejected
from reef_operator.agent.session import PiSession, SessionError
from reef_operator.constants import ANNOTATION_CHECKPOINT_COMMITS, GROUP
from reef_operator.kube.annotations import reconciliation_paused
from reef_operator.kube.conditions import Condition, find_condition, now_iso
from reef_operator.lieutenants import (
    checkpoints,
    delegation,
    delivery,
    forking,
    inputs,
    node,
    parent,
    phases,
)
from reef_operator.lieutenants.holding import UNTIL_CHANGED, Holding
from reef_operator.lieutenants.holds import Hold
from reef_operator.lieutenants.inputs import InputError
from reef_operator.lieutenants.ledger import Ledger
from reef_operator.lieutenants.node import OwnershipError
from reef_operator.lieutenants.protocol import Delivery, SessionProtocol, Wait
from reef_operator.lieutenants.runtime import LieutenantRuntime
from reef_operator.lieutenants.status import FLUSH_INTERVAL, StatusWriter
from reef_operator.providers.base import Provider, Shell, VmOwner
from reef_operator.providers.errors import ProviderError

__all__ = ["InputError", "LieutenantRunner", "OwnershipError", "StepOut"]

HANDSHAKE_TIMEOUT = 45.0
REPLAY_TIMEOUT = 60.0         # seconds to re-read a running task's events on attach
LIVENESS_EVERY = 15.0         # seconds between checks that pi still runs


class StepOut(Exception):
    """Leave the attachment and reconcile again (spec changed, VM not ready, ...)."""


class LieutenantRunner:
    def __init__(self, rt: LieutenantRuntime, body: Mapping[str, Any], wake: asyncio.Event,
                 stopping: Callable[[], bool] = lambda: False) -> None:
        self.rt = rt
        self.body = body                    # kopf's live view of the object
        self.wake = wake
        self.stopping = stopping            # the loop is asked to end (deletion, shutdown)
        self.gone = False                   # the object was deleted
        meta = body.get("metadata", {})
        self.name = str(meta.get("name"))
        self.namespace = str(meta.get("namespace"))
        self.ledger = Ledger.load(self.spec, body.get("status") or {})
        self.protocol = SessionProtocol(self.ledger)
        self.writer = StatusWriter(rt, body, self.ledger, self.deleting)
        self.restarts = int(self.writer.session.get("restarts", 0))
        # For the metrics: when the current pass attached (pi answered the handshake),
        # and how far the consumer is behind pi's event log (while attached).
        self.attached_at: float | None = None
        self.backlog_bytes: int | None = None
        self.holding = Holding(rt, body, self.ledger, self.writer)
        # The agent's Kubernetes identity while attached (spec.delegation,
        # lieutenants/delegation.py).
        self.identity: delegation.DelegateIdentity | None = None
        self.owned_by_parent = False        # lieutenants/parent.py, once per runner
        self.fork = forking.ForkPoint.load(body.get("status") or {})

    @property
    def spec(self) -> Mapping[str, Any]:
        return self.body.get("spec") or {}

    @property
    def phase(self) -> str:
        return self.writer.phase

    def desired(self) -> str:
        """The state to drive to: the spec's, or a stronger one the operator holds it to."""
        return self.holding.desired()

    def held(self) -> Hold | None:
        """The hold, when it is what drives the lieutenant (lieutenants/holding.py)."""
        return self.holding.held()

    # -- the outer loop -------------------------------------------------------------------
    async def reconcile(self) -> float:
        """One pass; returns how long to wait for a change before the next."""
        if self.deleting():
            return UNTIL_CHANGED  # it goes away with its VMNode: nothing left to report
        if self.management_paused():
            return UNTIL_CHANGED  # tasks wait; pi finishes what it was given on its own
        self.ledger.sync_spec(self.spec)
        self.holding.refresh()
        if not self.owned_by_parent:
            self.owned_by_parent = await parent.ensure_owned_by_parent(self.rt.kube, self.body)
        if self.holding.expiry_unwritten():
            # Written before the VM is released: expiry stays final across a crash.
            await self.flush(force=True)
        desired = self.desired()
        self.holding.lift_if_running(desired)
        state = node.node_state(desired, self.ledger.running is not None)
        crowded = self.holding.crowded(desired)
        if crowded:
            return await self._settle_on(*phases.quota_exceeded(crowded))
        if self.spec.get("forkFrom") and self.fork is None and desired != "Destroyed":
            waiting = await self._find_fork_point()
            if waiting is not None:
                return waiting
        found = await node.ensure_vmnode(self.rt, self.body, state, self.fork)
        await self.keep_commits()
        if desired == "Destroyed":
            return await self._destroyed(found)
        self.writer.marks.pop("destroyedAt", None)
        ready = find_condition(found, "Ready").get("status") == "True"
        if desired == "Paused" and find_condition(found, "Paused").get("status") == "True":
            await self._checkpoint_unattached(found)     # frozen with pi between tasks
            hold = self.held()
            wait = await self._settle_on(*(phases.held(hold) if hold else phases.paused()))
            self.holding.announce(hold)
            return wait
        stalled = find_condition(found, "Stalled")
        if not ready and stalled.get("status") == "True" and node.observed(found):
            # The VM cannot come up without a person (no such profile, ...): say so here.
            return await self._settle_on(*phases.failed(
                str(stalled.get("reason", "")), f"VMNode {self.name}: "
                f"{stalled.get('message', '')}"))
        if desired == "Paused" and state == "Paused":
            # The VM is being frozen: nothing to attach to until it is (or it resumes).
            return await self._settle_on(self.phase, phases.pausing_vm())
        if not ready:
            summary = find_condition(found, "Ready")
            if summary.get("reason") == "QuotaExceeded":
                return await self._settle_on(*phases.quota_exceeded(
                    f"VMNode {self.name}: {summary.get('message', '')}"))
            return await self._settle_on(*phases.waiting_for_vm(self.name))
        if self._stopped_when_done():
            await self._checkpoint_unattached(found)     # pi stopped after its tasks
            # StopWhenDone: pi stays stopped until a new task arrives (a spec change wakes
            # this loop); the VM keeps running and the session file keeps the conversation.
            return await self._settle_on(*phases.stopped())
        await self._attach((found or {}).get("status") or {})
        return 0.0

    async def _find_fork_point(self) -> float | None:
        """Where the fork starts, recorded in status before its VMNode is made; until it is
        known, the wait for it (or why it cannot be), and None once it is recorded."""
        fork_from = self.spec["forkFrom"]
        source = str(fork_from.get("lieutenant") or "")
        self.rt.watch_fork_source(self.namespace, self.name, source)
        decision = forking.resolve(self.name, self.namespace, fork_from,
                                   self.rt.lieutenant_body(self.namespace, source))
        if isinstance(decision, forking.Refusal):
            return await self._settle_on(*phases.failed(decision.reason, decision.message))
        if isinstance(decision, forking.Ask):
            if not decision.asked:
                await self.rt.kube.patch_metadata("lieutenants", self.namespace, source, {
                    "annotations": {decision.key: now_iso()}})
            return await self._settle_on(*phases.waiting_for_checkpoint(source))
        forked_at = now_iso()
        self.writer.fork = decision.status(forked_at)
        self.ledger.history = [forking.marker(decision, forked_at), *self.ledger.history]
        self.writer.set_phase(*phases.waiting_for_vm(self.name))
        await self.flush(force=True)
        if self.writer.gone:
            return UNTIL_CHANGED
        self.fork = decision
        self.rt.watch_fork_source(self.namespace, self.name, None)
        self.rt.post_event(self.body, "Normal", "Forked",
                           f"forked from lieutenant {source} (commit {decision.commit_id})")
        return None

    async def take_checkpoints(self, provider: Provider, vm_id: str) -> None:
        """Take the checkpoints asked of this lieutenant (its annotations), while the agent
        is between two tasks (the caller holds deliveries): each is recorded in status
        before its annotation is removed."""
        annotations = (self.body.get("metadata") or {}).get("annotations") or {}
        asked, problems = checkpoints.requests(annotations)
        done: dict[str, None] = {}
        for problem in problems:
            self.rt.post_event(self.body, "Warning", "CheckpointRefused", problem)
        done.update({key: None for key in annotations
                     if key not in {r.key for r in asked} and checkpoints.is_request(key)})
        for request in asked:
            taken = self.writer.checkpoints
            if not checkpoints.answered(request, taken):
                full = checkpoints.full(taken)
                if full:
                    self.rt.post_event(self.body, "Warning", "CheckpointRefused",
                                       f"checkpoint {request.name} not taken: {full}")
                    done[request.key] = None
                    continue
                commit = await provider.snapshot(vm_id)
                taken.append(checkpoints.entry(request, commit, now_iso(),
                                               self.ledger.last_finished()))
                await self.flush(force=True)
                await self.keep_commits()
                self.rt.post_event(self.body, "Normal", "CheckpointTaken",
                                   f"checkpoint {request.name}: commit {commit} of VM {vm_id}")
            done[request.key] = None
        if done and not self.writer.gone:
            await self.rt.kube.patch_metadata("lieutenants", self.namespace, self.name,
                                              {"annotations": done})

    async def keep_commits(self) -> None:
        """Every checkpoint's commit named on the lieutenant's VMNode, which deletes them
        when it goes (ids before effects: a crash between the two finds it on the next
        pass)."""
        found = self.rt.vmnode_bodies.get((self.namespace, self.name))
        if found is None or not self.writer.checkpoints:
            return
        annotations = (found.get("metadata") or {}).get("annotations") or {}
        value = checkpoints.commits_to_keep(self.writer.checkpoints,
                                            annotations.get(ANNOTATION_CHECKPOINT_COMMITS))
        if value is not None:
            await self.rt.kube.patch_metadata("vmnodes", self.namespace, self.name, {
                "annotations": {ANNOTATION_CHECKPOINT_COMMITS: value}})

    async def _checkpoint_unattached(self, found: Mapping[str, Any] | None) -> None:
        """Checkpoints asked while no agent is attached (the VM paused, or pi stopped
        after its tasks): the agent is between tasks, so they are taken now."""
        vm_id = ((found or {}).get("status") or {}).get("vmId")
        if not self.checkpoints_asked() or not vm_id:
            return
        provider = self._provider_of(found or {})
        await self._own_vm(provider, found or {}, str(vm_id))
        await self.take_checkpoints(provider, str(vm_id))

    def _provider_of(self, found: Mapping[str, Any]) -> Provider:
        labels = found.get("metadata", {}).get("labels", {})
        return self.rt.providers[labels.get(f"{GROUP}/provider", "vers")]

    async def _own_vm(self, provider: Provider, found: Mapping[str, Any], vm_id: str) -> None:
        """The node's status is writable by whoever may write its status subresource:
        the operator acts only on a VM the platform labels for this very node."""
        node_uid = str(found.get("metadata", {}).get("uid", ""))
        owner = (await provider.observe(vm_id)).owner
        if owner != VmOwner(self.namespace, node_uid):
            raise OwnershipError(f"VM {vm_id} in the status of VMNode {self.name} is not "
                                 "labelled for that node; the operator does not act on it")

    def checkpoints_asked(self) -> bool:
        annotations = (self.body.get("metadata") or {}).get("annotations") or {}
        return any(checkpoints.is_request(key) for key in annotations)

    async def _settle_on(self, phase: str, conditions: list[Condition]) -> float:
        """Write a phase that holds until something changes (a watch event wakes the loop)."""
        self.writer.set_phase(phase, conditions)
        await self.flush(force=True)
        return self.holding.until_changed()

    def deleting(self) -> bool:
        return self.gone or self.writer.gone or \
            bool(self.body.get("metadata", {}).get("deletionTimestamp"))

    def management_paused(self) -> bool:
        return reconciliation_paused(self.body.get("metadata"))

    def stop_when_done(self) -> bool:
        return self.spec.get("postTaskDisposition") == "StopWhenDone"

    def _stopped_when_done(self) -> bool:
        return self.stop_when_done() and self.phase == "Stopped" and \
            self.ledger.next_pending() is None and self.ledger.running is None

    async def revoke_identity(self) -> None:
        """No token of this lieutenant's agent works any more, when it had an identity
        (status.delegation names it until it is revoked)."""
        self.identity = None
        if self.writer.marks.get("delegation"):
            await delegation.revoke(self.rt.kube, self.namespace, self.name)
            self.writer.marks.pop("delegation")
            await self.flush(force=True)

    async def ensure_identity(self) -> None:
        """The identity exists and the namespace still allows it; revoked when not."""
        assert self.identity is not None
        try:
            await self.identity.ensure()
        except delegation.DelegationNotEnabled:
            await self.revoke_identity()
            raise

    async def _delegate(self, shell: Shell) -> dict[str, str]:
        """With spec.delegation: the agent's identity made and handed over on the VM, the pi
        package beside it; the environment pi needs for them. Without: any identity left
        from before revoked."""
        if not delegation.wants_delegation(self.spec):
            await self.revoke_identity()
            return {}
        self.identity = delegation.DelegateIdentity(self.rt.kube, self.body,
                                                    self.rt.config.delegate_apiserver)
        if self.writer.marks.get("delegation") != self.identity.account:
            # Marked before it is made: a crash in between leaves it known, to revoke.
            self.writer.marks["delegation"] = self.identity.account
            await self.flush(force=True)
        await self.ensure_identity()
        env = await self.identity.hand_over(shell)
        await delegation.install_tools(shell, self.rt.config.pi_package)
        return env

    async def _destroyed(self, found: Mapping[str, Any] | None) -> float:
        await self.revoke_identity()
        released = found is None or (find_condition(found, "Ready").get("reason") == "Destroyed"
                                     and node.observed(found))
        hold = self.held()
        self.writer.set_phase(*phases.destroyed(released, self.name, hold))
        self.ledger.abandon("the lieutenant was destroyed while the task ran")
        if released:
            self.writer.marks.setdefault("destroyedAt", now_iso())
        await self.flush(force=True)
        if not released:
            return self.holding.until_changed()
        self.holding.announce(hold)
        delete_in = self.holding.delete_in()
        if delete_in is None:
            return self.holding.until_changed()
        if delete_in > 0:
            return min(self.holding.until_changed(), delete_in)
        # ttlSecondsAfterDestroyed is over: the object goes, its VMNode and TaskRecords
        # with it (they are owned by it); the deletion ends this loop.
        await self.rt.kube.delete_object("lieutenants", self.namespace, self.name)
        return UNTIL_CHANGED

    # -- attachment -----------------------------------------------------------------------
    async def _attach(self, node_status: Mapping[str, Any]) -> None:
        """Start or find pi, then follow it; one of a bounded number of starts at a time."""
        gate = self.rt.agent_starts
        await gate.enter(self.namespace)
        held = True

        def answered() -> None:  # pi answered the handshake: the start is over
            nonlocal held
            if held:
                held = False
                gate.leave()
        try:
            await self._start_and_follow(node_status, answered)
        finally:
            answered()

    async def _start_and_follow(self, node_status: Mapping[str, Any],
                                on_ready: Callable[[], None]) -> None:
        found = self.rt.vmnode_bodies.get((self.namespace, self.name)) or {}
        provider = self._provider_of(found)
        vm_id = str(node_status["vmId"])
        await self._own_vm(provider, found, vm_id)
        shell: Shell = await provider.shell(vm_id,
                                            node_status.get("hostKeyFingerprint") or None)
        session_spec = await inputs.session_spec(
            self.rt.kube, self.namespace, self.name, self.spec, self.rt.config, vm_id)
        session = PiSession(shell, dataclasses.replace(session_spec, env={
            **session_spec.env, **await self._delegate(shell)}))
        if self.fork is not None and await session.take_over(self.fork.lieutenant):
            self.rt.post_event(self.body, "Normal", "SessionForked",
                               f"pi continues lieutenant {self.fork.lieutenant}'s conversation "
                               "on this VM")
        started = await session.start()
        info = self.writer.session
        # A session that was stopped on purpose (StopWhenDone) is started, not restarted.
        had_session = bool(info.get("sessionFile")) and self.phase != "Stopped"
        if started and had_session:
            self.restarts += 1
            self.rt.post_event(self.body, "Warning", "AgentRestarted",
                               "pi was not running on the VM: restarted on the same session "
                               "file, the conversation continues")
        info.update({
            "sessionFile": await session.session_file(),
            "model": "/".join(inputs.model(self.spec, self.rt.config)),
            "restarts": self.restarts,
            # startedAt moves only when pi is started; an attachedAt later than it means
            # the operator found pi running and re-attached (shown by `kubectl reef discover`).
            "attachedAt": now_iso(),
        })
        if started or not info.get("piVersion"):
            info["piVersion"] = await session.version()
        if started or not info.get("startedAt"):
            info["startedAt"] = info["attachedAt"]
        self.ledger.recover_sent(await delivery.delivered_ids(shell), delivery.command_id)
        await self._replay_running_task(session)
        await session.send(self.protocol.attach())
        await Attachment(self, session, shell, on_ready, (provider, vm_id)).follow()

    async def _replay_running_task(self, session: PiSession) -> None:
        """Rebuild the running task's transcript from the events read before a restart.

        They lie between `currentTask.eventOffset` and `session.offset`; they feed only
        what memory alone held (the transcript and the task's usage, `Ledger.replay`),
        so the session's usage, Events and metrics are not counted twice. A log that
        cannot be read back in time leaves the record with what follows."""
        ledger, start, end = self.ledger, self.ledger.event_offset, self.writer.offset
        if ledger.transcript_whole or ledger.running is None or start is None or start >= end:
            return
        ledger.transcript_whole = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(REPLAY_TIMEOUT):
                replayed = cast(AsyncGenerator[tuple[Mapping[str, Any] | Rejected, int], None],
                                session.events(start))
                async with contextlib.aclosing(replayed) as events:
                    async for event, after in events:
                        if after > end:
                            break
                        if not isinstance(event, Rejected):
                            ledger.replay(event)
                        if after == end:
                            break

    def attached_phase(self) -> None:
        hold = self.held()
        if hold is None:
            self.holding.announce(None)   # a hold lifted: the next one is announced again
        self.writer.set_phase(*phases.attached(self.protocol.working, self.desired(), hold))

    def pausing(self) -> bool:
        return self.desired() in ("Paused", "Destroyed")

    # -- status ---------------------------------------------------------------------------
    def fail(self, reason: str, message: str) -> None:
        """Something only a person can fix (a missing Secret, a stalled VMNode)."""
        self.writer.set_phase(*phases.failed(reason, message))

    def retrying(self, message: str, failures: int) -> None:
        """The agent could not be reached; the loop retries with backoff."""
        self.writer.set_phase(*phases.unreachable(message, failures))

    async def flush(self, force: bool = False) -> None:
        """Write status if it changed; while streaming at most once per FLUSH_INTERVAL."""
        await self.writer.flush(force)


class Attachment:
    """One attachment to pi: a consumer of its events and a steerer between them.

    The consumer feeds each event to the runner's SessionProtocol and does what it
    asks (send, write status); the steerer delivers tasks, acts on pause, destroy and
    StopWhenDone, checks that pi still runs, and asks pi where it stands when quiet.
    """

    def __init__(self, runner: LieutenantRunner, session: PiSession, shell: Shell,
                 on_ready: Callable[[], None], vm: tuple[Provider, str]) -> None:
        self.runner = runner
        self.protocol = runner.protocol
        self.writer = runner.writer
        self.session = session
        self.shell = shell
        self.on_ready = on_ready
        self.provider, self.vm_id = vm
        self.ready = asyncio.Event()
        self.deliver_lock = asyncio.Lock()
        self.last_event = time.monotonic()

    async def follow(self) -> None:
        consumer = asyncio.create_task(self._consume())
        controller = asyncio.create_task(self._steer())
        try:
            done, _ = await asyncio.wait({consumer, controller},
                                         return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            for task in (consumer, controller):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self.runner.backlog_bytes = None
            await self.writer.flush(force=True)

    async def _consume(self) -> None:
        async for event, end in self.session.events(self.writer.offset):
            await self._handle(event)
            self.writer.offset = end
            # A delivery in flight writes its own status when it returns (with
            # whatever the events read meanwhile say): one write, not two.
            if self.ready.is_set() and not self.deliver_lock.locked():
                await self.writer.flush()
        raise StepOut("the event stream ended")

    async def _handle(self, event: Mapping[str, Any] | Rejected) -> None:
        self.last_event = time.monotonic()
        if isinstance(event, Rejected):
            self.runner.ledger.note(event.reason)
            self.writer.dirty = True
            return
        metrics.event_consumed(event)
        reaction = self.protocol.feed(event, self.writer.offset)
        if reaction.answered is not None:
            # The metric's model label is the spec's: what pi reports comes from the VM.
            model = "/".join(inputs.model(self.runner.spec, self.runner.rt.config))
            self.writer.usage_read(model, message_usage(reaction.answered))
        if reaction.settled:
            self.runner.attached_phase()
        if reaction.ready:
            self.ready.set()
        if reaction.flush:
            await self.writer.flush(force=True)
        for command in reaction.send:
            await self.session.send(command)
        if reaction.compacted is not None:
            # Counted after the last await here: the consumer moves the offset past this
            # event before anything else runs, so no write holds the count without it.
            self.writer.compacted(reaction.compacted)
        self.writer.dirty = True

    async def _checkpoint_if_asked(self) -> None:
        """A checkpoint is taken between two tasks: no task running or just written into
        pi's input, so the copied session file ends with a whole exchange and the fork
        starts idle."""
        if not self.runner.checkpoints_asked():
            return
        async with self.deliver_lock:
            if self.ready.is_set() and self.protocol.activity == "idle" and \
                    not self.runner.ledger.in_flight():
                await self.runner.take_checkpoints(self.provider, self.vm_id)

    async def _deliver_pending(self) -> None:
        async with self.deliver_lock:
            while self.ready.is_set() and not self.runner.pausing():
                planned = self.protocol.next_delivery()
                if planned is None:
                    return
                if isinstance(planned, Wait):
                    if planned.noted:
                        self.writer.dirty = True
                    return
                await self._deliver(planned)
                await self.writer.flush(force=True)

    async def _deliver(self, planned: Delivery) -> None:
        try:
            await delivery.deliver(self.shell, planned.command_id, planned.command)
        except delivery.AlreadyDelivered:
            self.protocol.already_delivered(planned)
        except BaseException:
            self.protocol.undelivered(planned)
            raise

    async def _steer(self) -> None:
        """Between events: new tasks, pause/destroy, flushes, the watchdog."""
        runner, ledger = self.runner, self.runner.ledger
        await asyncio.wait_for(self.ready.wait(), HANDSHAKE_TIMEOUT)
        self.on_ready()
        runner.attached_at = time.monotonic()
        runner.attached_phase()
        await self.writer.flush(force=True)
        last_liveness = time.monotonic()
        while True:
            if runner.management_paused():
                raise StepOut("reconciliation paused by annotation")
            ledger.sync_spec(runner.spec)
            runner.holding.refresh()
            await self._checkpoint_if_asked()
            await self._deliver_pending()
            if runner.stopping() or runner.deleting():
                raise StepOut("the lieutenant's loop is stopping")
            if runner.identity is not None:
                if not delegation.wants_delegation(runner.spec):
                    raise StepOut("spec.delegation was removed: the agent's identity goes")
                if runner.identity.due():   # and the namespace's consent asked again
                    await runner.ensure_identity()
                    await runner.identity.rotate(self.shell)
            desired = runner.desired()
            idle = self.protocol.activity == "idle" and ledger.running is None
            if desired == "Destroyed":
                with contextlib.suppress(ProviderError, SessionError):
                    await self.session.stop()
                raise StepOut("destroyed")
            if desired == "Paused" and idle:
                raise StepOut("pausing")
            if runner.stop_when_done() and idle and ledger.next_pending() is None \
                    and ledger.any_finished():
                with contextlib.suppress(ProviderError, SessionError):
                    await self.session.stop()
                self.writer.set_phase(*phases.stopped())   # phase and conditions in one write
                raise StepOut("tasks done: the agent stops (StopWhenDone)")
            runner.attached_phase()
            if self.writer.dirty:
                await self.writer.flush()
            if time.monotonic() - last_liveness > LIVENESS_EVERY:
                last_liveness = time.monotonic()
                running, size = await self.session.probe()
                if size is not None:
                    runner.backlog_bytes = max(0, size - self.writer.offset)
                if not running:
                    raise StepOut("pi is not running: restarting it on its session file")
            # pi is asked where it stands; its answer settles a run whose end (or
            # settle answer, lost to a re-attach) went missing.
            question = self.protocol.watchdog(time.monotonic() - self.last_event)
            if question is not None:
                self.last_event = time.monotonic()
                await self.session.send(question)
            runner.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(runner.wake.wait(), FLUSH_INTERVAL)
