"""TaskRecords (lieutenants/records.py, api/taskrecord.py): their names, their bounds,
what a task's run puts in one, when they are written and how many are kept."""

from __future__ import annotations

import datetime
import re
from typing import Any

import pytest

from reef_operator.api.schema import DNS_LABEL
from reef_operator.api.taskrecord import (
    ANSWER_LIMIT,
    MAX_TOOL_CALLS,
    TOOL_ARGUMENTS_LIMIT,
    record_name,
)
from reef_operator.constants import LABEL_COMPLETED_DAY, LABEL_LIEUTENANT, LABEL_TASK
from reef_operator.lieutenants.ledger import Ledger
from reef_operator.lieutenants.protocol import SessionProtocol
from reef_operator.lieutenants.records import (
    FinishedTask,
    RecordKeeper,
    Retention,
    Transcript,
    record_object,
)
from reef_operator.lieutenants.status import StatusWriter
from tests.unit.fake_status_kube import FakeStatusKube

NOW = datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC)


def _user(text: str) -> dict[str, Any]:
    return {"type": "message_end",
            "message": {"role": "user", "content": [{"type": "text", "text": text}]}}


def _assistant(text: str, stop: str = "stop", tokens: int = 5) -> dict[str, Any]:
    return {"type": "message_end", "message": {
        "role": "assistant", "content": [{"type": "text", "text": text}], "stopReason": stop,
        "usage": {"input": tokens, "output": tokens, "cost": {"total": tokens / 100}}}}


def _tool(kind: str, call: str, name: str = "bash", args: Any = None,
          error: bool = False) -> dict[str, Any]:
    if kind == "start":
        return {"type": "tool_execution_start", "toolCallId": call, "toolName": name,
                "args": args if args is not None else {"command": "ls"}}
    return {"type": "tool_execution_end", "toolCallId": call, "toolName": name,
            "result": {}, "isError": error}


# -- names ----------------------------------------------------------------------------------

def test_a_record_name_is_a_stable_dns_label_of_at_most_63_characters() -> None:
    name = record_name("api", "task-1")
    assert name == record_name("api", "task-1")
    assert name.startswith("api-task-1-") and re.match(DNS_LABEL, name)
    long = record_name("l" * 63, "t" * 63)
    assert len(long) <= 63 and re.match(DNS_LABEL, long)
    assert long != record_name("l" * 63, "t" * 62 + "u")      # the hash tells them apart


def test_names_that_join_alike_get_different_records() -> None:
    assert record_name("a-b", "c") != record_name("a", "b-c")


# -- the transcript -------------------------------------------------------------------------

def test_the_transcript_keeps_all_narration_and_each_tool_call_with_its_outcome() -> None:
    transcript = Transcript()
    for event in (_assistant("Looking around."), _tool("start", "c1"),
                  _tool("start", "c2", "read", {"path": "a.txt"}),
                  _tool("end", "c2", "read", error=True), _tool("end", "c1"),
                  _assistant("Found it."), _user("ignored")):
        transcript.feed(event)
    assert transcript.answer == "Looking around.\n\nFound it."
    assert transcript.tool_calls == [
        {"name": "bash", "arguments": '{"command": "ls"}', "ok": True},
        {"name": "read", "arguments": '{"path": "a.txt"}', "ok": False}]
    assert not transcript.truncated


def test_the_answer_is_cut_at_256_kib_of_utf8_never_inside_a_character() -> None:
    transcript = Transcript()
    chunk = "é" * 40_000                                       # 80,000 bytes each
    for _ in range(4):
        transcript.feed(_assistant(chunk))
    encoded = transcript.answer.encode()
    assert len(encoded) <= ANSWER_LIMIT and len(encoded) > ANSWER_LIMIT - 4
    assert transcript.truncated
    transcript.feed(_assistant("more"))                        # nothing more is held
    assert len(transcript.answer.encode()) == len(encoded)


