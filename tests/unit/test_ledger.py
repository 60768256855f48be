"""The task ledger (lieutenants/ledger.py): what was asked, delivered and answered, as
status.tasks, currentTask, history, taskCount and usage say it."""

from __future__ import annotations

from typing import Any

from reef_operator.lieutenants.ledger import OUTPUT_TAIL, RESPONSE_LIMIT, Ledger


def _spec(*names: str, **extra: Any) -> dict[str, Any]:
    return {"tasks": [{"name": n, "message": f"do {n}"} for n in names], **extra}


def _answer(text: str, stop: str = "stop", tokens: int = 0) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"type": "text", "text": text}],
            "stopReason": stop, "usage": {"input": tokens, "output": tokens,
                                          "cacheRead": 10 * tokens, "cacheWrite": tokens // 2,
                                          "cost": {"total": tokens / 100}}}


def _sent(ledger: Ledger, name: str) -> None:
    task = ledger.get(name)
    assert task is not None
    ledger.mark_sent(task, "prompt", f"task-{name}")


def test_a_fresh_ledger_has_every_spec_task_pending_in_order() -> None:
    ledger = Ledger.load(_spec("a", "b"), {})
    assert [(t.name, t.mode, t.phase) for t in ledger.tasks] == [("a", "prompt", "Pending"),
                                                                 ("b", "prompt", "Pending")]
    assert ledger.next_pending() is ledger.tasks[0]
    assert ledger.status()["taskCount"] == 0
    assert ledger.status()["currentTask"] is None


def test_loading_picks_up_where_the_written_status_left_off() -> None:
    status = {"tasks": [{"name": "a", "phase": "Succeeded", "sentAt": "2026-01-01T00:00:00Z",
                         "completedAt": "2026-01-01T00:01:00Z", "commandId": "task-a"},
                        {"name": "b", "phase": "Running", "note": "n"}],
              "currentTask": {"name": "b", "startedAt": "2026-01-01T00:02:00Z",
                              "output": "half"},
              "history": [{"task": "a"}],
              "usage": {"inputTokens": 5, "outputTokens": 6, "cacheReadTokens": 7,
                        "cacheWriteTokens": 8, "cost": 0.5}}
    ledger = Ledger.load(_spec("a", "b", "c"), status)
    assert [t.phase for t in ledger.tasks] == ["Succeeded", "Running", "Pending"]
    assert ledger.running == "b"
    assert ledger.status()["currentTask"] == {"name": "b", "mode": "prompt",
                                              "startedAt": "2026-01-01T00:02:00Z",
                                              "output": "half"}
    assert ledger.status()["usage"] == {"inputTokens": 5, "outputTokens": 6,
                                        "cacheReadTokens": 7, "cacheWriteTokens": 8,
                                        "cost": 0.5}
    assert ledger.status()["taskCount"] == 2
    assert ledger.next_pending() is ledger.tasks[2]


def test_tasks_appended_to_the_spec_join_at_the_end() -> None:
    ledger = Ledger.load(_spec("a"), {})
    _sent(ledger, "a")
    ledger.sync_spec(_spec("a", "b", historyLimit=3))
    assert [t.name for t in ledger.tasks] == ["a", "b"]
    assert ledger.tasks[0].phase == "Queued"             # known tasks keep their state
    assert ledger.history_limit == 3


def test_a_user_message_starts_the_task_it_carries() -> None:
    ledger = Ledger.load(_spec("a", "b"), {})
    _sent(ledger, "a")
    _sent(ledger, "b")
    ledger.user_message("do b")
    assert ledger.running == "b"
    assert [t.phase for t in ledger.tasks] == ["Queued", "Running"]
    assert [(change, t.name) for change, t in ledger.drain()] == [("started", "b")]
    assert ledger.drain() == []                            # each transition once


def test_the_running_task_says_where_its_events_begin_and_keeps_it_across_a_reload() -> None:
    ledger = Ledger.load(_spec("a"), {})
    _sent(ledger, "a")
    ledger.user_message("do a", 4096)
    assert ledger.status()["currentTask"]["eventOffset"] == 4096
    reloaded = Ledger.load(_spec("a"), ledger.status())
    assert reloaded.status()["currentTask"]["eventOffset"] == 4096


def test_a_message_nobody_sent_is_ignored() -> None:
    ledger = Ledger.load(_spec("a"), {})
    ledger.user_message("typed into the VM by hand")
    assert ledger.running is None
    assert ledger.tasks[0].phase == "Pending"


