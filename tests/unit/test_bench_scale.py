"""The scale benchmark's pure parts: which runs fit, what is counted per lifecycle, when a
status first arrived, and how the figures are shown."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from bench.audit import OPERATOR_USER
from bench.errors import BenchError
from bench.scale.arrivals import Arrivals
from bench.scale.kinds import LIEUTENANTS, VMNODES, condition_ready, memory_refusal, plan
from bench.scale.meter import (
    Meter,
    Phase,
    Result,
    burst,
    lifecycle_figures,
    platform_rate_floor,
)
from bench.scale.report import table

GIB = 2**30


def test_lieutenants_run_where_their_agents_fit_and_vmnodes_where_not() -> None:
    runs = plan([10, 100], [500], available=10 * GIB)
    assert [(n, kind) for n, kind, _ in runs] == [(10, LIEUTENANTS), (100, VMNODES),
                                                  (500, VMNODES)]
    assert runs[0][2] == runs[2][2] == ""
    assert runs[1][2] == ("instead of lieutenants: 100 real pi agents need about 12.7 GiB; "
                          "10.0 GiB available")
    assert memory_refusal(100, VMNODES, 10 * GIB) == ""


def test_lifecycle_figures_are_per_object_and_leave_out_the_task_and_events() -> None:
    phases = {
        "create": Phase(Counter({"write create vmnodes": 2, "write patch vmnodes/status": 6,
                                 "write create events": 4, "read get vmnodes": 10}),
                        Counter({"POST /vm": 2})),
        "task": Phase(Counter({"write patch lieutenants/status": 8}), Counter()),
        "delete": Phase(Counter({"write patch vmnodes": 2, "write create events": 2}),
                        Counter({"DELETE /vm": 2})),
    }
    result = Result(2, "vmnodes")
    lifecycle_figures(result, phases, 2)
    assert result.kube_writes_per_lifecycle == 12            # 24 writes / 2 objects
    assert result.kube_requests_per_lifecycle == 17
    assert result.events_per_lifecycle == 3
    assert result.kube_writes_per_lifecycle_excl_task_events == 5   # 10 / 2
    assert result.status_patches_per_task == 4
    assert result.platform_calls_per_lifecycle == 2
    assert result.writes_by_kind["create events"] == 3


def test_the_platform_rate_floor_leaves_out_the_burst() -> None:
    assert burst(20) == burst(20.0) > 1
    assert platform_rate_floor(burst(20), 20) == 0
    assert platform_rate_floor(burst(20) + 40, 20) == 2


class Fake:
    """A source with a fixed list, and a platform with fixed counts."""

    def __init__(self, *objects: dict[str, Any]) -> None:
        self.objects = list(objects)
        self.counts: dict[str, int] = {}

    def list(self) -> Mapping[str, Any]:
        return {"metadata": {"resourceVersion": "1"}, "items": self.objects}

    def watch(self, version: str) -> Iterator[Mapping[str, Any]]:
        return iter(())

    def stop(self) -> None:
        pass

    def request_counts(self) -> dict[str, int]:
        return dict(self.counts)


def _node(name: str, version: str, ready: bool) -> dict[str, Any]:
    conditions = [{"type": "Ready", "status": "True"}] if ready else []
    return {"metadata": {"name": name, "namespace": "bench", "resourceVersion": version},
            "status": {"conditions": conditions}}


def _arrivals(source: Fake) -> tuple[Arrivals, list[float]]:
    now = [0.0]
    return Arrivals(source, "vmnodes", clock=lambda: now[0]), now


def test_a_wait_answers_when_the_check_first_held_for_each_object() -> None:
    arrivals, now = _arrivals(Fake())
    feed = arrivals.collection
    feed.replace({"metadata": {"resourceVersion": "1"}, "items": [_node("a", "1", False)]})
    now[0] = 5
    feed.apply({"type": "MODIFIED", "object": _node("a", "2", True)})
    now[0] = 7
    feed.apply({"type": "ADDED", "object": _node("b", "3", True)})
    now[0] = 9
    feed.apply({"type": "MODIFIED", "object": _node("a", "4", True)})   # again: not first
    assert arrivals.wait(condition_ready, 2, within=0) == {"a": 5, "b": 7}
    assert arrivals.live == {"a", "b"}


def test_a_wait_that_times_out_says_what_a_fresh_list_shows() -> None:
    source = Fake(_node("a", "2", True), _node("b", "3", True))
    arrivals, _ = _arrivals(source)
    arrivals.collection.replace({"metadata": {"resourceVersion": "1"},
                                 "items": [_node("a", "1", False)]})
    with pytest.raises(BenchError, match=r"only 0/2 vmnodes got there in 0s "
                                         r"\(a fresh list shows 2\)"):
        arrivals.wait(condition_ready, 2, within=0)


def test_wait_gone_ends_when_every_object_was_deleted() -> None:
    arrivals, _ = _arrivals(Fake())
    feed = arrivals.collection
    feed.replace({"metadata": {"resourceVersion": "1"},
                  "items": [_node("a", "1", True), _node("b", "2", True)]})
    feed.apply({"type": "DELETED", "object": _node("a", "3", True)})
    with pytest.raises(BenchError, match="1/2 vmnodes not deleted"):
        arrivals.wait_gone(2, within=0)
    feed.apply({"type": "DELETED", "object": _node("b", "4", True)})
    arrivals.wait_gone(2, within=0)


def _audit_line(verb: str, resource: str, user: str) -> str:
    return json.dumps({"verb": verb, "objectRef": {"resource": resource},
                       "user": {"username": user}})


def test_the_meter_counts_each_phase_once_and_refuses_a_rotated_log(tmp_path: Path) -> None:
    audit = tmp_path / "audit.log"
    audit.write_text(_audit_line("create", "vmnodes", OPERATOR_USER) + "\n")
    platform = Fake()
    platform.counts = {"POST /vm": 1}
    meter = Meter(audit, platform)                      # what came before is not counted
    with audit.open("a") as log:
        log.write(_audit_line("patch", "vmnodes", OPERATOR_USER) + "\n")
        log.write(_audit_line("patch", "vmnodes", "someone-else") + "\n")
    platform.counts = {"POST /vm": 3}
    assert meter.platform_calls() == 2
    phase = meter.take()
    assert phase.kube == Counter({"write patch vmnodes": 1})
    assert phase.platform == Counter({"POST /vm": 2})
    assert meter.take() == Phase(Counter(), Counter())

    rotated = tmp_path / "audit-new.log"       # a new file while the old one is there
    rotated.write_text("")
    rotated.replace(audit)
    with pytest.raises(BenchError, match="audit log was rotated"):
        meter.take()


def test_the_table_has_a_column_per_run_and_says_what_was_skipped() -> None:
    ran = Result(10, "lieutenants", ready_all_seconds=3.25, vm_ready_p50=None,
                 note="a note")
    skipped = Result(1000, "vmnodes (no agent)", skipped="too big")
    lines = table([ran, skipped]).splitlines()
    assert lines[0].split() == ["N", "N=10", "lieutenants", "N=1000", "vmnodes"]
    ready = next(line for line in lines if line.startswith("operator: all Ready (s)"))
    assert ready.split()[-2:] == ["3.25", "skipped"]
    vm_p50 = next(line for line in lines if line.startswith("  VM Ready p50"))
    assert vm_p50.split()[-2:] == ["-", "skipped"]
    assert lines[-2:] == ["N=10 lieutenants a note",
                          "N=1000 vmnodes (no agent) skipped: too big"]
