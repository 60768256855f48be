"""A fork (spec.forkFrom): where it starts, decided from its source as the watch sees it.

Pure: `resolve` reads the source Lieutenant and says what the fork does next: boot from a
commit (`ForkPoint`), ask the source for a checkpoint and wait (`Ask`), or stop with a
reason a person can act on (`Refusal`). The fork records its ForkPoint in
`status.forkedFrom` before its VMNode is made (ids before effects): from then on the spec
and the source no longer matter, so a crash never takes a second checkpoint or loses one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reef_operator.lieutenants import checkpoints

# The task of the marker entry a fork's history starts with: never a task's name (those
# are DNS labels).
MARKER_TASK = "(forked)"


@dataclass(frozen=True)
class ForkPoint:
    lieutenant: str
    commit_id: str
    checkpoint: str | None = None
    profile: str | None = None          # the source's BootProfile: its commit's platform

    def status(self, forked_at: str) -> dict[str, Any]:
        point: dict[str, Any] = {"lieutenant": self.lieutenant, "commitId": self.commit_id,
                                 "forkedAt": forked_at}
        if self.checkpoint:
            point["checkpoint"] = self.checkpoint
        if self.profile:
            point["profile"] = self.profile
        return point

    @classmethod
    def load(cls, status: Mapping[str, Any]) -> ForkPoint | None:
        point = status.get("forkedFrom") or {}
        if not point.get("commitId"):
            return None
        return cls(str(point["lieutenant"]), str(point["commitId"]),
                   point.get("checkpoint"), point.get("profile"))


@dataclass(frozen=True)
class Ask:
    """The source is to checkpoint its VM for the fork: `key` is the annotation to write
    (`asked`: it is there already)."""

    source: str
    key: str
    asked: bool


@dataclass(frozen=True)
class Refusal:
    reason: str                          # a Stalled reason of the Lieutenant catalogue
    message: str


def resolve(name: str, namespace: str, fork_from: Mapping[str, Any],
            source: Mapping[str, Any] | None) -> ForkPoint | Ask | Refusal:
    """What the fork `name` does next, given its source as last seen (None: no such)."""
    wanted = str(fork_from.get("lieutenant") or "")
    label = fork_from.get("checkpoint")
    if wanted == name:
        return Refusal("ForkSourceNotFound", "spec.forkFrom.lieutenant names this lieutenant "
                       "itself; name another lieutenant to fork")
    if source is None:
        return Refusal("ForkSourceNotFound",
                       f"spec.forkFrom.lieutenant: there is no lieutenant {wanted!r} in "
                       f"namespace {namespace!r}; name an existing one (kubectl get "
                       "lieutenants)")
    spec, status = source.get("spec") or {}, source.get("status") or {}
    taken = list(status.get("checkpoints") or [])
    profile = (spec.get("profileRef") or {}).get("name")
    destroyed = spec.get("state") == "Destroyed" or status.get("phase") == "Destroyed"
    if label:
        found = checkpoints.find(taken, label=str(label))
        if found is not None:
            return ForkPoint(wanted, str(found["commitId"]), str(label), profile)
        labels = [str(e["label"]) for e in taken if e.get("label")]
        known = (f"its checkpoints: {', '.join(labels)}" if labels
                 else "it has no named checkpoints")
        take = ("it is destroyed, so no new checkpoint can be taken" if destroyed else
                f"take one with kubectl reef checkpoint {wanted} --label {label}")
        return Refusal("CheckpointNotFound",
                       f"spec.forkFrom.checkpoint: lieutenant {wanted!r} has no checkpoint "
                       f"{label!r} ({known}); {take}, or name one of its checkpoints")
    found = checkpoints.find(taken, fork=name)
    if found is not None:
        return ForkPoint(wanted, str(found["commitId"]), None, profile)
    if destroyed or not status.get("vmId"):
        why = "is destroyed" if destroyed else "has no VM yet"
        return Refusal("ForkSourceHasNoVM",
                       f"spec.forkFrom: lieutenant {wanted!r} {why}, so there is nothing to "
                       "checkpoint; fork it once it runs, or fork one of its named "
                       "checkpoints (spec.forkFrom.checkpoint)")
    key = checkpoints.request_key(fork=name)
    annotations = (source.get("metadata") or {}).get("annotations") or {}
    return Ask(wanted, key, key in annotations)


def marker(point: ForkPoint, forked_at: str) -> dict[str, Any]:
    """The entry a fork's status.history starts with: where its conversation came from."""
    at = f"checkpoint {point.checkpoint!r}" if point.checkpoint else "a checkpoint taken for it"
    return {
        "task": MARKER_TASK, "completedAt": forked_at,
        "response": f"Forked from lieutenant {point.lieutenant} at {at} (commit "
                    f"{point.commit_id}): the conversation before this entry is "
                    f"{point.lieutenant}'s.",
        "forkedFrom": {k: v for k, v in (("lieutenant", point.lieutenant),
                                         ("checkpoint", point.checkpoint),
                                         ("commitId", point.commit_id)) if v},
    }


def fork_from_problems(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """spec.forkFrom cannot change once set (admission; pure)."""
    before = (old.get("spec") or {}).get("forkFrom")
    after = (new.get("spec") or {}).get("forkFrom")
    if old and before and after != before:
        return [f"spec.forkFrom is {dict(before)} and cannot change once set: a lieutenant "
                "starts from its fork point once; create another lieutenant to fork "
                "something else"]
    if old and not before and after:
        return ["spec.forkFrom cannot be added to an existing lieutenant (its conversation "
                "has begun); create a new lieutenant with spec.forkFrom"]
    return []
