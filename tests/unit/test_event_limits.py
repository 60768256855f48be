"""What a VM writes into pi's event log is bounded before the operator holds it: the line
splitter's cap (its linear cost is shown by bench/framing.py), JSON decoding's depth
limit, usage numbers validated before they reach status or metrics, and the note each
refusal leaves on the task."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from reef_operator.agent.events import MAX_MESSAGE_TOKENS, message_usage
from reef_operator.agent.framing import (
    MAX_EVENT_LINE,
    MAX_JSON_DEPTH,
    LineSplitter,
    Oversized,
    Rejected,
    decode,
)
from reef_operator.lieutenants.ledger import Ledger


def test_records_split_at_newlines_only_whatever_the_chunking() -> None:
    data = b'{"a":1}\n{"b":"x\xe2\x80\xa8y"}\n{"c":'
    for size in (1, 3, len(data)):
        splitter = LineSplitter(100)
        got = [item for i in range(0, len(data), size)
               for item in splitter.feed(data[i:i + size])]
        assert got == [(b'{"a":1}', 108), (b'{"b":"x\xe2\x80\xa8y"}', 122)]
        assert splitter.buffered == 5 and splitter.offset == 122


def test_a_line_over_the_cap_is_discarded_as_it_streams_and_reported_at_its_end() -> None:
    splitter = LineSplitter(limit=10)
    got: list[tuple[bytes | Oversized, int]] = []
    for _ in range(1000):                       # a 100,000-byte line in 100-byte chunks
        got += splitter.feed(b"x" * 100)
        assert splitter.buffered <= 10          # never held beyond the cap
    got += splitter.feed(b'\n{"ok":1}\n')
    assert got == [(Oversized(100_000), 100_001), (b'{"ok":1}', 100_010)]
    # A line exactly at the cap is a record.
    assert list(LineSplitter(limit=10).feed(b"y" * 10 + b"\n")) == [(b"y" * 10, 11)]


def test_the_cap_holds_the_largest_legitimate_record() -> None:
    """An agent_end repeating a run of 200 tool results of pi's 50 KB cut and a model
    answer at a 128k-token output limit (in 3-byte characters) fits under the cap."""
    tool = {"role": "toolResult", "content": [{"type": "text", "text": "r" * 50_000}]}
    answer = {"role": "assistant", "content": [{"type": "text", "text": "語" * 512_000}]}
    event = json.dumps({"type": "agent_end", "messages": [tool] * 200 + [answer]},
                       ensure_ascii=False).encode()
    assert len(event) < MAX_EVENT_LINE


def test_decoding_refuses_deep_nesting_non_objects_and_broken_json() -> None:
    deep = b'{"type":"x","a":' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    assert isinstance(decode(deep), Rejected)
    just_over = b'{"a":' + b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH + b"}"
    assert "deeper than 64" in _reason(decode(just_over))
    at_limit = b'{"a":' + b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1) + b"}"
    assert isinstance(decode(at_limit), dict)
    assert "not a JSON object" in _reason(decode(b"[1]"))
    assert "not valid JSON" in _reason(decode(b'{"a":'))
    assert "not valid JSON" in _reason(decode(b'{"a":' + b"9" * 5000 + b"}"))  # huge int
    assert "not UTF-8" in _reason(decode(b'{"a":"\xff"}'))


def _reason(result: dict[str, Any] | Rejected) -> str:
    assert isinstance(result, Rejected)
    return result.reason


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, -1, MAX_MESSAGE_TOKENS + 1,
                                 "12", True, [1]])
def test_usage_numbers_out_of_bounds_are_dropped_and_named(bad: Any) -> None:
    usage = message_usage({"usage": {"input": bad, "output": 9, "cost": {"total": bad}}})
    assert (usage.input, usage.output, usage.cost) == (0, 9, 0.0)
    assert usage.dropped == ("usage.input", "usage.cost.total")
    assert "usage.input, usage.cost.total" in usage.note()


def test_nan_usage_from_the_event_log_leaves_status_clean_and_notes_the_task() -> None:
    """NaN and Infinity are read as JSON numbers (Python's json does), then validated."""
    ledger = Ledger.load({"tasks": [{"name": "one", "message": "hi"}]}, {})
    ledger.mark_sent(ledger.tasks[0], "prompt", "task-one")
    ledger.user_message("hi")
    event = decode(b'{"type":"message_end","message":{"role":"assistant","content":'
                   b'[{"type":"text","text":"ok"}],"usage":{"input":NaN,"output":5,'
                   b'"cacheRead":Infinity,"cost":{"total":-1e400}}}}')
    assert isinstance(event, dict)
    ledger.assistant_message(event["message"])
    status = ledger.status()
    assert status["usage"] == {"inputTokens": 0, "outputTokens": 5, "cacheReadTokens": 0,
                               "cacheWriteTokens": 0, "cost": 0.0}
    json.dumps(status, allow_nan=False)       # what the apiserver would accept
    assert "usage.input, usage.cacheRead, usage.cost.total" in status["tasks"][0]["note"]


def test_a_refused_record_is_noted_on_the_running_task_else_the_last_delivered() -> None:
    ledger = Ledger.load({"tasks": [{"name": "one", "message": "a"},
                                    {"name": "two", "message": "b"}]}, {})
    ledger.note("nothing runs: kept nowhere")
    assert all(not t.note for t in ledger.tasks)
    ledger.mark_sent(ledger.tasks[0], "prompt", "task-one")
    ledger.note("an event line of 300 bytes was skipped")
    assert ledger.tasks[0].note == "an event line of 300 bytes was skipped"
    ledger.user_message("a")
    ledger.mark_sent(ledger.tasks[1], "prompt", "task-two")
    ledger.note("an event nested deeper than 64 levels was skipped")
    assert ledger.status()["tasks"][0]["note"] == \
        "an event nested deeper than 64 levels was skipped"
    assert not ledger.tasks[1].note
