"""pi compacting a long conversation, as the lieutenant sees it: the protocol keeps the
task running until pi confirms the compaction is over (lieutenants/protocol.py), reads
what a `compaction_end` says, bounded (agent/events.py), and the status writer counts it
in `status.session.compactions` and posts its Event once written (lieutenants/status.py).
The e2e suite drives real pi through a compaction (tests/e2e/test_compaction.py)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from reef_operator.agent.events import MAX_COMPACTION_ERROR, Compaction, compaction_of
from reef_operator.lieutenants.ledger import Ledger
from reef_operator.lieutenants.protocol import Delivery, SessionProtocol, Wait
from reef_operator.lieutenants.status import StatusWriter
from tests.unit.fake_status_kube import FakeStatusHost

IDLE = {"isStreaming": False, "isCompacting": False}
COMPACTING = {"isStreaming": False, "isCompacting": True}


def _protocol(*names: str) -> SessionProtocol:
    counter = itertools.count(1)
    spec = {"tasks": [{"name": n, "mode": "prompt", "message": f"do {n}"} for n in names]}
    protocol = SessionProtocol(Ledger.load(spec, {}), new_id=lambda p: f"{p}-{next(counter)}")
    handshake = protocol.attach()
    protocol.feed({"type": "response", "id": handshake["id"], "success": True, "data": IDLE})
    return protocol


def _response(command: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": "response", "id": command, "command": "get_state", "success": True,
            "data": data}


def _ran(protocol: SessionProtocol, message: str, answer: str) -> list[str]:
    """One run from its user message to agent_end; the settle questions it asked."""
    events: list[dict[str, Any]] = [
        {"type": "agent_start"},
        {"type": "message_end", "message": {"role": "user",
                                            "content": [{"type": "text", "text": message}]}},
        {"type": "message_end", "message": {"role": "assistant", "stopReason": "stop",
                                            "content": [{"type": "text", "text": answer}]}},
        {"type": "agent_end", "messages": []}]
    return [c["id"] for e in events for c in protocol.feed(e).send]


def _compaction_end(**fields: Any) -> dict[str, Any]:
    return {"type": "compaction_end", "reason": "threshold", "aborted": False,
            "willRetry": False, **fields}


DONE = {"result": {"summary": "the summary", "firstKeptEntryId": "e1", "tokensBefore": 18_000}}


def test_the_task_holds_working_until_the_compaction_after_its_run_is_over() -> None:
    protocol = _protocol("one", "two")
    assert isinstance(protocol.next_delivery(), Delivery)
    asked = _ran(protocol, "do one", "One done.")
    # pi compacts after agent_end: the question asked at agent_end is answered while it
    # compacts, and whatever it says, the run is not over.
    protocol.feed({"type": "compaction_start", "reason": "threshold"})
    for data in (COMPACTING, IDLE):
        assert not protocol.feed(_response(asked[0], data)).settled
    task = protocol.ledger.tasks[0]
    assert task.phase == "Running" and protocol.working
    assert isinstance(protocol.next_delivery(), Wait)      # the next task waits for it

    ended = protocol.feed(_compaction_end(**DONE))
    assert ended.compacted == Compaction(True, "threshold", 18_000, "")
    assert task.phase == "Running"                         # settled only once pi confirms
    settle = [c["id"] for c in ended.send]
    assert len(settle) == 1
    assert protocol.feed(_response(settle[0], IDLE)).settled
    assert task.phase == "Succeeded"
    assert protocol.ledger.history[-1]["response"] == "One done."   # not the summary
    assert isinstance(protocol.next_delivery(), Delivery)


def test_a_compaction_that_retries_keeps_the_task_running_into_the_next_run() -> None:
    protocol = _protocol("one")
    protocol.next_delivery()
    _ran(protocol, "do one", "")
    protocol.feed({"type": "compaction_start", "reason": "overflow"})
    ended = protocol.feed(_compaction_end(reason="overflow", willRetry=True, **DONE))
    assert ended.compacted is not None and ended.compacted.reason == "overflow"
    assert ended.send == () and protocol.activity == "working"   # another run follows
    assert protocol.ledger.tasks[0].phase == "Running"


@pytest.mark.parametrize(("event", "expected"), [
    (_compaction_end(**DONE), Compaction(True, "threshold", 18_000, "")),
    (_compaction_end(aborted=True, **DONE), Compaction(False, "threshold", 18_000, "")),
    (_compaction_end(result=None), Compaction(False, "threshold", None, "")),
    (_compaction_end(errorMessage="Auto-compaction failed: 529"),
     Compaction(False, "threshold", None, "Auto-compaction failed: 529")),
    # The VM writes the event: whatever is not what pi sends is dropped, not held.
    (_compaction_end(reason="x" * 10_000, result={"tokensBefore": float("nan")}),
     Compaction(True, "", None, "")),
    (_compaction_end(result={"tokensBefore": 10**12}, errorMessage=["not", "text"]),
     Compaction(True, "threshold", None, "")),
    (_compaction_end(result={"tokensBefore": True}), Compaction(True, "threshold", None, "")),
])
def test_what_a_compaction_end_says_bounded(event: dict[str, Any], expected: Compaction) -> None:
    assert compaction_of(event) == expected


def test_a_long_error_is_cut() -> None:
    found = compaction_of(_compaction_end(errorMessage="e" * 100_000))
    assert found is not None and len(found.error) == MAX_COMPACTION_ERROR
    assert compaction_of({"type": "agent_end"}) is None



async def test_compactions_are_counted_in_status_and_announced_once_written() -> None:
    rt = FakeStatusHost()
    body: dict[str, Any] = {"metadata": {"name": "api", "namespace": "u1", "generation": 1},
                            "spec": {}, "status": {"session": {"compactions": 2}}}
    writer = StatusWriter(rt, body, Ledger.load({}, {}), deleting=lambda: False)
    for event in (_compaction_end(**DONE), _compaction_end(aborted=True, **DONE),
                  _compaction_end(errorMessage="Auto-compaction failed: overloaded")):
        found = compaction_of(event)
        assert found is not None
        writer.compacted(found)
    assert rt.events == []                                   # nothing before the write
    await writer.flush(force=True)
    assert rt.kube.patches[-1]["session"]["compactions"] == 3   # the aborted one is not one
    assert rt.events == [
        ("Normal", "SessionCompacted", "pi compacted the conversation from 18,000 tokens (the "
         "context neared the model's window): older messages are replaced by a summary that "
         "the next task still carries"),
        ("Warning", "CompactionFailed",
         "pi could not compact the conversation: Auto-compaction failed: overloaded")]
    await writer.flush(force=True)
    assert len(rt.events) == 2                               # announced once
