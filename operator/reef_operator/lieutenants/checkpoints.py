"""Named checkpoints of a lieutenant's VM, and those taken for its forks: what is asked,
what is recorded (pure; the runner takes the snapshots).

A checkpoint is asked with an annotation on the lieutenant, one per request, so requests
never overwrite each other: `checkpoint.reef.vers.sh/<label>` (`kubectl reef checkpoint`)
or `fork.reef.vers.sh/<fork>` (the operator, for a fork without a named checkpoint). The
runner takes it when the agent is between two tasks (no task running, none being
written into pi's input), records `{label | fork, commitId, takenAt, afterTask}` in
`status.checkpoints`, and only then removes the annotation: a crash before the status
write asks again, one after it finds the request answered.

The annotations are written by whoever may edit the lieutenant: they are bounded here
(a label must be a DNS label; at most MAX_CHECKPOINTS are kept) before anything acts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reef_operator.api.lieutenant import MAX_CHECKPOINTS
from reef_operator.api.schema import DNS_LABEL
from reef_operator.constants import CHECKPOINT_REQUEST_PREFIX, FORK_REQUEST_PREFIX

_LABEL = re.compile(DNS_LABEL)


@dataclass(frozen=True)
class Request:
    """One checkpoint asked of the lieutenant: named (`label`) or for a fork (`fork`)."""

    key: str                    # the annotation that asks it
    label: str | None = None
    fork: str | None = None

    @property
    def name(self) -> str:
        return self.label if self.label is not None else f"for fork {self.fork}"


def label_problem(label: str) -> str:
    """Why `label` cannot name a checkpoint ("" when it can)."""
    if len(label) > 63 or not _LABEL.match(label):
        return (f"checkpoint label {label!r} is not a DNS label (lowercase letters, digits "
                "and '-', at most 63 characters, starting and ending with a letter or digit)")
    return ""


def request_key(label: str | None = None, fork: str | None = None) -> str:
    """The annotation that asks for a named checkpoint, or for one for a fork."""
    return f"{CHECKPOINT_REQUEST_PREFIX}{label}" if label is not None \
        else f"{FORK_REQUEST_PREFIX}{fork}"


def is_request(key: str) -> bool:
    """Whether an annotation key asks for a checkpoint (named, or for a fork)."""
    return key.startswith((CHECKPOINT_REQUEST_PREFIX, FORK_REQUEST_PREFIX))


def requests(annotations: Mapping[str, str] | None) -> tuple[list[Request], list[str]]:
    """The requests the annotations make, oldest first, and the problems of those that
    cannot be taken (their annotations are to be removed, with the problem said)."""
    found: list[tuple[str, Request]] = []
    problems: list[str] = []
    for key, value in (annotations or {}).items():
        for prefix, named in ((CHECKPOINT_REQUEST_PREFIX, True), (FORK_REQUEST_PREFIX, False)):
            if not key.startswith(prefix):
                continue
            name = key[len(prefix):]
            problem = label_problem(name)
            if problem:
                problems.append(f"annotation {key}: {problem}")
            else:
                found.append((str(value), Request(key, label=name) if named
                              else Request(key, fork=name)))
    return [r for _, r in sorted(found, key=lambda pair: (pair[0], pair[1].key))], problems


def find(checkpoints: Sequence[Mapping[str, Any]], *, label: str | None = None,
         fork: str | None = None) -> Mapping[str, Any] | None:
    """The recorded checkpoint of that label (or taken for that fork)."""
    for entry in checkpoints:
        if label is not None and entry.get("label") == label:
            return entry
        if fork is not None and entry.get("fork") == fork:
            return entry
    return None


def answered(request: Request, checkpoints: Sequence[Mapping[str, Any]]) -> bool:
    return find(checkpoints, label=request.label, fork=request.fork) is not None


def full(checkpoints: Sequence[Mapping[str, Any]]) -> str:
    """Why no further checkpoint is recorded ("" while there is room)."""
    if len(checkpoints) < MAX_CHECKPOINTS:
        return ""
    return (f"the lieutenant keeps at most {MAX_CHECKPOINTS} checkpoints; delete it and fork "
            "what you need, or fork from an existing checkpoint")


def commits_to_keep(checkpoints: Sequence[Mapping[str, Any]], kept: str | None) -> str | None:
    """The value of the node's checkpoint-commits annotation that also holds every commit of
    `checkpoints`; None when `kept` (its value now) already does."""
    have = {c for c in (kept or "").split(",") if c}
    wanted = have | {str(c["commitId"]) for c in checkpoints if c.get("commitId")}
    return None if wanted == have else ",".join(sorted(wanted))


def kept_commits(kept: str | None) -> list[str]:
    """The commits a node's checkpoint-commits annotation names."""
    return sorted({c for c in (kept or "").split(",") if c})


def entry(request: Request, commit_id: str, taken_at: str,
          after_task: str | None) -> dict[str, Any]:
    """The status.checkpoints entry of a checkpoint just taken."""
    recorded: dict[str, Any] = {"commitId": commit_id, "takenAt": taken_at}
    if request.label is not None:
        recorded["label"] = request.label
    else:
        recorded["fork"] = request.fork
    if after_task:
        recorded["afterTask"] = after_task
    return recorded
