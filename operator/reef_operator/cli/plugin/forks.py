"""What `kubectl reef fork` and `kubectl reef checkpoint` do: a new lieutenant with
spec.forkFrom, and a checkpoint asked of a lieutenant by annotation.

Like every command, they only write what the operator acts on (a spec, an annotation)
and read status: the operator takes the snapshot and boots the fork.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

from reef_operator.cli.plugin.cluster import Cluster, PluginError
from reef_operator.constants import API_VERSION
from reef_operator.lieutenants import checkpoints

PLURAL = "lieutenants"
# What a fork takes of its source's spec (its tasks, state and lineage are its own).
INHERITED = ("role", "profileRef", "model", "credentialsSecretRef", "providersConfigMapRef",
             "instructions", "env", "historyLimit", "taskRecords", "postTaskDisposition",
             "idlePolicy", "budget", "ttlSecondsAfterDestroyed")


def fork(cluster: Cluster, source: str, name: str, *, role: str | None,
         checkpoint: str | None) -> str:
    """A lieutenant `name` that continues `source`'s conversation on a copy of its VM."""
    original = cluster.get(PLURAL, source)
    spec: dict[str, Any] = {key: value for key, value in (original.get("spec") or {}).items()
                            if key in INHERITED}
    if role:
        spec["role"] = role
    fork_from: dict[str, Any] = {"lieutenant": source}
    if checkpoint:
        problem = checkpoints.label_problem(checkpoint)
        if problem:
            raise PluginError(f"--checkpoint: {problem}", exit_code=2)
        taken = (original.get("status") or {}).get("checkpoints") or []
        if checkpoints.find(taken, label=checkpoint) is None:
            labels = [str(c["label"]) for c in taken if c.get("label")]
            known = f"its checkpoints: {', '.join(labels)}" if labels else "it has none"
            raise PluginError(f"lieutenant {source} has no checkpoint {checkpoint!r} "
                              f"({known}); "
                              f"take one with kubectl reef checkpoint {source} --label "
                              f"{checkpoint}")
        fork_from["checkpoint"] = checkpoint
    elif (original.get("spec") or {}).get("state") == "Destroyed":
        raise PluginError(f"lieutenant {source} is Destroyed: there is no VM to checkpoint; "
                          "fork one of its checkpoints with --checkpoint LABEL")
    spec["forkFrom"] = fork_from
    cluster.create(PLURAL, {"apiVersion": API_VERSION, "kind": "Lieutenant",
                            "metadata": {"name": name}, "spec": spec})
    at = f"checkpoint {checkpoint}" if checkpoint else "a checkpoint taken now"
    return f"lieutenant/{name} created: a fork of lieutenant/{source} at {at}"


def default_label(now: datetime.datetime | None = None) -> str:
    moment = now or datetime.datetime.now(datetime.UTC)
    return moment.strftime("cp-%Y%m%d-%H%M%S")


def ask_checkpoint(cluster: Cluster, name: str, label: str) -> str:
    """Ask the operator to checkpoint lieutenant `name` under `label`."""
    problem = checkpoints.label_problem(label)
    if problem:
        raise PluginError(f"--label: {problem}", exit_code=2)
    lieutenant = cluster.get(PLURAL, name)
    if (lieutenant.get("spec") or {}).get("state") == "Destroyed":
        raise PluginError(f"lieutenant {name} is Destroyed: it has no VM to checkpoint")
    if checkpoints.find((lieutenant.get("status") or {}).get("checkpoints") or [],
                        label=label) is not None:
        raise PluginError(f"lieutenant {name} already has a checkpoint {label!r}: labels are "
                          "unique, choose another --label")
    asked = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with cluster.errors(f"cannot ask lieutenant {name} for a checkpoint"):
        cluster.merge_patch(PLURAL, name, {"metadata": {"annotations": {
            checkpoints.request_key(label=label): asked}}})
    return (f"checkpoint {label} asked of lieutenant/{name} (taken when its agent is between "
            "two tasks)")


def wait_for_checkpoint(cluster: Cluster, name: str, label: str, timeout: float) -> str:
    """The commit of checkpoint `label` once the operator recorded it."""
    deadline = time.monotonic() + timeout
    for lieutenant in cluster.watch(PLURAL, name, None, timeout):
        found = checkpoints.find((lieutenant.get("status") or {}).get("checkpoints") or [],
                                 label=label)
        if found is not None:
            return str(found["commitId"])
        if time.monotonic() > deadline:
            break
    raise PluginError(f"checkpoint {label} of lieutenant {name} not taken within "
                      f"{timeout:.0f}s (it waits for the agent to finish its task)")
