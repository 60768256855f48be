"""One lieutenant, driven by its own loop (a kopf daemon): VM node, pi session, tasks, status.

The loop is level-triggered around a long attachment: it makes sure the
lieutenant's VMNode exists and matches the spec, waits for it to be Ready,
starts (or re-attaches to) pi, then consumes pi's event stream from
`status.session.offset`, delivering tasks and writing coalesced status until
something asks it to step out (pause, destroy, a dropped connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException

from reef_operator import metrics
from reef_operator.agent.events import Activity, confirms_idle, next_activity, text_delta
from reef_operator.agent.session import PiSession, SessionError, SessionSpec
from reef_operator.constants import API_VERSION, GROUP, LABEL_LIEUTENANT, VERSION
from reef_operator.kube.conditions import Condition, merge_conditions, now_iso, parse_time
from reef_operator.lieutenants import delivery
from reef_operator.lieutenants.ledger import Ledger, TaskRecord
from reef_operator.providers.base import Shell
from reef_operator.providers.vers.errors import VersError
from reef_operator.secret import Secret

logger = logging.getLogger(__name__)

PLURAL = "lieutenants"
FLUSH_INTERVAL = 1.0          # at most one status patch per second while streaming
HANDSHAKE_TIMEOUT = 45.0
WATCHDOG_QUIET = 60.0         # seconds without events while working before asking pi
SETTLE_QUIET = 10.0           # seconds settling without an answer before asking again
LIVENESS_EVERY = 15.0         # seconds between checks that pi still runs
UNREACHABLE_BEFORE_STALLED = 5  # failed attempts to reach the agent before Stalled=True

# Event reasons for a task's life, posted on the Lieutenant once its status says so.
TASK_EVENTS = {"Succeeded": ("Normal", "TaskSucceeded"), "Failed": ("Warning", "TaskFailed"),
               "Aborted": ("Normal", "TaskAborted")}


class StepOut(Exception):
    """Leave the attachment and reconcile again (spec changed, VM not ready, ...)."""


class LieutenantRunner:
    def __init__(self, rt: Any, body: Mapping[str, Any], wake: asyncio.Event,
                 stopping: Callable[[], bool] = lambda: False) -> None:
        self.rt = rt
        self.body = body                    # kopf's live view of the object
        self.wake = wake
        self.stopping = stopping            # the loop is asked to end (deletion, shutdown)
        self.gone = False                   # the object was deleted
        meta = body.get("metadata", {})
        self.name = str(meta.get("name"))
        self.namespace = str(meta.get("namespace"))
        self.ledger = Ledger.load(self.spec, self.status)
        self.offset = int((self.status.get("session") or {}).get("offset", 0))
        self.restarts = int((self.status.get("session") or {}).get("restarts", 0))
        self.activity: Activity = "idle"
        self.conditions: list[Condition] = []
        self.phase = str(self.status.get("phase") or "Starting")
        self.session_info: dict[str, Any] = dict(self.status.get("session") or {})
        self.written: dict[str, Any] = {}
        self.dirty = False
        self.last_flush = 0.0
        # Status snapshots are taken and written one at a time: two concurrent
        # writes could land out of order and leave an older snapshot in place.
        self._flush_lock = asyncio.Lock()
        # For the metrics: when the current pass attached (pi answered the handshake),
        # how far the consumer is behind pi's event log (while attached), and the model
        # usage read since the last status write (counted once that write lands, like
        # status.usage, so a re-read of unwritten events cannot count twice).
        self.attached_at: float | None = None
        self.backlog_bytes: int | None = None
        self._unwritten_usage: list[tuple[str, Mapping[str, Any]]] = []

    @property
    def spec(self) -> Mapping[str, Any]:
        return self.body.get("spec") or {}

    @property
    def status(self) -> Mapping[str, Any]:
        return self.body.get("status") or {}

    # -- the outer loop -------------------------------------------------------------------
    async def reconcile(self) -> float:
        """One pass; returns how long to wait for a change before the next."""
        if self._deleting():
            return 600.0  # the object goes away with its VMNode: nothing left to report
        self.ledger.sync_spec(self.spec)
        desired = str(self.spec.get("state", "Running"))
        node = await self._ensure_vmnode(desired)
        if desired == "Destroyed":
            return await self._destroyed(node)
        node_status = (node or {}).get("status") or {}
        ready = _condition(node_status, "Ready") == "True"
        if desired == "Paused" and _condition(node_status, "Paused") == "True":
            self._set_phase("Paused", [*_summary(False, "Paused", "the VM is paused"),
                                       Condition("Paused", True, "Paused", "frozen, memory kept"),
                                       Condition("Working", False, "Paused", "")])
            await self.flush(force=True)
            return 600.0
        stalled = _find(node_status, "Stalled")
        if not ready and stalled.get("status") == "True" and _observed(node):
            # The VM cannot come up without a person (no such profile, ...): say so here.
            self.fail(str(stalled.get("reason") or "VMNodeStalled"),
                      f"VMNode {self.name}: {stalled.get('message', '')}")
            await self.flush(force=True)
            return 600.0
        if desired == "Paused" and self._node_state(desired) == "Paused":
            # The VM is being frozen: nothing to attach to until it is (or it resumes).
            self._set_phase(self.phase, [
                *_summary(False, "Pausing", "freezing the VM", reconciling=True),
                Condition("Working", False, "Pausing", "")])
            await self.flush(force=True)
            return 600.0
        if not ready:
            # One message for the whole wait (the VMNode's own status tells its steps):
            # each step repeated here would be one more write per lieutenant.
            self._set_phase("Starting", [
                *_summary(False, "WaitingForVM", f"waiting for VMNode {self.name} to be Ready",
                          reconciling=True),
                Condition("Working", False, "WaitingForVM", "")])
            await self.flush(force=True)
            return 600.0
        if self._stopped_when_done():
            # StopWhenDone: pi stays stopped until a new task arrives (a spec change wakes
            # this loop); the VM keeps running and the session file keeps the conversation.
            self._set_phase("Stopped", [
                *_summary(True, "Stopped", "the agent stopped after its tasks "
                          "(postTaskDisposition StopWhenDone); a new task starts it again"),
                Condition("Working", False, "Stopped", "")])
            await self.flush(force=True)
            return 600.0
        await self._attach(node_status)
        return 0.0

    def _deleting(self) -> bool:
        return self.gone or bool(self.body.get("metadata", {}).get("deletionTimestamp"))

    def _stop_when_done(self) -> bool:
        return self.spec.get("postTaskDisposition") == "StopWhenDone"

    def _stopped_when_done(self) -> bool:
        return self._stop_when_done() and self.phase == "Stopped" and \
            self.ledger.next_pending() is None and self.ledger.running is None

    # -- VMNode ---------------------------------------------------------------------------
    async def _ensure_vmnode(self, desired: str) -> dict[str, Any] | None:
        """The lieutenant's own VMNode, created or brought in line with the spec."""
        node = self.rt.vmnode_bodies.get((self.namespace, self.name))
        parent = self.spec.get("parentRef") or {}
        wanted: dict[str, Any] = {"state": self._node_state(desired), "category": "Lieutenant"}
        profile = (self.spec.get("profileRef") or {}).get("name")
        if profile:
            wanted["profileRef"] = {"name": profile}
        if self.spec.get("commitId"):
            wanted["source"] = {"commitId": self.spec["commitId"]}
        if parent.get("name"):
            wanted["parentRef"] = {"name": parent["name"]}
        if node is None:
            meta = self.body.get("metadata", {})
            metadata = self.rt.vmnodes.metadata_for_new(self.namespace, self.name, wanted)
            metadata["labels"] = {**metadata.get("labels", {}), LABEL_LIEUTENANT: self.name}
            body = {
                "apiVersion": API_VERSION, "kind": "VMNode",
                "metadata": {"name": self.name, "namespace": self.namespace, **metadata,
                             "ownerReferences": [{
                                 "apiVersion": API_VERSION, "kind": "Lieutenant",
                                 "name": self.name, "uid": meta.get("uid"),
                                 "controller": True, "blockOwnerDeletion": True}]},
                "spec": wanted,
            }
            try:
                created = await asyncio.to_thread(
                    self.rt.kube.custom.create_namespaced_custom_object,
                    GROUP, VERSION, self.namespace, "vmnodes", body)
            except ApiException as error:
                if error.status != 409:
                    raise
                return None  # made by an earlier pass; its watch event is on the way
            # Known at once, so a pass woken before the watch event does not create it twice.
            self.rt.vmnode_bodies.setdefault((self.namespace, self.name), created)
            return None
        owners = node.get("metadata", {}).get("ownerReferences") or []
        if not any(o.get("uid") == self.body.get("metadata", {}).get("uid") for o in owners):
            raise OwnershipError(f"a VMNode named {self.name} already exists and belongs to "
                                 "someone else; rename the lieutenant or delete that VMNode")
        current = node.get("spec") or {}
        if any(current.get(k) != v for k, v in wanted.items()):
            await asyncio.to_thread(self.rt.kube.custom.patch_namespaced_custom_object,
                                    GROUP, VERSION, self.namespace, "vmnodes", self.name,
                                    {"spec": wanted})
        return dict(node)

    def _node_state(self, desired: str) -> str:
        if desired == "Paused" and self.ledger.running is not None:
            return "Running"  # the pause waits for the task to finish
        return desired

    async def _destroyed(self, node: Mapping[str, Any] | None) -> float:
        node_ready = _find((node or {}).get("status") or {}, "Ready")
        released = node is None or (node_ready.get("reason") == "Destroyed" and _observed(node))
        summary = (_summary(False, "Destroyed", "the agent was stopped and the VM released; "
                            "history is kept") if released else
                   _summary(False, "Destroying", f"waiting for VMNode {self.name} to release "
                            "the VM", reconciling=True))
        self._set_phase("Destroyed", [*summary, Condition("Working", False, "Destroyed", ""),
                                      Condition("Paused", False, "Destroyed", "")])
        self.ledger.running = None
        await self.flush(force=True)
        return 600.0

    # -- attachment -----------------------------------------------------------------------
    async def _attach(self, node_status: Mapping[str, Any]) -> None:
        """Start or find pi, then follow it; one of a bounded number of starts at a time."""
        gate = self.rt.agent_starts
        await gate.enter()
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
        node = self.rt.vmnode_bodies.get((self.namespace, self.name)) or {}
        provider_key = node.get("metadata", {}).get("labels", {}).get(f"{GROUP}/provider", "vers")
        provider = self.rt.providers[provider_key]
        shell: Shell = await provider.shell(node_status["vmId"],
                                            node_status.get("hostKeyFingerprint") or None)
        session = PiSession(shell, await self._session_spec())
        started = await session.start()
        # A session that was stopped on purpose (StopWhenDone) is started, not restarted.
        had_session = bool(self.session_info.get("sessionFile")) and self.phase != "Stopped"
        if started and had_session:
            self.restarts += 1
            self.rt.post_event(self.body, "Warning", "AgentRestarted",
                               "pi was not running on the VM: restarted on the same session "
                               "file, the conversation continues")
        self.session_info.update({
            "sessionFile": await session.session_file(),
            "model": f"{self._model()[0]}/{self._model()[1]}",
            "restarts": self.restarts,
            # startedAt moves only when pi is started; an attachedAt later than it means
            # the operator found pi running and re-attached (shown by `kubectl reef discover`).
            "attachedAt": now_iso(),
        })
        if started or not self.session_info.get("piVersion"):
            self.session_info["piVersion"] = await session.version()
        if started or not self.session_info.get("startedAt"):
            self.session_info["startedAt"] = self.session_info["attachedAt"]
        for sent_id in await delivery.delivered_ids(shell):
            for task in self.ledger.tasks:
                if delivery.command_id(task.name) == sent_id and task.phase == "Pending":
                    self.ledger.mark_sent(task, "unknown", sent_id)  # sent before a crash
        handshake = f"hs-{uuid.uuid4().hex[:8]}"
        await session.send({"id": handshake, "type": "get_state"})
        await self._consume(session, shell, handshake, on_ready)

    async def _consume(self, session: PiSession, shell: Shell, handshake: str,
                       on_ready: Callable[[], None]) -> None:
        ready = asyncio.Event()
        pending_settle: set[str] = set()
        # Watchdog pokes by id → deliveries made before it: a poke's answer speaks for
        # them only if no task was delivered after it (pi answers commands in order).
        pokes: dict[str, int] = {}
        deliveries = 0
        deliver_lock = asyncio.Lock()
        last_event = time.monotonic()
        last_liveness = time.monotonic()

        async def handle(event: Mapping[str, Any]) -> None:
            nonlocal last_event
            last_event = time.monotonic()
            metrics.event_consumed(event)
            kind = event.get("type")
            previous = self.activity
            self.activity = next_activity(self.activity, event)
            if kind == "response":
                await on_response(event)
            elif kind == "message_end":
                message = event.get("message") or {}
                if message.get("role") == "user":
                    self.ledger.user_message(_text(message))
                elif message.get("role") == "assistant":
                    self.ledger.assistant_message(message)
                    self._unwritten_usage.append((self._model_label(message),
                                                  message.get("usage") or {}))
            elif kind == "message_update":
                delta = text_delta(event)
                if delta:
                    self.ledger.text(delta)
            elif kind == "auto_retry_end" and not event.get("success"):
                self.ledger.last_error = str(event.get("finalError") or self.ledger.last_error)
            if self.activity == "settling" and previous != "settling":
                settle_id = f"settle-{uuid.uuid4().hex[:8]}"
                pending_settle.add(settle_id)
                await session.send({"id": settle_id, "type": "get_state"})
            self.dirty = True

        async def on_response(event: Mapping[str, Any]) -> None:
            command = str(event.get("id") or "")
            if command == handshake:
                data = event.get("data") or {}
                self.activity = "idle" if confirms_idle(data) else "working"
                if self.activity == "idle":
                    self.ledger.settle()
                # The phase goes with the session's details in one write.
                self._set_phase(*self._working_phase())
                ready.set()
            elif command in pending_settle or command in pokes:
                pending_settle.discard(command)
                current = pokes.pop(command, deliveries) == deliveries
                # A settle answers "settling"; a watchdog poke also un-sticks a "working"
                # whose end was missed, provided nothing was delivered after the poke.
                if (self.activity == "settling" or (self.activity == "working" and current
                                                    and command.startswith("watch-"))) \
                        and current and confirms_idle(event.get("data") or {}):
                    self.activity = "idle"
                    self.ledger.settle()
                    # The outcome and the Idle phase in one write: a reader that sees the
                    # task finished also sees the lieutenant ready for the next one.
                    self._set_phase(*self._working_phase())
                    await self.flush(force=True)
            elif command.startswith("task-") and not event.get("success", True):
                self.ledger.fail_queued(command, str(event.get("error") or "refused by pi"))
                await self.flush(force=True)

        async def deliver_pending() -> None:
            nonlocal deliveries
            async with deliver_lock:
                while ready.is_set() and not self._pausing():
                    task = self.ledger.next_pending()
                    if task is None:
                        return
                    working = self.activity != "idle" or self.ledger.running is not None
                    planned = delivery.task_command(task.message, task.mode, working)
                    if planned is None:
                        if not task.note:
                            task.note = ("the agent was working: queued until the current "
                                         "task finishes")
                            self.dirty = True
                        return
                    command, behaviour, note = planned
                    if task.note and not note:
                        note = task.note
                    identifier = delivery.command_id(task.name)
                    # Marked before the write: pi's events for it may be read before
                    # the write returns. The VM's sent-log is what survives a crash.
                    # Working before the write, too: on a fast model the whole run (agent_end
                    # included) can be consumed before the write returns, and setting
                    # "working" afterwards would undo its settling for good.
                    self.ledger.mark_sent(task, behaviour, identifier, note)
                    before = self.activity
                    if not working:
                        self.activity = "working"
                    deliveries += 1
                    try:
                        await delivery.deliver(shell, identifier, command)
                    except BaseException:
                        task.phase, task.sent_at = "Pending", None
                        if self.activity == "working" and not working:
                            self.activity = before
                        raise
                    await self.flush(force=True)

        async def consume() -> None:
            async for event, end in session.events(self.offset):
                await handle(event)
                self.offset = end
                # A delivery in flight writes its own status when it returns (with
                # whatever the events read meanwhile say): one write, not two.
                if ready.is_set() and not deliver_lock.locked():
                    await self.flush()
            raise StepOut("the event stream ended")

        async def steer() -> None:
            """Between events: new tasks, pause/destroy, flushes, the watchdog."""
            nonlocal last_liveness, last_event
            await asyncio.wait_for(ready.wait(), HANDSHAKE_TIMEOUT)
            on_ready()
            self.attached_at = time.monotonic()
            self._set_phase(*self._working_phase())
            await self.flush(force=True)
            while True:
                self.ledger.sync_spec(self.spec)
                await deliver_pending()
                if self.stopping() or self._deleting():
                    raise StepOut("the lieutenant's loop is stopping")
                desired = str(self.spec.get("state", "Running"))
                if desired == "Destroyed":
                    with contextlib.suppress(VersError, SessionError):
                        await session.stop()
                    raise StepOut("destroyed")
                if desired == "Paused" and self.activity == "idle" and \
                        self.ledger.running is None:
                    raise StepOut("pausing")
                if self._stop_when_done() and self.activity == "idle" and \
                        self.ledger.running is None and self.ledger.next_pending() is None \
                        and self.ledger.any_finished():
                    with contextlib.suppress(VersError, SessionError):
                        await session.stop()
                    self.phase = "Stopped"
                    raise StepOut("tasks done: the agent stops (StopWhenDone)")
                self._set_phase(*self._working_phase())
                if self.dirty:
                    await self.flush()
                if time.monotonic() - last_liveness > LIVENESS_EVERY:
                    last_liveness = time.monotonic()
                    running, size = await session.probe()
                    if size is not None:
                        self.backlog_bytes = max(0, size - self.offset)
                    if not running:
                        raise StepOut("pi is not running: restarting it on its session file")
                quiet = time.monotonic() - last_event
                if (self.activity == "working" and quiet > WATCHDOG_QUIET) or \
                        (self.activity == "settling" and quiet > SETTLE_QUIET):
                    # pi is asked where it stands; its answer settles a run whose end
                    # (or settle answer, lost to a re-attach) went missing.
                    last_event = time.monotonic()
                    poke = f"watch-{uuid.uuid4().hex[:8]}"
                    pokes[poke] = deliveries
                    await session.send({"id": poke, "type": "get_state"})
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), FLUSH_INTERVAL)

        consumer = asyncio.create_task(consume())
        controller = asyncio.create_task(steer())
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
            self.backlog_bytes = None
            await self.flush(force=True)

    def _pausing(self) -> bool:
        return str(self.spec.get("state", "Running")) in ("Paused", "Destroyed")

    def _working_phase(self) -> tuple[str, list[Condition]]:
        working = self.activity != "idle" or self.ledger.running is not None
        # Working on tasks is the lieutenant doing its job, not the operator catching up
        # with the spec: Reconciling stays False (tasks can run for hours; sync waves and
        # `kstatus` waits should not hang on them). A requested pause is still to be done.
        conditions = [Condition("Working", working, "Working" if working else "Idle", "")]
        if self._pausing():
            destroying = str(self.spec.get("state")) == "Destroyed"
            message = ("the pause waits for the current task to finish" if working
                       else "destroying the VM" if destroying else "pausing the VM")
            conditions += _summary(not destroying, "Destroying" if destroying else "Pausing",
                                   message, reconciling=True)
            if working:
                conditions.append(Condition("Paused", False, "WaitingForTaskToFinish", message))
        else:
            conditions += [*_summary(True, "SessionReady", "pi answers and takes tasks"),
                           Condition("Paused", False, "Running", "")]
        return ("Working" if working else "Idle"), conditions

    # -- inputs ---------------------------------------------------------------------------
    def _model_label(self, message: Mapping[str, Any]) -> str:
        """provider/id of the model that answered (pi's message says), else the spec's."""
        provider, model = message.get("provider"), message.get("model")
        if isinstance(provider, str) and isinstance(model, str) and provider and model:
            return f"{provider}/{model}"
        return "/".join(self._model())

    def _model(self) -> tuple[str, str]:
        model = self.spec.get("model") or {}
        return (str(model.get("provider") or self.rt.config.default_model_provider),
                str(model.get("id") or self.rt.config.default_model_id))

    async def _session_spec(self) -> SessionSpec:
        provider, model = self._model()
        credentials: dict[str, Secret] = {}
        secret_ref = (self.spec.get("credentialsSecretRef") or {}).get("name")
        if secret_ref:
            found = await self.rt.kube.read_secret(self.namespace, secret_ref)
            if found is None:
                raise InputError(f"Secret {secret_ref} (credentialsSecretRef) not found in "
                                 f"namespace {self.namespace}")
            credentials = dict(found)
        models_json: Secret | None = None
        config_ref = (self.spec.get("providersConfigMapRef") or {}).get("name")
        if config_ref:
            data = await self.rt.kube.read_configmap(self.namespace, config_ref)
            if data is None or "models.json" not in data:
                raise InputError(f"ConfigMap {config_ref} (providersConfigMapRef) not found or "
                                 "has no key models.json")
            models_json = Secret(data["models.json"])
        prompt = (f"You are the lieutenant '{self.name}', a persistent coding agent.\n"
                  f"Your role: {self.spec.get('role', '')}\n")
        if self.spec.get("instructions"):
            prompt += f"\n{self.spec['instructions']}\n"
        env = {e["name"]: e["value"] for e in self.spec.get("env") or []}
        return SessionSpec(name=self.name, provider=provider, model=model,
                           thinking=(self.spec.get("model") or {}).get("thinkingLevel"),
                           system_prompt=prompt, credentials=credentials,
                           models_json=models_json, env=env)

    # -- status ---------------------------------------------------------------------------
    def _set_phase(self, phase: str, conditions: list[Condition]) -> None:
        if phase != self.phase:
            self.dirty = True
        self.phase = phase
        self.conditions = conditions

    def fail(self, reason: str, message: str) -> None:
        """Something only a person can fix (a missing Secret, a stalled VMNode)."""
        self._set_phase("Error", [*_summary(False, reason, message, stalled=True),
                                  Condition("Working", False, reason, "")])

    def retrying(self, message: str, failures: int) -> None:
        """The agent could not be reached; the loop retries with backoff."""
        stalled = failures >= UNREACHABLE_BEFORE_STALLED
        self._set_phase("Error" if stalled else "Starting", [
            *_summary(False, "AgentUnreachable", message, reconciling=not stalled,
                      stalled=stalled),
            Condition("Working", False, "AgentUnreachable", "")])

    async def flush(self, force: bool = False) -> None:
        """Write status if it changed; while streaming at most once per FLUSH_INTERVAL."""
        if not force and time.monotonic() - self.last_flush < FLUSH_INTERVAL:
            return
        async with self._flush_lock:
            await self._write_status()

    async def _write_status(self) -> None:
        if self._deleting():
            return
        meta = self.body.get("metadata", {})
        generation = int(meta.get("generation", 0))
        node = self.rt.vmnode_bodies.get((self.namespace, self.name)) or {}
        status = {
            **self.ledger.status(),
            "observedGeneration": generation,
            "phase": self.phase,
            "vmNodeName": self.name,
            "vmId": (node.get("status") or {}).get("vmId"),
            "session": {**self.session_info, "offset": self.offset},
        }
        status["conditions"] = merge_conditions(self.status.get("conditions"), self.conditions,
                                                generation, now_iso())
        # Fields that never cause a write on their own, only travel with the next one:
        # times, the VMNode's VM id (echoed here), and the stream offset (re-reading
        # events past the written offset after a restart changes nothing).
        comparable = {k: v for k, v in status.items() if k not in ("lastActivityTime", "vmId")}
        comparable["session"] = {k: v for k, v in status["session"].items() if k != "offset"}
        comparable["conditions"] = [{k: v for k, v in c.items() if k != "lastTransitionTime"}
                                    for c in status["conditions"]]
        if comparable == self.written:
            self.dirty = False
            self._announce()
            return
        await self.rt.kube.patch_status(PLURAL, self.namespace, self.name, status)
        self.written = comparable
        self.dirty = False
        self.last_flush = time.monotonic()
        self._announce()

    def _announce(self) -> None:
        """What the status just written says happened: task Events and metrics."""
        for model, usage in self._unwritten_usage:
            metrics.model_usage(self.namespace, model, usage)
        self._unwritten_usage = []
        for change, task in self.ledger.drain():
            if change == "started":
                self.rt.post_event(self.body, "Normal", "TaskStarted",
                                   f"task {task.name} reached the agent ({task.mode})")
                continue
            seconds = _seconds_between(task.sent_at, task.completed_at)
            metrics.task_ended(self.namespace, task.phase, seconds)
            kind, reason = TASK_EVENTS.get(task.phase, ("Normal", f"Task{task.phase}"))
            took = f" after {seconds:.0f}s" if seconds is not None else ""
            self.rt.post_event(self.body, kind, reason, f"task {task.name} "
                               f"{task.phase.lower()}{took}" + _note(task))


