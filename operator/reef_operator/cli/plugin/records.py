"""A lieutenant's TaskRecords as the plugin reads them: `read --task`, `history` and the
dashboard. Records outlive `status.history`; each holds a finished task's full answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reef_operator.api.lieutenant import FINISHED_TASK_PHASES
from reef_operator.api.taskrecord import record_name
from reef_operator.cli.plugin import output
from reef_operator.cli.plugin.cluster import Cluster, NotFound, Obj
from reef_operator.constants import LABEL_LIEUTENANT

PLURAL = "taskrecords"


def records(cluster: Cluster, lieutenant: str, namespace: str | None = None) -> list[Obj]:
    """The lieutenant's records, oldest first (by when their task ended)."""
    found = cluster.items(PLURAL, namespace, label_selector=f"{LABEL_LIEUTENANT}={lieutenant}")
    return sorted(found, key=lambda r: (str((r.get("spec") or {}).get("completedAt") or ""),
                                        r["metadata"]["name"]))


def record(cluster: Cluster, lieutenant: str, task: str,
           namespace: str | None = None) -> Obj:
    """Task `task`'s record; NotFound says why there is none (no such lieutenant, the task
    is not finished, it was never a task, or retention deleted it)."""
    namespace = namespace or cluster.namespace
    found = cluster.get("lieutenants", lieutenant, namespace)   # NotFound names the others
    name = record_name(lieutenant, task)
    if cluster.exists(PLURAL, name, namespace):       # (a failed get would list them all)
        return cluster.get(PLURAL, name, namespace)
    tasks = {str(t.get("name")): str(t.get("phase", "Pending"))
             for t in (found.get("status") or {}).get("tasks") or []}
    if task in tasks and tasks[task] not in FINISHED_TASK_PHASES:
        why = f"task {task} is {tasks[task]}: its record is written when it ends"
    elif task in tasks or task in {t.get("name") for t in (found.get("spec") or {}).get(
            "tasks") or []}:
        why = (f"no record of task {task}: it was deleted (retention: spec.taskRecords) "
               "or written by an operator without records")
    else:
        why = (f"lieutenant {lieutenant} has no task {task} and no record of it (a pruned "
               "task's record goes only by retention)")
    raise NotFound(f"{why} (kubectl reef history {lieutenant} lists its records)")


def answer(cluster: Cluster, lieutenant: str, task: str) -> str:
    """What `read NAME --task T` prints: the task's full answer."""
    spec = record(cluster, lieutenant, task).get("spec") or {}
    text = str(spec.get("answer") or "")
    if spec.get("truncated"):
        text += "\n[truncated: the answer was longer than the record keeps (256 KiB)]"
    return text


def summary(found: Mapping[str, Any]) -> Obj:
    """What `history -o json|yaml` shows of a record: its spec and name."""
    return {"name": found["metadata"]["name"], **(found.get("spec") or {})}


def history_rows(found: list[Obj]) -> tuple[list[str], list[list[object]]]:
    rows: list[list[object]] = []
    for item in found:
        spec = item.get("spec") or {}
        usage = spec.get("usage") or {}
        rows.append([spec.get("task"), spec.get("phase"), spec.get("stopReason"),
                     len(spec.get("toolCalls") or []),
                     f"{float(usage.get('cost') or 0):.4f}",
                     output.age(spec.get("completedAt")) or None,
                     _first_line(str(spec.get("answer") or ""))])
    return ["task", "phase", "stop", "tools", "cost", "ended", "answer"], rows


def _first_line(text: str, width: int = 60) -> str:
    line = text.strip().split("\n", 1)[0]
    return line if len(line) <= width else line[:width - 1] + "…"
