"""The plugin's pure parts: the seed's read format, output tails, tables, lineage, DNA."""

from __future__ import annotations

import datetime
from typing import Any

from reef_operator.cli.plugin import dashboard, fleet, output


def _lieutenant(history: list[dict[str, Any]], phase: str = "Idle",
                current: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"status": {"phase": phase, "history": history, "currentTask": current or {}}}


def test_history_blocks_follow_the_seed_format_oldest_first() -> None:
    lt = _lieutenant([{"task": f"t{n}", "response": f"answer {n}", "stopReason": "stop"}
                      for n in range(1, 5)], phase="Working",
                     current={"name": "t5", "output": "half way"})
    assert output.history_blocks(lt, 2) == (
        "=== Response 1 ===\n(task t3, stop)\nanswer 3\n\n"
        "=== Response 2 ===\n(task t4, stop)\nanswer 4\n\n"
        "=== Current (working: t5) ===\nhalf way")
    assert output.history_blocks(lt, 0) == "=== Current (working: t5) ===\nhalf way"


def test_truncated_responses_are_marked() -> None:
    lt = _lieutenant([{"task": "big", "response": "x", "truncated": True,
                       "stopReason": "length"}])
    assert "(task big, length [truncated])" in output.history_blocks(lt, 1)


def test_read_shows_live_output_while_working_else_the_last_response() -> None:
    assert output.current_output(_lieutenant([{"task": "a", "response": "done"}])) == "done"
    working = _lieutenant([{"task": "a", "response": "done"}], "Working",
                          {"name": "b", "output": "typing"})
    assert output.current_output(working) == "typing"
    assert output.current_output(_lieutenant([])) == ""


def test_table_pads_columns_and_marks_empty_cells() -> None:
    assert output.table(["name", "vm"], [["api", None], ["web-long", "v1"]]).splitlines() == [
        "NAME       VM", "api        <none>", "web-long   v1"]


def test_age_reads_like_kubectl() -> None:
    now = datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC)
    assert output.age("2026-01-01T23:59:30Z", now) == "30s"
    assert output.age("2026-01-01T23:55:00Z", now) == "5m"
    assert output.age("2026-01-01T21:00:00Z", now) == "3h"
    assert output.age("2025-12-28T00:00:00Z", now) == "5d"
    assert output.age(None, now) == ""


def _node(name: str, parent: str | None = None, modules: list[str] | None = None,
          namespace: str = "ns") -> dict[str, Any]:
    spec: dict[str, Any] = {"category": "Swarm" if parent else "Lieutenant"}
    if parent:
        spec["parentRef"] = {"name": parent}
    return {"metadata": {"name": name, "namespace": namespace}, "spec": spec,
            "status": {"vmState": "running", "vmId": f"vm-{name}",
                       "dna": {"modules": modules or [], "capabilities": []}}}


def test_tree_draws_lineage_and_survives_a_cycle() -> None:
    nodes = [_node("root"), _node("a", "root"), _node("b", "root"), _node("a1", "a")]
    lines = fleet.tree(nodes)
    assert [line.split(" [")[0] for line in lines] == [
        "root", "├── a", "│   └── a1", "└── b"]
    cycle = [_node("x", "y"), _node("y", "x")]
    assert [line.split(" [")[0] for line in fleet.tree(cycle)] == [   # drawn once, no hang
        "x", "└── y", "    └── x"]
    assert [n["metadata"]["name"] for n in fleet.flatten(fleet.forest(nodes + cycle))] == [
        "root", "a", "a1", "b", "x", "y"]
    assert len(fleet.tree(cycle, root="x")) == 3        # x → y → x, shown once and stopped


def test_dna_diff_names_added_removed_and_common() -> None:
    a, b = _node("a", modules=["store", "cron"]), _node("b", modules=["store", "git"])
    assert fleet.dna_diff(a, b)["modules"] == {"added": ["git"], "removed": ["cron"],
                                               "common": ["store"]}
    text = fleet.diff_text("a", "b", fleet.dna_diff(a, a))
    assert text.endswith("(same DNA)")


def test_discover_tells_a_reattached_session_from_a_fresh_one() -> None:
    node = _node("api")
    lt: dict[str, Any] = {"metadata": {"name": "api", "namespace": "ns"},
          "status": {"vmNodeName": "api", "session": {
              "startedAt": "2026-01-01T00:00:00Z", "attachedAt": "2026-01-01T00:00:01Z"}}}
    assert fleet.discover_rows([lt], [node])[0]["held"] == "created"
    lt["status"]["session"]["attachedAt"] = "2026-01-01T01:00:00Z"
    assert fleet.discover_rows([lt], [node])[0]["held"] == "created, re-attached"
    node["spec"]["vmId"] = "adopted-vm"
    assert fleet.discover_rows([lt], [node])[0]["held"] == "adopted, re-attached"


def test_the_dashboard_answers_only_to_its_own_names() -> None:
    assert dashboard.host_allowed("127.0.0.1:8474", "127.0.0.1", 8474)
    assert dashboard.host_allowed("localhost:8474", "127.0.0.1", 8474)
    assert dashboard.host_allowed("[::1]:8474", "::1", 8474)
    assert dashboard.host_allowed("[::1]", "::1", 80)                # default port left out
    assert dashboard.host_allowed("devbox:8474", "devbox", 8474)     # the name given
    assert dashboard.host_allowed("10.1.2.3:8474", "0.0.0.0", 8474)  # any IP on a wildcard
    # Another site's page whose name now resolves here (DNS rebinding), a wrong port,
    # or no Host at all.
    assert not dashboard.host_allowed("evil.example:8474", "127.0.0.1", 8474)
    assert not dashboard.host_allowed("evil.example:8474", "0.0.0.0", 8474)
    assert not dashboard.host_allowed("127.0.0.1:9999", "127.0.0.1", 8474)
    assert not dashboard.host_allowed("", "127.0.0.1", 8474)
    assert not dashboard.host_allowed("127.0.0.1.evil.example:8474", "127.0.0.1", 8474)


def test_a_lieutenant_without_its_vmnode_yet_is_drawn_below_its_parent() -> None:
    nodes = [_node("lead"), _node("w1", "lead")]
    lieutenants: list[dict[str, Any]] = [
        {"metadata": {"name": "lead", "namespace": "ns"}, "spec": {}},
        {"metadata": {"name": "sub", "namespace": "ns"},
         "spec": {"parentRef": {"kind": "Lieutenant", "name": "lead"}}}]
    lines = fleet.tree(fleet.with_lieutenants_awaiting_a_vm(nodes, lieutenants))
    assert lines[0].startswith("lead [Lieutenant]")
    assert lines[1].startswith("├── w1 [Swarm]")
    assert lines[2].startswith("└── sub [Lieutenant] no VM yet vm=-")
