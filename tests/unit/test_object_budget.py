"""The Lieutenant's status stays within its share of the object's budget (api/budget.py):
history bounded by bytes, a bounded window of finished tasks, every write measured and
trimmed (lieutenants/trimming.py, lieutenants/status.py), and no finished task ever
delivered again (lieutenants/ledger.py)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from reef_operator.api.budget import (
    FINISHED_WINDOW,
    HISTORY_BUDGET,
    STATUS_BUDGET,
    stored_bytes,
)
from reef_operator.kube.api import is_too_large
from reef_operator.lieutenants.delivery import command_id
from reef_operator.lieutenants.ledger import REUSED_NOTE, Ledger
from reef_operator.lieutenants.protocol import Delivery, SessionProtocol
from reef_operator.lieutenants.status import StatusWriter
from reef_operator.lieutenants.trimming import NOTE_FLOOR, fit
from tests.unit.fake_status_kube import FakeStatusHost, FakeStatusKube


def _names(count: int, width: int = 63) -> list[str]:
    return [f"t{i:04d}".ljust(width, "x") for i in range(count)]


def _spec(*names: str, **extra: Any) -> dict[str, Any]:
    return {"tasks": [{"name": n, "message": f"do {n}"} for n in names], **extra}


def _answer(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"type": "text", "text": text}],
            "stopReason": "stop", "usage": {"input": 1, "output": 1}}


def _run(ledger: Ledger, name: str, answer: str = "done") -> None:
    task = ledger.get(name)
    assert task is not None
    ledger.mark_sent(task, "prompt", command_id(name))
    ledger.user_message(task.message)
    ledger.assistant_message(_answer(answer))
    ledger.settle()




def _writer(spec: dict[str, Any], status: dict[str, Any], kube: FakeStatusKube
            ) -> tuple[StatusWriter, Ledger]:
    body = {"metadata": {"name": "api", "namespace": "n", "generation": 1},
            "spec": spec, "status": status}
    ledger = Ledger.load(spec, status)
    return StatusWriter(FakeStatusHost(kube), body, ledger, deleting=lambda: False), ledger


def _worst_status(names: list[str], retired: list[str]) -> dict[str, Any]:
    """The largest status the schema admits for these tasks, as an older operator could
    have left it: every task sent with a 4096-character note of 2-byte characters, 100
    history answers of 65536 3-byte characters, a 65536-character output tail."""
    return {
        "tasks": [{"name": n, "phase": "Succeeded", "note": "é" * 4096} for n in retired] + [
            {"name": n, "mode": "followUp", "phase": "Queued", "note": "é" * 4096,
             "sentAt": "2026-01-01T00:00:00Z", "commandId": command_id(n)} for n in names],
        "history": [{"task": f"old-{i}", "completedAt": "2026-01-01T00:00:00Z",
                     "stopReason": "stop", "response": "語" * 65536, "truncated": True}
                    for i in range(100)],
        "currentTask": {"name": names[0], "mode": "followUp", "output": "語" * 65536},
        "taskCount": len(names) + len(retired),
    }


async def test_the_worst_case_the_schema_admits_is_written_within_the_status_share() -> None:
    names, retired = _names(1000), _names(FINISHED_WINDOW, 62)
    spec = _spec(*names, historyLimit=100)
    status = _worst_status(names, retired)
    assert stored_bytes(status) > 20 * STATUS_BUDGET     # unbounded, it would be ~20 MiB
    kube = FakeStatusKube()
    writer, ledger = _writer(spec, status, kube)
    ledger.running = names[0]
    await writer.flush(force=True)
    [written] = kube.patches
    assert stored_bytes(written) <= STATUS_BUDGET
    # Every task still in the spec is named, with its phase: none can be delivered twice.
    assert [t["name"] for t in written["tasks"]] == names
    assert {t["phase"] for t in written["tasks"]} == {"Queued"}
    assert written["taskCount"] == 1100


def test_history_is_bounded_by_bytes_as_well_as_by_historyLimit_oldest_first() -> None:
    names = _names(40, 8)
    ledger = Ledger.load(_spec(*names, historyLimit=100), {})
    for i, name in enumerate(names):
        _run(ledger, name, f"{i} " + "ü語" * 6000)   # 12 K characters, 30 KB of UTF-8
    kept = ledger.status()["history"]
    assert stored_bytes(kept) <= HISTORY_BUDGET
    assert kept[-1]["task"] == names[-1] and kept[-1]["response"].startswith("39 ")
    assert [h["task"] for h in kept] == names[-len(kept):]
    assert len(kept) == 2                           # two of 30 KB fit, a third does not

    small = Ledger.load(_spec(*names, historyLimit=3), {})
    for name in names:
        _run(small, name, "short")
    assert [h["task"] for h in small.status()["history"]] == names[-3:]


def test_an_over_budget_status_loses_oldest_history_first_then_the_window_then_notes() -> None:
    history = [{"task": f"h{i}", "response": "r" * 10_000} for i in range(10)]
    tasks = ([{"name": f"old{i}", "phase": "Succeeded"} for i in range(50)] +
             [{"name": "q", "phase": "Queued", "note": "n" * 1000}])
    status = {"tasks": tasks, "history": history,
              "currentTask": {"name": "q", "output": "o" * 5000}}
    whole = stored_bytes(status)

    # 15 KB over: the three oldest answers go, nothing else.
    fitted, trimmed = fit(status, whole - 25_000, window=50)
    assert [h["task"] for h in fitted["history"]] == [f"h{i}" for i in range(3, 10)]
    assert fitted["tasks"] == tasks and trimmed == ["3 oldest history entries"]

    # Past every answer but the newest: the window goes, oldest first.
    fitted, trimmed = fit(status, whole - 90_000 - 1000, window=50)
    assert [h["task"] for h in fitted["history"]] == ["h9"]
    assert fitted["tasks"][0]["name"] != "old0" and fitted["tasks"][-1]["name"] == "q"
    assert fitted["tasks"][-1]["note"] == "n" * 1000
    assert trimmed[0] == "9 oldest history entries" and "no longer in the spec" in trimmed[1]

    # Past the window: notes, then the output tail; the newest answer last of all.
    fitted, trimmed = fit(status, whole - 90_000 - 3000 - 1000, window=50)
    assert [t["name"] for t in fitted["tasks"]] == ["q"]
    assert fitted["tasks"][0]["note"] == "n" * NOTE_FLOOR
    assert fitted["history"][0]["response"] == "r" * 10_000
    assert stored_bytes(fitted) <= whole - 94_000
    assert "1 notes" in trimmed and "the output tail" in trimmed

    fitted, trimmed = fit(status, 2000, window=50)
    assert stored_bytes(fitted) <= 2000
    assert fitted["tasks"] == [{"name": "q", "phase": "Queued"}]
    assert fitted["history"][0]["truncated"] is True
    assert trimmed[-1] == "the newest history entry"


async def test_a_write_refused_as_too_large_is_trimmed_harder_once_with_one_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    names = _names(5, 8)
    kube = FakeStatusKube(too_large=1)
    writer, ledger = _writer(_spec(*names, historyLimit=100), {}, kube)
    for name in names[:3]:
        _run(ledger, name, "語" * 16_000)
    with caplog.at_level(logging.WARNING):
        await writer.flush(force=True)
        assert len(kube.patches) == 2           # refused, then sent once trimmed harder
        assert stored_bytes(kube.patches[1]) <= STATUS_BUDGET // 4 < \
            stored_bytes(kube.patches[0])
        assert [h["task"] for h in kube.patches[1]["history"]] == [names[2]]

        kube.too_large = 2                         # refused whatever it is trimmed to
        _run(ledger, names[3])
        with pytest.raises(ApiException):
            await writer.flush(force=True)
        assert len(kube.patches) == 4           # two tries, no loop
    warnings = [r for r in caplog.records if "too large" in r.getMessage()]
    assert len(warnings) == 1


def test_a_pruned_task_stays_known_in_a_bounded_window_and_its_name_is_refused() -> None:
    names = _names(FINISHED_WINDOW + 5, 8)
    ledger = Ledger.load(_spec(*names), {})
    for name in names:
        _run(ledger, name)
    ledger.sync_spec(_spec())                               # every task pruned
    written = ledger.status()["tasks"]
    assert [t["name"] for t in written] == names[-FINISHED_WINDOW:]
    assert ledger.status()["taskCount"] == len(names)

    again = names[-1]
    ledger.sync_spec(_spec(again, "fresh"))                 # the webhook failed open
    task = ledger.get(again)
    assert task is not None and task.phase == "Failed"
    assert task.note == REUSED_NOTE.format(name=again)
    assert "append it under a new name" in task.note
    assert ledger.next_pending() is ledger.get("fresh")
    assert ("ended", task) in ledger.drain()
    # Written and read back (an operator restart): still refused, never pending.
    reloaded = Ledger.load(_spec(again, "fresh"), ledger.status())
    assert reloaded.get(again).phase == "Failed"           # type: ignore[union-attr]
    assert reloaded.next_pending() is reloaded.get("fresh")
    assert [t.name for t in reloaded.retired] == names[-FINISHED_WINDOW:-1]


def test_a_spec_task_whose_status_left_the_window_is_not_delivered_after_a_restart() -> None:
    # `early` ran, was pruned, left the window, and came back while the operator was down:
    # status.tasks no longer names it, the VM's sent-log does, before later deliveries.
    later = _names(FINISHED_WINDOW, 8)
    status = {"tasks": [{"name": n, "phase": "Succeeded"} for n in later],
              "taskCount": FINISHED_WINDOW + 1}
    ledger = Ledger.load(_spec("early", "fresh"), status)
    assert ledger.get("early").phase == "Pending"          # type: ignore[union-attr]
    sent = [command_id(n) for n in ("early", *later)]
    ledger.recover_sent(sent, command_id)
    early = ledger.get("early")
    assert early is not None and early.phase == "Failed"
    assert early.note == REUSED_NOTE.format(name="early")
    assert ledger.next_pending() is ledger.get("fresh")


def test_a_delivery_the_status_had_not_recorded_yet_is_recovered_as_sent() -> None:
    # The operator died between writing to pi and writing the status: that task is on
    # its way (its user message follows in pi's events), not a reused name.
    status = {"tasks": [{"name": "a", "phase": "Succeeded"}], "taskCount": 1}
    ledger = Ledger.load(_spec("a", "b", "c"), status)
    ledger.recover_sent([command_id("a"), command_id("b")], command_id)
    assert [t.phase for t in ledger.tasks] == ["Succeeded", "Queued", "Pending"]
    assert ledger.next_pending() is ledger.get("c")
    assert ledger.status()["taskCount"] == 2


def test_a_finished_task_still_in_the_spec_is_written_compactly_and_stays_finished() -> None:
    ledger = Ledger.load(_spec("a", "b"), {})
    _run(ledger, "a")
    ledger.mark_sent(ledger.tasks[1], "prompt", command_id("b"), note="n" * 5000)
    tasks = ledger.status()["tasks"]
    assert tasks[0] == {"name": "a", "phase": "Succeeded"}
    assert tasks[1]["phase"] == "Queued" and len(tasks[1]["note"]) == 1024
    reloaded = Ledger.load(_spec("a", "b"), ledger.status())
    assert reloaded.next_pending() is None
    assert reloaded.get("a").phase == "Succeeded"          # type: ignore[union-attr]


def test_a_reused_name_the_vms_sent_log_remembers_is_refused_while_attached() -> None:
    # Past the window the ledger no longer knows the name; delivery finds it in the
    # sent-log (delivery.AlreadyDelivered) and the protocol refuses it.
    ledger = Ledger.load(_spec("early", "fresh"), {"taskCount": 150})
    protocol = SessionProtocol(ledger)
    planned = protocol.next_delivery()
    assert isinstance(planned, Delivery) and planned.task.name == "early"
    protocol.already_delivered(planned)
    early = ledger.get("early")
    assert early is not None and early.phase == "Failed"
    assert early.note == REUSED_NOTE.format(name="early")
    assert ledger.status()["taskCount"] == 150
    assert protocol.activity == "idle"
    nxt = protocol.next_delivery()
    assert isinstance(nxt, Delivery) and nxt.task.name == "fresh"


def test_our_own_attempt_whose_outcome_was_unknown_counts_as_delivered_once() -> None:
    # The write failed after it acted (a cut connection): the retry finds the id in the
    # sent-log, and the task is on its way, delivered once.
    ledger = Ledger.load(_spec("a"), {})
    protocol = SessionProtocol(ledger)
    first = protocol.next_delivery()
    assert isinstance(first, Delivery)
    protocol.undelivered(first)
    assert ledger.get("a").phase == "Pending"              # type: ignore[union-attr]
    again = protocol.next_delivery()
    assert isinstance(again, Delivery) and again.task is first.task
    protocol.already_delivered(again)
    assert ledger.get("a").phase == "Queued"               # type: ignore[union-attr]
    assert ledger.status()["taskCount"] == 1


def test_too_large_is_recognised_from_the_apiserver_and_from_etcd() -> None:
    assert is_too_large(ApiException(status=413, reason="Request Entity Too Large"))
    from_etcd = ApiException(status=500, reason="Internal Server Error")
    from_etcd.body = '{"message":"etcdserver: request is too large"}'
    assert is_too_large(from_etcd)
    assert not is_too_large(ApiException(status=409, reason="Conflict"))
    assert not is_too_large(OSError("request is too large"))


async def test_a_status_write_that_finds_the_object_deleted_ends_the_writing_quietly() -> None:
    kube = FakeStatusKube()
    spec = _spec("a")
    writer, ledger = _writer(spec, {}, kube)
    kube.deleted = True                          # deleted after the pass began
    ledger.touch()
    await writer.flush(force=True)               # no error: nothing left to report on
    assert writer.gone and kube.calls.count("patch_status") == 1
    writer.dirty = True
    await writer.flush(force=True)
    assert kube.calls.count("patch_status") == 1 # and nothing is sent again
