"""Finished tasks leaving a lieutenant's spec.tasks (`kubectl reef prune`, and `send` when
the object nears its budget).

Only tasks the status calls Succeeded, Failed or Aborted, or answered in its history, are
removed; a task it knows neither way (not seen yet, or long gone from both windows) stays.
The removal is one JSON patch that names each removed task at its index (`test`
operations, then `remove` from the last index down): tasks are only ever appended at the
end, so a concurrent append keeps every index and is never lost, while any other
concurrent change to the list fails a test and the prune reads the object again. Status
writes do not touch spec.tasks, so a working lieutenant does not make the prune retry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException

from reef_operator.api.budget import SPEC_TASKS_BUDGET, spec_tasks_bytes
from reef_operator.api.lieutenant import FINISHED_TASK_PHASES as FINISHED
from reef_operator.cli.plugin.cluster import Cluster, Obj, PluginError

PLURAL = "lieutenants"
ATTEMPTS = 10
NAMES_SHOWN = 5
# The apiserver's whole answer when a JSON patch does not apply to the stored object.
PATCH_NOT_APPLIED = "the server rejected our request due to an error in our request"
# `send` prunes every finished task once spec.tasks would pass this share of its budget,
# well before the admission webhook refuses an append at the budget itself.
PRUNE_AT = SPEC_TASKS_BUDGET * 3 // 4


def finished_tasks(lieutenant: Mapping[str, Any], keep: int = 0) -> list[tuple[int, str]]:
    """(index in spec.tasks, name) of the finished tasks to remove, in spec order, keeping
    the `keep` most recent (the last ones in the list) finished ones."""
    status = lieutenant.get("status") or {}
    phases = {t.get("name"): t.get("phase") for t in status.get("tasks") or []}
    answered = {h.get("task") for h in status.get("history") or []}
    finished = [(index, str(task["name"])) for index, task in
                enumerate((lieutenant.get("spec") or {}).get("tasks") or [])
                if phases.get(task["name"]) in FINISHED or task["name"] in answered]
    return finished[:max(0, len(finished) - keep)]


def to_make_room(lieutenant: Mapping[str, Any],
                 task: Mapping[str, Any]) -> list[tuple[int, str]]:
    """The finished tasks `send` removes with its append: all of them once the list with
    `task` would pass PRUNE_AT, else none."""
    tasks = [*((lieutenant.get("spec") or {}).get("tasks") or []), task]
    return finished_tasks(lieutenant) if spec_tasks_bytes({"tasks": tasks}) > PRUNE_AT else []


def removal(tasks: list[tuple[int, str]]) -> list[Obj]:
    """The JSON patch removing these tasks, refused by the apiserver if any has moved."""
    tests = [{"op": "test", "path": f"/spec/tasks/{index}/name", "value": name}
             for index, name in tasks]
    removes = [{"op": "remove", "path": f"/spec/tasks/{index}"}
               for index, _ in sorted(tasks, reverse=True)]
    return tests + removes


def describe(names: list[str]) -> str:
    """`12 finished tasks (task-1, task-2, ... and 7 more)`."""
    shown = ", ".join(names[:NAMES_SHOWN])
    more = f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else ""
    noun = "task" if len(names) == 1 else "tasks"
    return f"{len(names)} finished {noun} ({shown}{more})"


def prune(cluster: Cluster, name: str, keep: int) -> str:
    if keep < 0:
        raise PluginError(f"--keep {keep}: expected 0 or more finished tasks to keep",
                          exit_code=2)
    for _ in range(ATTEMPTS):
        lieutenant = cluster.get(PLURAL, name)
        tasks = finished_tasks(lieutenant, keep)
        if not tasks:
            kept = f" beyond the {keep} most recent" if keep else ""
            return f"lieutenant/{name} has no finished tasks to prune{kept}"
        try:
            cluster.json_patch(PLURAL, name, removal(tasks))
        except ApiException as error:
            if moved(error):
                continue
            with cluster.errors(f"cannot prune lieutenant {name}"):
                raise
        return f"pruned {describe([n for _, n in tasks])} from lieutenant/{name}"
    raise PluginError(f"lieutenant {name}'s tasks kept changing while pruning; try again")


def moved(error: ApiException) -> bool:
    """The write conflicted, or the patch could not be applied (a `test` failed, an index
    is gone; the apiserver says only this): the list changed since it was read."""
    if error.status == 409:
        return True
    try:
        message = json.loads(error.body or "{}").get("message")
    except ValueError:
        return False
    return error.status == 422 and str(message) == PATCH_NOT_APPLIED
