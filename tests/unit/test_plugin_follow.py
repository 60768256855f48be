"""`read --follow`: what it shows of pi's events and where it stops (the transcript, pure),
which task it follows, and what it says to a user who cannot reach the VM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reef_operator.agent.framing import Rejected
from reef_operator.cli.plugin import follow, vm
from reef_operator.cli.plugin.transcript import Shown, Transcript, call_summary, neutralised
from tests.unit.test_plugin_commands import FakeCluster, cluster, run

__all__ = ["cluster"]      # the fake cluster fixture, shared with the commands' tests


def _user(text: str) -> dict[str, Any]:
    return {"type": "message_end", "message": {"role": "user", "content": text}}


def _delta(text: str) -> dict[str, Any]:
    return {"type": "message_update",
            "assistantMessageEvent": {"type": "text_delta", "delta": text}}


def _assistant(stop: str = "stop", error: str = "") -> dict[str, Any]:
    return {"type": "message_end", "message": {"role": "assistant", "stopReason": stop,
                                               "errorMessage": error, "content": []}}


def _state(streaming: bool = False, compacting: bool = False) -> dict[str, Any]:
    return {"type": "response", "command": "get_state", "success": True,
            "data": {"isStreaming": streaming, "isCompacting": compacting}}


def _run(transcript: Transcript, events: list[Any]) -> tuple[str, list[str]]:
    text, lines = "", []
    for event in events:
        shown = transcript.feed(event)
        text += shown.text
        lines += [shown.line] if shown.line else []
    return text, lines


def test_deltas_are_shown_as_they_come_and_the_run_ends_once_pi_confirms_idle() -> None:
    transcript = Transcript()
    text, lines = _run(transcript, [
        _user("do it"), _delta("Hel"), _delta("lo, "), {"type": "turn_end"},
        _delta("world\n"), _assistant(), _state(), {"type": "agent_end", "messages": []}])
    assert (text, lines) == ("Hello, world\n", [])
    # A get_state answered while working (a watchdog's question) does not end it.
    assert not transcript.ended and transcript.activity == "settling"
    assert transcript.feed(_state(streaming=True)) == Shown() and not transcript.ended
    transcript.feed(_state())
    assert transcript.ended
    # Whatever follows belongs to someone else.
    assert transcript.feed(_delta("next task")) == Shown()


def test_a_retry_or_compaction_after_agent_end_keeps_the_run_going() -> None:
    transcript = Transcript()
    text, _ = _run(transcript, [
        _user("go"), _delta("first try"), _assistant("error", "overloaded"),
        {"type": "agent_end"}, {"type": "auto_retry_start"}, _state(streaming=True),
        {"type": "agent_start"}, _delta(" / second try"), _assistant(),
        {"type": "agent_end"}, {"type": "compaction_start"},
        {"type": "compaction_end", "willRetry": False}])
    assert text == "first try / second try" and not transcript.ended
    transcript.feed(_state())
    assert transcript.ended


def test_the_next_user_message_ends_the_task_and_is_not_shown() -> None:
    transcript = Transcript()
    text, _ = _run(transcript, [_user("first"), _delta("a"), _user("steer: second"),
                                _delta("b")])
    assert text == "a" and transcript.ended


def test_terminal_control_characters_are_printed_escaped() -> None:
    hostile = "red \x1b[31mtext\x1b[0m\r\x08 bell\x07 csi\x9b2J rtl\u202etxet\u2066 ok\ttab\n"
    text, _ = _run(Transcript(), [_user("go"), _delta(hostile)])
    assert text == ("red \\x1b[31mtext\\x1b[0m\\x0d\\x08 bell\\x07 csi\\u009b2J "
                    "rtl\\u202etxet\\u2066 ok\ttab\n")
    assert neutralised("plain ünïcödé ✓ \U0001f600\n") == "plain ünïcödé ✓ \U0001f600\n"


def test_one_short_line_per_tool_call_when_it_ends() -> None:
    transcript = Transcript()
    _, lines = _run(transcript, [
        _user("go"),
        {"type": "tool_execution_start", "toolCallId": "c1", "toolName": "write",
         "args": {"path": "api/src/config.ts", "content": "export const PORT = 3000;\n"}},
        {"type": "tool_execution_start", "toolCallId": "c2", "toolName": "bash",
         "args": {"command": "x" * 500, "timeout": 5}},
        {"type": "tool_execution_update", "toolCallId": "c2"},
        {"type": "tool_execution_end", "toolCallId": "c2", "toolName": "bash",
         "isError": True},
        {"type": "tool_execution_end", "toolCallId": "c1", "toolName": "write",
         "isError": False},
        {"type": "tool_execution_end", "toolCallId": "unseen", "toolName": "read\x1b[2J"},
        Rejected("an event line of 20,000,000 bytes was skipped")])
    assert lines == [
        f"[tool] bash(command={'x' * 47}…, timeout=5) error",
        "[tool] write(path=api/src/config.ts, content=export const PORT = 3000;\\n) ok",
        "[tool] read\\x1b[2J ok",
        "[skipped] an event line of 20,000,000 bytes was skipped"]


def test_a_tool_summary_is_bounded_whatever_the_arguments() -> None:
    summary = call_summary("n" * 500, {f"k{i}": {"deep": ["v" * 100]} for i in range(100)})
    assert len(summary) <= 64 + 2 + 120 and "\n" not in summary
    transcript = Transcript()
    for number in range(10_000):      # started, never ended: remembered only so many
        transcript.feed({"type": "tool_execution_start", "toolCallId": str(number),
                         "toolName": "bash", "args": {}})
    assert len(transcript._tools) == 256


def test_the_followed_task_is_the_running_one_else_the_next_else_the_last_ended() -> None:
    def lieutenant(current: str, tasks: dict[str, str], spec: list[str]) -> dict[str, Any]:
        return {"spec": {"tasks": [{"name": n} for n in spec]},
                "status": {"currentTask": {"name": current} if current else None,
                           "tasks": [{"name": n, "phase": p} for n, p in tasks.items()]}}

    assert follow.followed_task(lieutenant("b", {"a": "Succeeded", "b": "Running"},
                                           ["a", "b"])) == "b"
    # Just sent: the operator has not written its status yet.
    assert follow.followed_task(lieutenant("", {"a": "Succeeded"}, ["a", "c"])) == "c"
    assert follow.followed_task(lieutenant("", {"a": "Succeeded", "b": "Failed"},
                                           ["a", "b"])) == "b"
    assert follow.followed_task(lieutenant("", {}, [])) == ""


def test_without_provider_access_follow_says_what_it_needs_and_plain_read_still_works(
        cluster: FakeCluster, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in ("VERS_API_KEY", "REEF_CONFIG_FILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))         # no ~/.vers/config.json either
    monkeypatch.setattr(vm, "_readable_core", lambda _: None)
    cluster.add("lieutenants", "api", {"tasks": [{"name": "t", "message": "m"}]}, {
        "phase": "Working", "vmNodeName": "api",
        "currentTask": {"name": "t", "output": "half of it", "eventOffset": 4096},
        "tasks": [{"name": "t", "phase": "Running"}]})
    node = cluster.add("vmnodes", "api", {}, {"vmId": "vm-1", "vmState": "running"})
    node["metadata"]["labels"] = {"reef.vers.sh/provider": "vers"}
    code, out, err = run(capsys, "read", "api", "--follow")
    assert (code, out) == (1, "")
    assert err == (
        "error: read --follow streams the agent's events from its VM, which needs the access "
        "`kubectl reef exec` has: cannot reach Vers VMs: VERS_API_KEY is not set: put it in "
        "the environment, in the Secret's data, or in the config file. Without it, "
        "`kubectl reef read api` shows the output tail kept in status\n")
    assert run(capsys, "read", "api") == (0, "half of it\n", "")


def test_a_paused_lieutenant_is_waited_for_and_said_so(
        cluster: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    cluster.add("lieutenants", "api", {"state": "Paused", "tasks": [{"name": "t"}]},
                {"phase": "Paused", "vmNodeName": "api", "tasks": [{"name": "t",
                                                                     "phase": "Pending"}]})
    # It resumed and ran so fast that no version said where it began: from history.
    cluster.statuses[("lieutenants", "api")] = [
        {"phase": "Paused", "vmNodeName": "api", "tasks": [{"name": "t", "phase": "Pending"}]},
        {"phase": "Idle", "vmNodeName": "api", "tasks": [{"name": "t", "phase": "Succeeded"}],
         "history": [{"task": "t", "response": "done"}]}]
    assert run(capsys, "read", "api", "--follow", "--timeout", "5") == (
        0, "done\n", "[lieutenant api is paused: task t starts after it resumes]\n")
