"""`kubectl reef read NAME --follow`: one task's run, streamed from the VM until it ends.

Like `kubectl logs -f`, the follower reads at the source: pi's event log on the
lieutenant's VM, through a shell the operator's own provider code opens (vm.py:
the same configuration, credentials, host-key pinning and Local locks as
`kubectl reef exec/cp`). It starts at `status.currentTask.eventOffset`, where the
operator saw the task's user message, so a follower started mid-task still shows
the task from its first byte, and nothing is skipped however fast the agent
writes (`status.currentTask.output` stays the bounded tail `kubectl get` shows).

Which task: the running one; else the next one sent (it waits for it to start,
as `kubectl logs -f` waits for a container, and says so on stderr while the
lieutenant is paused); else the last one that ended (its full answer from its
TaskRecord). With no task at all it prints the last response and exits 0.
A task that ends before any version of the status the follower reads said where
it began (a short task, the operator's coalesced status writes, a follower
started late) is shown from its TaskRecord too (from its history entry when the
operator writes no records).

What it prints is transcript.py's: the streamed text on stdout, a line per tool
call on stderr. It ends where the operator ends the task (transcript.py), then
waits for the task's phase in status: exit 0 when it Succeeded, 1 (with the
task's note) when it Failed or was Aborted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reef_operator.agent.framing import Rejected
from reef_operator.agent.session import read_events
from reef_operator.api.lieutenant import FINISHED_TASK_PHASES as FINISHED
from reef_operator.cli.plugin import output, records, vm
from reef_operator.cli.plugin.cluster import Cluster, NotFound, Obj, PluginError
from reef_operator.cli.plugin.transcript import Transcript
from reef_operator.providers.base import Provider
from reef_operator.providers.errors import ProviderError, ShellError, Transient

PLURAL = "lieutenants"
RECONNECTS = 3          # a cut connection is opened again this often in a row

Write = Callable[[str], None]


def follow(cluster: Cluster, name: str, timeout: float, out: Write, err: Write) -> int:
    """Stream the chosen task's run (see the module's docstring); its exit code."""
    deadline = time.monotonic() + timeout
    lieutenant = cluster.get(PLURAL, name)
    task = followed_task(lieutenant)
    if not task:
        out(output.current_output(lieutenant) + "\n")
        return 0
    seen, shown = _Seen(lieutenant), None
    if task_field(lieutenant, task, "phase") not in FINISHED:
        shown = asyncio.run(_stream(cluster, name, task, seen, deadline, out, err))
    return _outcome(cluster, name, task, seen, deadline, out, shown)


def followed_task(lieutenant: Mapping[str, Any]) -> str:
    """The running task, else the first sent one not ended, else the last one ended."""
    status = lieutenant.get("status") or {}
    running = (status.get("currentTask") or {}).get("name")
    if running:
        return str(running)
    # The operator may not have seen a task just appended: no status for it counts as pending.
    for spec_task in (lieutenant.get("spec") or {}).get("tasks") or []:
        if task_field(lieutenant, str(spec_task.get("name")), "phase") not in FINISHED:
            return str(spec_task["name"])
    ended = [t for t in status.get("tasks") or [] if t.get("phase") in FINISHED]
    return str(ended[-1]["name"]) if ended else ""


def task_field(lieutenant: Mapping[str, Any], task: str, key: str) -> str:
    for entry in (lieutenant.get("status") or {}).get("tasks") or []:
        if entry.get("name") == task:
            return str(entry.get(key) or "")
    return ""


@dataclass
class _Seen:
    """The latest version of the lieutenant read, and where the task's events begin once
    any version said so (a fast task may have ended by the time the shell is open: its
    events are still in the log)."""

    last: Obj
    offset: int | None = None


async def _stream(cluster: Cluster, name: str, task: str, seen: _Seen, deadline: float,
                  out: Write, err: Write) -> str | None:
    """The task's run from the VM; the last character shown ("\n" when nothing was), or
    None when the task ended before any version of the status said where it began."""
    noted = False

    def on_its_vm(lieutenant: Obj) -> bool:
        nonlocal noted
        status = lieutenant.get("status") or {}
        paused = status.get("phase") == "Paused" or \
            (lieutenant.get("spec") or {}).get("state") == "Paused"
        if paused and not noted:
            err(f"[lieutenant {name} is paused: task {task} starts after it resumes]\n")
            noted = True
        return bool(status.get("vmNodeName")) and not paused

    await _until(cluster, name, task, seen, deadline, "its VM", on_its_vm)
    if not on_its_vm(seen.last):
        return None
    what, node = vm.target(cluster, name)
    transcript, last, mid_line = Transcript(), "\n", False
    try:
        # The provider is built (and the access checked) before waiting: a user without
        # access hears it at once, and the task's first events are not kept waiting.
        async with vm.provider_for(cluster, what, node) as provider:
            await _until(cluster, name, task, seen, deadline, "it to start",
                         lambda _: seen.offset is not None)
            if seen.offset is None:
                return None
            what, node = vm.target(cluster, name)      # the VM as it is now it runs the task
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())), \
                    contextlib.aclosing(_events(provider, what, node, seen.offset)) as events:
                async for event in events:
                    shown = transcript.feed(event)
                    if shown.text:
                        out(shown.text)
                        last, mid_line = shown.text[-1], shown.text[-1] != "\n"
                    if shown.line:
                        # On a terminal the line must not land inside the agent's text.
                        err(("\n" if mid_line else "") + shown.line + "\n")
                        mid_line = False
                    if transcript.ended:
                        break
    except vm.NoProviderAccess as error:
        raise PluginError(
            f"read --follow streams the agent's events from its VM, which needs the access "
            f"`kubectl reef exec` has: {error}. Without it, `kubectl reef read {name}` "
            "shows the output tail kept in status") from None
    except TimeoutError:
        raise PluginError(f"timed out following lieutenant {name}: task {task} still "
                          "runs") from None
    return last


async def _events(provider: Provider, what: str, node: Obj, offset: int
                  ) -> AsyncGenerator[dict[str, Any] | Rejected, None]:
    """pi's events from `offset`; a cut connection is opened again where it stopped."""
    failures = 0
    while True:
        try:
            shell = await vm.shell_of(provider, what, node)
            async with contextlib.aclosing(read_events(shell, offset)) as events:
                async for event, end in events:
                    offset, failures = end, 0
                    yield event
            cut: ProviderError = ShellError("the event stream closed")
        except Transient as error:
            cut = error
        except ProviderError as error:
            raise PluginError(f"following {what}: {error}") from None
        failures += 1
        if failures > RECONNECTS:
            raise PluginError(f"following {what}: {cut}")


