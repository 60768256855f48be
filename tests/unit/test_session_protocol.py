"""pi's event protocol as a lieutenant speaks it (lieutenants/protocol.py), fed events
by hand: what the task ledger records, when a run counts as over, which commands go
back to pi. The e2e suite runs the same protocol against a real pi."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from reef_operator.lieutenants.ledger import Ledger
from reef_operator.lieutenants.protocol import (
    SETTLE_QUIET,
    WATCHDOG_QUIET,
    Delivery,
    SessionProtocol,
    Wait,
)

IDLE = {"isStreaming": False, "isCompacting": False}
BUSY = {"isStreaming": True, "isCompacting": False}


def _ids() -> Callable[[str], str]:
    counter = itertools.count(1)
    return lambda prefix: f"{prefix}-{next(counter)}"


def _protocol(*tasks: tuple[str, str, str], status: dict[str, Any] | None = None
              ) -> SessionProtocol:
    spec = {"tasks": [{"name": n, "mode": m, "message": msg} for n, m, msg in tasks]}
    return SessionProtocol(Ledger.load(spec, status or {}), new_id=_ids())


def _attached(protocol: SessionProtocol, state: dict[str, Any] = IDLE) -> None:
    handshake = protocol.attach()
    reaction = protocol.feed(_response(handshake["id"], state))
    assert reaction.ready and protocol.ready


def _response(command: str, data: dict[str, Any] | None = None, success: bool = True,
              error: str = "") -> dict[str, Any]:
    event: dict[str, Any] = {"type": "response", "id": command, "command": "get_state",
                             "success": success, "data": data or {}}
    if error:
        event["error"] = error
    return event


def _user(text: str) -> dict[str, Any]:
    return {"type": "message_end",
            "message": {"role": "user", "content": [{"type": "text", "text": text}]}}


def _delta(text: str) -> dict[str, Any]:
    return {"type": "message_update",
            "assistantMessageEvent": {"type": "text_delta", "delta": text}}


def _assistant(text: str = "", stop: str = "stop", error: str = "", tokens: int = 10,
               tool: bool = False) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    if tool:
        content.append({"type": "toolCall", "id": "call-1", "name": "bash",
                        "arguments": {"command": "ls"}})
    message: dict[str, Any] = {"role": "assistant", "content": content, "stopReason": stop,
                               "provider": "anthropic", "model": "claude-x",
                               "usage": {"input": tokens, "output": tokens // 2,
                                         "cost": {"total": 0.01}}}
    if error:
        message["errorMessage"] = error
    return {"type": "message_end", "message": message}


def _activity(protocol: SessionProtocol) -> str:
    """Read afresh each time (an assert on the attribute would narrow its type for mypy)."""
    return protocol.activity


def _deliver(protocol: SessionProtocol) -> Delivery:
    planned = protocol.next_delivery()
    assert isinstance(planned, Delivery), planned
    return planned


def _run(protocol: SessionProtocol, message: str, *events: dict[str, Any]) -> list[str]:
    """One run from its user message to agent_end; the settle questions it asked."""
    asked: list[str] = []
    for event in ({"type": "agent_start"}, _user(message), *events,
                  {"type": "agent_end", "messages": []}):
        asked += [c["id"] for c in protocol.feed(event).send]
    return asked


def test_a_task_runs_streams_and_ends_once_pi_confirms_it_is_idle() -> None:
    protocol = _protocol(("one", "prompt", "Build the API"))
    _attached(protocol)
    sent = _deliver(protocol)
    assert sent.command == {"type": "prompt", "message": "Build the API"}
    assert sent.command_id == "task-one"
    assert _activity(protocol) == "working"              # before the write returns
    task = protocol.ledger.tasks[0]
    assert task.phase == "Queued"

    asked = _run(protocol, "Build the API", _delta("Writing "), _delta("it."),
                 _assistant("Wrote it.", tokens=40))
    assert task.phase == "Running"                      # agent_end alone settles nothing
    assert _activity(protocol) == "settling"
    assert protocol.ledger.output == "Writing it."
    assert asked == ["settle-2"]                        # one question, asked once

    reaction = protocol.feed(_response("settle-2", IDLE))
    assert reaction.settled and reaction.flush
    assert _activity(protocol) == "idle" and not protocol.working
    assert task.phase == "Succeeded"
    entry = protocol.ledger.history[-1]
    assert entry["response"] == "Wrote it."
    assert entry["usage"] == {"inputTokens": 40, "outputTokens": 20, "cacheReadTokens": 0,
                              "cacheWriteTokens": 0, "cost": 0.01}
    assert protocol.ledger.usage.input_tokens == 40


def test_a_settle_answer_while_pi_still_streams_keeps_the_task_running() -> None:
    protocol = _protocol(("one", "prompt", "go"))
    _attached(protocol)
    _deliver(protocol)
    asked = _run(protocol, "go", _assistant("first try", stop="error", error="overloaded"))
    reaction = protocol.feed(_response(asked[0], BUSY))      # auto-retry runs
    assert not reaction.settled
    assert protocol.ledger.tasks[0].phase == "Running"
    # The retry's own run ends; its settle question is answered idle: now it is over.
    asked = [c["id"] for e in ({"type": "auto_retry_start"}, _assistant("done"),
                               {"type": "agent_end", "messages": []})
             for c in protocol.feed(e).send]
    protocol.feed(_response(asked[0], IDLE))
    assert protocol.ledger.tasks[0].phase == "Succeeded"
    assert protocol.ledger.history[-1]["response"] == "done"


def test_tool_calls_keep_the_task_running_and_the_final_text_is_the_answer() -> None:
    protocol = _protocol(("one", "prompt", "list files"))
    _attached(protocol)
    _deliver(protocol)
    asked = _run(protocol, "list files",
                 _assistant("Let me look.", stop="toolUse", tool=True, tokens=10),
                 {"type": "tool_execution_start", "toolName": "bash"},
                 {"type": "tool_execution_end", "toolName": "bash", "isError": False},
                 {"type": "message_end", "message": {"role": "toolResult", "content": []}},
                 _assistant("Two files.", tokens=20))
    assert protocol.ledger.tasks[0].phase == "Running"
    protocol.feed(_response(asked[0], IDLE))
    assert protocol.ledger.tasks[0].phase == "Succeeded"
    entry = protocol.ledger.history[-1]
    assert entry["response"] == "Two files."
    assert entry["stopReason"] == "stop"
    assert entry["usage"]["inputTokens"] == 30                 # both turns of the run


@pytest.mark.parametrize(("stop", "error", "phase"), [
    ("error", "rate limited", "Failed"),
    ("aborted", "", "Aborted"),
    ("stop", "", "Succeeded"),
])
def test_how_a_run_ends_decides_the_tasks_outcome(stop: str, error: str, phase: str) -> None:
    protocol = _protocol(("one", "prompt", "go"))
    _attached(protocol)
    _deliver(protocol)
    asked = _run(protocol, "go", _assistant("partial" if error else "ok", stop=stop, error=error))
    protocol.feed(_response(asked[0], IDLE))
    task = protocol.ledger.tasks[0]
    assert task.phase == phase
    assert task.note == error
    assert protocol.ledger.history[-1]["stopReason"] == stop


def test_a_failed_auto_retry_records_pis_final_error() -> None:
    protocol = _protocol(("one", "prompt", "go"))
    _attached(protocol)
    _deliver(protocol)
    for event in ({"type": "agent_start"}, _user("go"), {"type": "auto_retry_start"}):
        protocol.feed(event)
    reaction = protocol.feed({"type": "auto_retry_end", "success": False,
                              "finalError": "quota exhausted"})
    protocol.feed(_response(reaction.send[0]["id"], IDLE))
    task = protocol.ledger.tasks[0]
    assert task.phase == "Failed"
    assert task.note == "quota exhausted"


def test_a_command_pi_refuses_fails_its_task_with_pis_message() -> None:
    protocol = _protocol(("one", "prompt", "go"))
    _attached(protocol)
    sent = _deliver(protocol)
    reaction = protocol.feed(_response(sent.command_id, success=False,
                                       error="No API key found for anthropic"))
    assert reaction.flush
    task = protocol.ledger.tasks[0]
    assert (task.phase, task.note) == ("Failed", "No API key found for anthropic")


def test_assistant_messages_are_reported_for_the_usage_metrics() -> None:
    protocol = _protocol()
    _attached(protocol)
    message = _assistant("hi", tokens=12)
    reaction = protocol.feed(message)
    assert reaction.answered == message["message"]
    assert protocol.feed(_delta("x")).answered is None


def test_the_handshake_settles_a_run_that_ended_while_detached() -> None:
    protocol = _protocol(("one", "prompt", "go"),
                         status={"tasks": [{"name": "one", "phase": "Running"}],
                                 "currentTask": {"name": "one"}})
    protocol.activity = "working"                  # as the last attachment left it
    protocol.ledger.last_text = "finished while the operator was away"
    _attached(protocol, IDLE)
    assert _activity(protocol) == "idle"
    assert protocol.ledger.tasks[0].phase == "Succeeded"


def test_a_busy_handshake_leaves_the_task_running() -> None:
    protocol = _protocol(("one", "prompt", "go"),
                         status={"tasks": [{"name": "one", "phase": "Running"}],
                                 "currentTask": {"name": "one"}})
    _attached(protocol, BUSY)
    assert _activity(protocol) == "working"
    assert protocol.ledger.tasks[0].phase == "Running"


def test_nothing_answers_before_the_handshake_of_this_attachment() -> None:
    protocol = _protocol()
    first = protocol.attach()
    second = protocol.attach()                     # a re-attach: the old handshake is stale
    assert first["id"] != second["id"]
    assert not protocol.feed(_response(first["id"], IDLE)).ready
    assert not protocol.ready
    assert protocol.feed(_response(second["id"], IDLE)).ready


def test_a_prompt_waits_while_the_agent_works_and_says_so_once() -> None:
    protocol = _protocol(("one", "prompt", "first"), ("two", "prompt", "second"))
    _attached(protocol)
    _deliver(protocol)
    waiting = protocol.next_delivery()
    assert isinstance(waiting, Wait) and waiting.noted
    assert waiting.task.name == "two" and "queued" in waiting.task.note
    again = protocol.next_delivery()
    assert isinstance(again, Wait) and not again.noted       # already said
    asked = _run(protocol, "first", _assistant("one done"))
    protocol.feed(_response(asked[0], IDLE))
    assert _deliver(protocol).task.name == "two"


@pytest.mark.parametrize(("mode", "behaviour"), [("steer", "steer"), ("followUp", "followUp")])
def test_steer_and_follow_up_go_to_a_working_agent_at_once(mode: str, behaviour: str) -> None:
    protocol = _protocol(("one", "prompt", "first"), ("two", mode, "and also"))
    _attached(protocol)
    _deliver(protocol)
    second = _deliver(protocol)
    assert second.command["streamingBehavior"] == behaviour
    assert second.task.delivered_as == behaviour


def test_a_follow_up_to_an_idle_agent_starts_it_and_says_so() -> None:
    protocol = _protocol(("one", "followUp", "hello"))
    _attached(protocol)
    sent = _deliver(protocol)
    assert "streamingBehavior" not in sent.command
    assert sent.task.note == "the agent was idle: it started right away"


def test_a_failed_write_puts_the_task_back_and_the_agent_idle() -> None:
    protocol = _protocol(("one", "prompt", "go"))
    _attached(protocol)
    sent = _deliver(protocol)
    protocol.undelivered(sent)
    assert (sent.task.phase, sent.task.sent_at) == ("Pending", None)
    assert _activity(protocol) == "idle"
    assert _deliver(protocol).task.name == "one"             # and is sent again


def test_the_watchdog_asks_only_after_a_quiet_spell() -> None:
    protocol = _protocol(("one", "prompt", "go"))
    _attached(protocol)
    assert protocol.watchdog(WATCHDOG_QUIET * 10) is None      # idle: nothing to ask
    _deliver(protocol)
    assert protocol.watchdog(WATCHDOG_QUIET - 1) is None
    question = protocol.watchdog(WATCHDOG_QUIET + 1)
    assert question is not None and question["type"] == "get_state"
    protocol.feed({"type": "agent_end", "messages": []})       # settling, answer lost
    assert protocol.watchdog(SETTLE_QUIET - 1) is None
    assert protocol.watchdog(SETTLE_QUIET + 1) is not None


def test_a_watchdog_answer_unsticks_a_run_whose_end_was_missed() -> None:
    protocol = _protocol(("one", "prompt", "go"))
    _attached(protocol)
    _deliver(protocol)
    protocol.feed(_user("go"))
    question = protocol.watchdog(WATCHDOG_QUIET + 1)
    assert question is not None
    reaction = protocol.feed(_response(question["id"], IDLE))
    assert reaction.settled and reaction.flush
    assert protocol.ledger.tasks[0].phase == "Succeeded"


def test_a_watchdog_answer_older_than_a_delivery_does_not_count() -> None:
    protocol = _protocol(("one", "prompt", "go"), ("two", "steer", "faster"))
    _attached(protocol)
    _deliver(protocol)
    protocol.feed(_user("go"))
    question = protocol.watchdog(WATCHDOG_QUIET + 1)
    assert question is not None
    _deliver(protocol)                                   # pi answers the question first
    reaction = protocol.feed(_response(question["id"], IDLE))
    assert not reaction.settled
    assert _activity(protocol) == "working"
    assert protocol.ledger.tasks[0].phase == "Running"
