"""Fitting a status into its byte budget before it is written.

The ledger already bounds each part (history by HISTORY_BUDGET, the finished-task
window by FINISHED_WINDOW, notes, the output tail), so a status over STATUS_BUDGET is
rare: only the worst cases the schema admits add up past it. Then parts are trimmed
until it fits, cheapest loss first:

1. history, oldest first, down to the newest entry: the bulkiest part, and the answer a
   reader wants is the latest one;
2. the window of finished tasks no longer in the spec, oldest first: it only serves to
   recognise a pruned name that comes back, and the VM's sent-log still remembers those;
3. notes, cut to NOTE_FLOOR characters: the first words say what happened;
4. the live output tail, cut to OUTPUT_FLOOR characters: the task's full output is in
   pi's event log on the VM;
5. every task down to its name and phase (sent tasks lose sentAt, commandId, mode
   and note): only a spec of many unfinished tasks with long notes gets here;
6. last, the newest history entry's response (marked truncated), then the entry.

Tasks still in the spec are never dropped: their names and phases are what keeps a
finished task from being delivered again. With at most MAX_TASKS + FINISHED_WINDOW of
them at name and phase (~96 bytes each at most) the status always fits STATUS_BUDGET.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from reef_operator.api.budget import stored_bytes

NOTE_FLOOR = 64
OUTPUT_FLOOR = 1024


def fit(status: Mapping[str, Any], budget: int, window: int) -> tuple[dict[str, Any], list[str]]:
    """`status` trimmed to `budget` bytes (as far as trimming goes) and what was trimmed.
    `window` is how many of status.tasks' first entries are finished tasks no longer in the
    spec."""
    out: dict[str, Any] = copy.deepcopy(dict(status))
    trimmed: list[str] = []
    size = stored_bytes(out)
    if size <= budget:
        return out, trimmed

    history: list[dict[str, Any]] = list(out.get("history") or [])
    dropped = 0
    while len(history) > 1 and size > budget:
        size -= stored_bytes(history.pop(0)) + 1
        dropped += 1
    out["history"] = history
    if dropped:
        trimmed.append(f"{dropped} oldest history entries")

    tasks: list[dict[str, Any]] = list(out.get("tasks") or [])
    retired = 0
    while retired < min(window, len(tasks)) and size > budget:
        size -= stored_bytes(tasks[retired]) + 1
        retired += 1
    out["tasks"] = tasks[retired:]
    if retired:
        trimmed.append(f"{retired} finished tasks no longer in the spec")

    if size > budget:
        cut = 0
        for task in out["tasks"]:
            note = str(task.get("note", ""))
            if len(note) > NOTE_FLOOR:
                task["note"] = note[:NOTE_FLOOR]
                cut += 1
        if cut:
            trimmed.append(f"{cut} notes")
            size = stored_bytes(out)

    current = out.get("currentTask")
    if size > budget and isinstance(current, dict) and \
            len(str(current.get("output", ""))) > OUTPUT_FLOOR:
        current["output"] = str(current["output"])[-OUTPUT_FLOOR:]
        trimmed.append("the output tail")
        size = stored_bytes(out)

    if size > budget:
        out["tasks"] = [{"name": t.get("name"), "phase": t.get("phase")} for t in out["tasks"]]
        trimmed.append("every task to its name and phase")
        size = stored_bytes(out)

    if size > budget and history:
        newest = history[-1]
        response = str(newest.get("response", ""))
        # Bytes the response's text may take: the budget less everything else.
        room = budget - (size - (stored_bytes(response) - 2)) - len(',"truncated":true')
        keep = min(len(response), max(room, 0))
        while keep and stored_bytes(response[:keep]) - 2 > room:
            keep = keep * 9 // 10
        if keep:
            history[-1] = {**newest, "response": response[:keep], "truncated": True}
        else:
            history.pop()
        trimmed.append("the newest history entry")
    return out, trimmed
