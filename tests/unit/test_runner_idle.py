"""The runner acting on the idle hold, against an apiserver in memory: the idle pause
written and announced once, a paused lieutenant's pass that writes and patches nothing,
the wake-up at the time left, the next task resuming it (with its Event), and a pause
by the spec that a task does not lift (its tasks wait with a note)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

from reef_operator.lieutenants.holds import PAUSED_BY_SPEC_NOTE
from tests.unit.test_runner_holds import LONG_AGO, _conditions, _runner

PAUSED_NODE = [{"type": "Paused", "status": "True", "reason": "Paused"},
               {"type": "Ready", "status": "False", "reason": "Paused"}]


async def test_idle_pause_is_written_once_then_the_next_task_resumes_it() -> None:
    runner, host, _ = _runner({"idlePolicy": {"pauseAfter": "20s"}},
                              {"phase": "Idle", "lastActivityTime": LONG_AGO},
                              node_state="Paused", node_conditions=PAUSED_NODE)
    kube = host.kube
    await runner.reconcile()
    written = kube.patches[-1]
    assert written["phase"] == "Paused"
    ready, paused = _conditions(written)["Ready"], _conditions(written)["Paused"]
    assert (ready["status"], ready["reason"]) == ("True", "IdlePaused")
    assert (paused["reason"], "20s" in paused["message"]) == ("Idle", True)
    assert [(kind, reason) for kind, reason, _ in host.events] == [("Normal", "IdlePaused")]
    assert "state" not in runner.spec                       # spec.state is not touched

    # Paused, nothing changes: a pass writes nothing, patches nothing, announces nothing.
    calls = list(kube.calls)
    cast(dict[str, Any], runner.body)["status"] = written
    await runner.reconcile()
    assert kube.calls == calls and len(host.events) == 1

    cast(dict[str, Any], runner.body)["spec"]["tasks"] = [{"name": "next", "message": "go"}]
    await runner.reconcile()
    assert "patch vmnodes Running" in kube.calls[len(calls):]
    assert [reason for _, reason, _ in host.events] == ["IdlePaused", "Resumed"]
    assert "task next arrived" in host.events[-1][2]


async def test_an_idle_lieutenant_wakes_itself_when_pauseAfter_is_over() -> None:
    ten_seconds_ago = (datetime.now(UTC) - timedelta(seconds=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    runner, host, _ = _runner({"idlePolicy": {"pauseAfter": "1m"}},
                              {"phase": "Starting", "lastActivityTime": ten_seconds_ago})
    wait = await runner.reconcile()         # waiting for its VM: a settled pass
    assert 45 <= wait <= 50
    assert not any(call.startswith("patch vmnodes") for call in host.kube.calls)


async def test_a_pause_by_the_spec_holds_a_task_with_a_note_until_the_spec_resumes() -> None:
    runner, host, _ = _runner({"state": "Paused", "idlePolicy": {"pauseAfter": "20s"},
                               "tasks": [{"name": "next", "message": "go"}]},
                              {"phase": "Paused", "lastActivityTime": LONG_AGO},
                              node_state="Paused", node_conditions=PAUSED_NODE)
    await runner.reconcile()
    written = host.kube.patches[-1]
    assert _conditions(written)["Paused"]["reason"] == "Paused"
    assert written["tasks"][0] == {"name": "next", "mode": "prompt", "phase": "Pending",
                                   "note": PAUSED_BY_SPEC_NOTE}
    assert not any(call.startswith("patch vmnodes") for call in host.kube.calls)
    assert host.events == []

    cast(dict[str, Any], runner.body)["spec"]["state"] = "Running"
    await runner.reconcile()
    assert "patch vmnodes Running" in host.kube.calls
    assert "note" not in host.kube.patches[-1]["tasks"][0]
    assert host.events == []             # a person resumed it: no Resumed of the operator's