def test_tool_calls_are_bounded_in_number_and_argument_size() -> None:
    transcript = Transcript()
    transcript.feed(_tool("start", "big", args={"content": "x" * 10_000}))
    for index in range(MAX_TOOL_CALLS + 5):
        transcript.feed(_tool("start", f"c{index}"))
    assert len(transcript.tool_calls) == MAX_TOOL_CALLS and transcript.tool_calls_dropped
    assert len(transcript.tool_calls[0]["arguments"]) == TOOL_ARGUMENTS_LIMIT + 1
    assert transcript.tool_calls[0]["arguments"].endswith("…")
    assert "ok" not in transcript.tool_calls[1]                # its end was never seen


# -- from pi's events to a finished record --------------------------------------------------

def _protocol(*names: str) -> SessionProtocol:
    """A session whose tasks `names` (message "do <name>") were all sent, in order."""
    spec = {"tasks": [{"name": n, "message": f"do {n}"} for n in names]}
    protocol = SessionProtocol(Ledger.load(spec, {}))
    for task in protocol.ledger.tasks:
        protocol.ledger.mark_sent(task, "prompt", f"task-{task.name}")
    return protocol


def test_a_finished_task_leaves_a_record_with_its_whole_run_and_history_its_last_text() -> None:
    protocol = _protocol("a", "b")
    ledger = protocol.ledger
    for event in (_user("do a"), _assistant("Step one."), _tool("start", "c1"),
                  _tool("end", "c1"), _assistant("All done.", tokens=7),
                  _user("do b"), _assistant("B.")):
        protocol.feed(event)
    assert [f.task for f in ledger.finished] == ["a"]          # b still runs
    record = ledger.finished[0]
    assert record.transcript.answer == "Step one.\n\nAll done."
    assert [c["name"] for c in record.transcript.tool_calls] == ["bash"]
    assert record.phase == "Succeeded" and record.usage["outputTokens"] == 12
    assert ledger.history[-1]["response"] == "All done."
    ledger.settle()
    assert [f.transcript.answer for f in ledger.finished] == ["Step one.\n\nAll done.", "B."]


def test_a_task_pi_refused_still_gets_a_record_saying_why() -> None:
    protocol = _protocol("a")
    ledger = protocol.ledger
    ledger.fail_queued("task-a", "no API key")
    assert [(f.task, f.phase, f.note) for f in ledger.finished] == [("a", "Failed",
                                                                    "no API key")]


def test_a_task_running_when_its_lieutenant_is_destroyed_ends_aborted_with_a_record() -> None:
    protocol = _protocol("a")
    ledger = protocol.ledger
    for event in (_user("do a"), _assistant("Halfway there.", stop="toolUse")):
        protocol.feed(event)
    ledger.abandon("the lieutenant was destroyed while the task ran")
    assert ledger.running is None and ledger.tasks[0].phase == "Aborted"
    [record] = ledger.finished
    assert (record.phase, record.note, record.transcript.answer) == (
        "Aborted", "the lieutenant was destroyed while the task ran", "Halfway there.")
    assert ledger.status()["tasks"][0]["phase"] == "Aborted"
    ledger.abandon("again")                      # nothing runs any more: nothing changes
    assert len(ledger.finished) == 1


def test_the_record_object_is_owned_labelled_and_named_for_its_task() -> None:
    finished = FinishedTask("t1", "prompt", "do it", "Succeeded", "2026-01-01T00:00:00Z",
                            None, "2026-01-01T00:01:00Z", "stop", "", {"cost": 0.1},
                            Transcript())
    body = record_object("team", "api", "uid-1", finished)
    meta = body["metadata"]
    assert meta["name"] == record_name("api", "t1")
    assert meta["labels"] == {LABEL_LIEUTENANT: "api", LABEL_TASK: "t1",
                              LABEL_COMPLETED_DAY: "2026-01-01"}
    assert meta["ownerReferences"][0]["uid"] == "uid-1"
    assert "startedAt" not in body["spec"] and "note" not in body["spec"]


# -- retention ------------------------------------------------------------------------------

def test_retention_deletes_the_oldest_beyond_max_records_and_those_too_old() -> None:
    kept = [("2026-05-01T00:00:00Z", "a"), ("2026-05-20T00:00:00Z", "b"),
            ("2026-05-30T00:00:00Z", "c"), ("2026-05-31T00:00:00Z", "d")]
    assert Retention(max_records=2).expired(kept, NOW) == ["a", "b"]
    assert Retention(max_records=10, max_age_days=5).expired(kept, NOW) == ["a", "b"]
    assert Retention(max_records=3, max_age_days=30).expired(kept, NOW) == ["a"]
    assert Retention.from_spec({}) == Retention(1000, None)
    assert Retention.from_spec({"taskRecords": {"maxRecords": 2, "maxAgeDays": 7}}) == \
        Retention(2, 7)