def test_the_next_delivered_message_ends_the_running_task() -> None:
    ledger = Ledger.load(_spec("a", "b"), {})
    _sent(ledger, "a")
    ledger.user_message("do a")
    ledger.assistant_message(_answer("A is done", tokens=3))
    _sent(ledger, "b")
    ledger.user_message("do b")                            # a steer: a's run goes on as b
    assert [t.phase for t in ledger.tasks] == ["Succeeded", "Running"]
    assert ledger.history[-1]["response"] == "A is done"
    assert ledger.history[-1]["usage"]["inputTokens"] == 3


def test_settling_ends_the_task_with_its_last_answer_and_usage() -> None:
    ledger = Ledger.load(_spec("a"), {})
    _sent(ledger, "a")
    ledger.user_message("do a")
    ledger.text("Work")
    ledger.text("ing")
    assert ledger.status()["currentTask"]["output"] == "Working"
    ledger.assistant_message(_answer("first", tokens=2))
    ledger.assistant_message(_answer("  final  ", tokens=4))
    ledger.settle()
    task = ledger.tasks[0]
    assert task.phase == "Succeeded" and task.completed_at
    assert ledger.running is None
    assert ledger.status()["currentTask"] is None
    entry = ledger.history[-1]
    assert entry["task"] == "a" and entry["response"] == "final"
    assert entry["usage"] == {"inputTokens": 6, "outputTokens": 6, "cacheReadTokens": 60,
                              "cacheWriteTokens": 3, "cost": 0.06}
    assert ledger.usage.input_tokens == 6 and ledger.usage.cache_read_tokens == 60
    assert [change for change, _ in ledger.drain()] == ["started", "ended"]


def test_an_error_without_text_is_the_answer() -> None:
    ledger = Ledger.load(_spec("a"), {})
    _sent(ledger, "a")
    ledger.user_message("do a")
    ledger.settle(final_error="model overloaded")
    assert ledger.tasks[0].phase == "Failed"
    assert ledger.tasks[0].note == "model overloaded"
    assert ledger.history[-1]["response"] == "error: model overloaded"


def test_settling_with_nothing_running_changes_nothing() -> None:
    ledger = Ledger.load(_spec("a"), {})
    ledger.settle()
    assert ledger.history == [] and ledger.drain() == []


def test_a_refused_command_fails_its_task() -> None:
    ledger = Ledger.load(_spec("a"), {})
    _sent(ledger, "a")
    ledger.fail_queued("task-a", "No API key")
    task = ledger.tasks[0]
    assert (task.phase, task.note) == ("Failed", "No API key")
    assert ledger.any_finished()
    ledger.fail_queued("task-a", "again")                 # an ended task stays as it ended
    assert task.note == "No API key"


def test_long_output_and_responses_are_cut_to_their_limits() -> None:
    ledger = Ledger.load(_spec("a"), {})
    _sent(ledger, "a")
    ledger.user_message("do a")
    ledger.text("x" * (OUTPUT_TAIL + 10) + "END")
    assert len(ledger.output) == OUTPUT_TAIL and ledger.output.endswith("END")
    ledger.assistant_message(_answer("y" * (RESPONSE_LIMIT + 1)))
    ledger.settle()
    entry = ledger.history[-1]
    assert len(entry["response"]) == RESPONSE_LIMIT and entry["truncated"] is True


def test_history_keeps_the_last_entries_up_to_its_limit() -> None:
    for limit, kept in ((2, ["b", "c"]), (0, [])):
        ledger = Ledger.load(_spec("a", "b", "c", historyLimit=limit), {})
        for name in ("a", "b", "c"):
            _sent(ledger, name)
            ledger.user_message(f"do {name}")
            ledger.settle()
        assert [e["task"] for e in ledger.history] == kept
        assert ledger.status()["taskCount"] == 3


def test_sent_tasks_say_when_and_how() -> None:
    ledger = Ledger.load(_spec("a"), {})
    task = ledger.tasks[0]
    ledger.mark_sent(task, "steer", "task-a", note="queued")
    first = task.sent_at
    ledger.mark_sent(task, "steer", "task-a")             # a resend keeps the first time
    assert task.sent_at == first
    assert task.status() == {"name": "a", "mode": "prompt", "phase": "Queued",
                             "sentAt": first, "note": "queued", "commandId": "task-a"}