async def _until(cluster: Cluster, name: str, task: str, seen: _Seen, deadline: float,
                 what: str, condition: Callable[[Obj], bool]) -> None:
    """Watch the lieutenant, from the version last seen, until `condition` holds or the
    task has ended; `seen` keeps every version's news."""
    def watch() -> None:
        while time.monotonic() < deadline:
            for lieutenant in cluster.watch(PLURAL, name, None, deadline - time.monotonic(),
                                            since=seen.last):
                seen.last = lieutenant
                current = (lieutenant.get("status") or {}).get("currentTask") or {}
                if current.get("name") == task and current.get("eventOffset") is not None:
                    seen.offset = int(current["eventOffset"])
                if condition(lieutenant) or task_field(lieutenant, task, "phase") in FINISHED:
                    return
                _still_there(lieutenant, name)
        raise PluginError(f"timed out waiting for {what} (task {task} of lieutenant {name})")
    await asyncio.to_thread(watch)


def _still_there(lieutenant: Obj, name: str) -> None:
    if (lieutenant.get("status") or {}).get("phase") == "Destroyed":
        raise PluginError(f"lieutenant {name} is Destroyed: nothing to follow")


def _ended_answer(cluster: Cluster, name: str, task: str, lieutenant: Obj) -> str:
    """A task that ended unseen: its full answer from its TaskRecord (written before the
    status that says it ended), else its entry in history (an operator without records)."""
    with contextlib.suppress(NotFound):
        return records.answer(cluster, name, task)
    entry = next((h for h in reversed((lieutenant.get("status") or {}).get("history") or [])
                  if h.get("task") == task), None)
    return str((entry or {}).get("response") or "")


def _outcome(cluster: Cluster, name: str, task: str, seen: _Seen, deadline: float,
             out: Write, last: str | None) -> int:
    """Wait for the task's phase; its answer from history when it was not streamed."""
    while time.monotonic() < deadline:
        lieutenant = seen.last
        phase = task_field(lieutenant, task, "phase")
        if phase not in FINISHED:
            _still_there(lieutenant, name)
            for lieutenant in cluster.watch(PLURAL, name, None, deadline - time.monotonic(),
                                            since=seen.last):
                seen.last = lieutenant
                if task_field(lieutenant, task, "phase") in FINISHED:
                    break
                _still_there(lieutenant, name)
            continue
        if last is None:
            answer = _ended_answer(cluster, name, task, lieutenant)
            out(answer + ("" if answer.endswith("\n") else "\n"))
        elif last != "\n":
            out("\n")
        if phase != "Succeeded":
            note = task_field(lieutenant, task, "note")
            raise PluginError(f"task {task} {phase.lower()}" + (f": {note}" if note else ""))
        return 0
    raise PluginError(f"timed out following lieutenant {name}: task {task} has not ended")