def _finished(task: str, completed: str) -> FinishedTask:
    return FinishedTask(task, "prompt", "m", "Succeeded", None, None, completed, "stop", "",
                        {}, Transcript())


async def test_the_keeper_lists_once_writes_each_record_once_and_trims_the_oldest() -> None:
    old = record_object("ns", "api", "u", _finished("old", "2026-01-01T00:00:00Z"))
    kube = FakeStatusKube([old])
    keeper = RecordKeeper(kube, "ns", "api", "u")
    pending = [_finished("t1", "2026-02-01T00:00:00Z"), _finished("t1", "2026-02-01T00:00:00Z")]
    await keeper.write(pending, Retention(max_records=2))
    assert pending == []
    await keeper.write([_finished("t2", "2026-03-01T00:00:00Z")], Retention(max_records=2))
    assert sorted(kube.records) == sorted([record_name("api", "t1"), record_name("api", "t2")])
    assert kube.calls.count("list") == 1
    assert kube.calls.count(f"create {record_name('api', 't1')}") == 2   # AlreadyExists: done
    assert kube.calls[-1] == f"delete {record_name('api', 'old')}"


async def test_a_record_is_created_before_the_status_saying_its_task_ended() -> None:
    kube = FakeStatusKube()
    rt = type("Rt", (), {"kube": kube, "vmnode_bodies": {},
                         "post_event": lambda *a: None})()
    body: dict[str, Any] = {"metadata": {"name": "api", "namespace": "ns", "uid": "u"},
                            "spec": {"tasks": [{"name": "a", "message": "do a"}]}}
    ledger = Ledger.load(body["spec"], {})
    writer = StatusWriter(rt, body, ledger, deleting=lambda: False)
    task = ledger.get("a")
    assert task is not None
    ledger.mark_sent(task, "prompt", "task-a")
    ledger.user_message("do a")
    ledger.settle()
    kube.refuse_records = True           # the record cannot be written: nor is the status
    with pytest.raises(OSError):
        await writer.flush(force=True)
    assert "patch_status" not in kube.calls and len(ledger.finished) == 1
    kube.refuse_records = False
    await writer.flush(force=True)
    assert kube.calls[-2:] == [f"create {record_name('api', 'a')}", "patch_status"]
    assert ledger.finished == []


def test_a_replayed_event_restores_the_transcript_and_task_usage_only() -> None:
    spec = {"tasks": [{"name": "a", "message": "do a"}]}
    status = {"tasks": [{"name": "a", "phase": "Running"}],
              "currentTask": {"name": "a", "eventOffset": 10},
              "usage": {"outputTokens": 5, "cost": 0.05}}
    ledger = Ledger.load(spec, status)
    assert not ledger.transcript_whole
    ledger.replay(_assistant("Before the crash.", tokens=5))
    ledger.replay(_tool("start", "c1"))
    protocol = SessionProtocol(ledger)
    protocol.feed(_tool("end", "c1"))
    protocol.feed(_assistant("After it.", tokens=3))
    ledger.settle()
    record = ledger.finished[0]
    assert record.transcript.answer == "Before the crash.\n\nAfter it."
    assert record.transcript.tool_calls[0]["ok"] is True
    assert record.usage["outputTokens"] == 8              # the whole task's
    assert ledger.usage.output_tokens == 8                # the session's: 5 written + 3 read


def test_text_that_utf8_cannot_carry_is_replaced_not_fatal() -> None:
    transcript = Transcript()
    transcript.feed(_assistant("half a pair \ud800 here"))
    transcript.feed(_tool("start", "c1", "to\udfffol", {"x": "\ud800"}))
    assert transcript.answer == "half a pair ? here"
    assert transcript.tool_calls[0] == {"name": "to?ol", "arguments": '{"x": "?"}'}
    transcript.answer.encode()                                  # writable as JSON/UTF-8
