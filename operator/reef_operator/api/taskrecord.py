"""The TaskRecord kind: one finished task of a lieutenant, kept after it leaves status.

A record is written once by the operator when its task ends and never changed; the
whole record is in `spec` (a fact about the past, not a desired state, but `spec` is
where kubectl, the printer columns and `kubectl explain` look). It is owned by its
lieutenant, so the garbage collector deletes it with the lieutenant.
"""

from __future__ import annotations

import hashlib

from reef_operator.api.kinds import Column, Kind
from reef_operator.api.lieutenant import FINISHED_TASK_PHASES, TASK_MODES, usage_schema
from reef_operator.api.schema import DNS_LABEL, array, boolean, obj, string, timestamp

ANSWER_LIMIT = 256 * 1024          # bytes of UTF-8 of one record's full answer
MAX_TOOL_CALLS = 200               # tool calls kept per record
TOOL_ARGUMENTS_LIMIT = 512         # characters of one tool call's argument summary
MESSAGE_LIMIT = 32768              # the task's message (the Lieutenant schema's bound)

TOOL_CALL = obj(
    "One tool call the agent made during the task.",
    {
        "name": string("The tool's name.", max_length=128),
        "arguments": string("Its arguments as JSON, cut to a bounded summary.",
                            max_length=TOOL_ARGUMENTS_LIMIT + 1),
        "ok": boolean("Whether the tool succeeded (false: it reported an error, or its end "
                      "was never seen)."),
    },
    required=("name",),
)

SPEC = obj(
    "One finished task: what was asked, how it went and everything the agent answered.",
    {
        "lieutenant": string("The lieutenant that ran the task.", pattern=DNS_LABEL,
                             max_length=63),
        "task": string("The task's name in the lieutenant's spec.tasks.", pattern=DNS_LABEL,
                       max_length=63),
        "message": string("What the agent was told.", max_length=MESSAGE_LIMIT),
        "mode": string("How it was delivered.", enum=TASK_MODES),
        "phase": string("How it ended.", enum=FINISHED_TASK_PHASES),
        "sentAt": timestamp("When it was delivered to pi."),
        "startedAt": timestamp("When the agent started on it."),
        "completedAt": timestamp("When it ended."),
        "stopReason": string("Why the agent stopped (stop, length, error, aborted).",
                             max_length=64),
        "note": string("Why it failed, or was delivered differently.", max_length=4096),
        "usage": usage_schema("this task"),
        "answer": string(
            "The full answer: all the text the agent streamed during the task, narration "
            "between tool calls included, cut to 256 KiB of UTF-8.",
            max_length=ANSWER_LIMIT),
        "truncated": boolean("Whether the answer was cut to fit."),
        "toolCalls": array(f"The tool calls it made, in order (the first {MAX_TOOL_CALLS}).",
                           TOOL_CALL, max_items=MAX_TOOL_CALLS),
        "toolCallsDropped": boolean(f"Whether it made more than {MAX_TOOL_CALLS} tool calls."),
    },
    required=("lieutenant", "task", "phase"),
)

TASKRECORD = Kind(
    kind="TaskRecord",
    plural="taskrecords",
    short_names=("tr",),
    namespaced=True,
    description=(
        "One finished task of a lieutenant, written once by the operator: its message, "
        "outcome, usage, tool calls and full answer. Owned by the lieutenant; retention is "
        "the lieutenant's spec.taskRecords."
    ),
    spec=SPEC,
    status=None,
    columns=(
        Column("Lieutenant", "string", ".spec.lieutenant", "The lieutenant"),
        Column("Task", "string", ".spec.task", "The task"),
        Column("Phase", "string", ".spec.phase", "How it ended"),
        Column("Cost", "number", ".spec.usage.cost", "Cost in US dollars"),
        Column("Completed", "date", ".spec.completedAt", "When it ended"),
        Column("Age", "date", ".metadata.creationTimestamp", "Age"),
    ),
)


def record_name(lieutenant: str, task: str) -> str:
    """A task's record name: readable, a DNS label of at most 63 characters, and distinct
    for every (lieutenant, task), by a hash of both ("a-b" + "c" and "a" + "b-c" join
    alike), so writing it twice meets the first."""
    digest = hashlib.sha256(f"{lieutenant}/{task}".encode()).hexdigest()[:8]
    prefix = f"{lieutenant}-{task}"[:63 - len(digest) - 1].rstrip("-")
    return f"{prefix}-{digest}"