class InputError(RuntimeError):
    """Something the spec points at (Secret, ConfigMap) is missing."""


class OwnershipError(RuntimeError):
    pass


def _condition(status: Mapping[str, Any], type_: str) -> str | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == type_:
            return str(condition.get("status"))
    return None


def _find(status: Mapping[str, Any], type_: str) -> Mapping[str, Any]:
    return next((c for c in status.get("conditions") or [] if c.get("type") == type_), {})


def _observed(node: Mapping[str, Any] | None) -> bool:
    """Whether the VMNode's status speaks for its current spec."""
    node = node or {}
    return bool((node.get("status") or {}).get("observedGeneration") ==
                (node.get("metadata") or {}).get("generation"))


def _summary(ready: bool, reason: str, message: str, *, reconciling: bool = False,
             stalled: bool = False) -> list[Condition]:
    """Ready, Reconciling, Stalled and Degraded together, so none is left over.

    kstatus reads only Reconciling and Stalled (abnormal-true); Degraded is this API's
    name for the same trouble as Stalled.
    """
    return [Condition("Ready", ready, reason, message),
            Condition("Reconciling", reconciling, reason, message if reconciling else ""),
            Condition("Stalled", stalled, reason, message if stalled else ""),
            Condition("Degraded", stalled, reason, message if stalled else "")]


def _seconds_between(start: str | None, end: str | None) -> float | None:
    began, ended = parse_time(start), parse_time(end)
    return None if began is None or ended is None else (ended - began).total_seconds()


def _note(task: TaskRecord) -> str:
    return f": {task.note}" if task.phase != "Succeeded" and task.note else ""


def _text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    return "".join(str(b.get("text", "")) for b in content or []
                   if isinstance(b, Mapping) and b.get("type") == "text")
