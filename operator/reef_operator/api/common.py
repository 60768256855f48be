"""Schema pieces shared by more than one kind: golden-image source, VM size, DNA, and a
lieutenant's idle policy and budget (its own, or its namespace's ReefPolicy defaults)."""

from __future__ import annotations

import re

from reef_operator.api.schema import (
    DNS_LABEL,
    Schema,
    integer,
    number,
    obj,
    string,
    string_set,
)

VM_STATES = ("Running", "Paused", "Destroyed")
VM_CATEGORIES = ("Lieutenant", "Swarm", "Agent", "Infra")
COMMIT_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
# A duration as people write it: 90s, 15m, 1h30m, 7d (days, hours, minutes, seconds, in
# that order, each at most once; the apiserver's RE2 has no lookahead, so the schema adds
# minLength 2 to refuse the empty string).
DURATION = r"^([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?$"
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def duration_seconds(text: str) -> int:
    """Seconds of a DURATION string; ValueError for anything else."""
    if not text or not re.fullmatch(DURATION, text):
        raise ValueError(f"{text!r} is not a duration like 90s, 15m, 1h30m or 7d")
    return sum(int(amount) * _UNITS[unit] for amount, unit in re.findall(r"([0-9]+)([dhms])",
                                                                        text))


def source(owner: str) -> Schema:
    return obj(
        f"Golden image the {owner} boots from: exactly one of commitId, tag or ref.",
        {
            "commitId": string("Vers commit id of a golden image (a VMNode boots only from "
                               "one a BootProfile names or a checkpoint of a node in its "
                               "own namespace).", pattern=COMMIT_ID),
            "tag": string("Vers tag name of a golden image.", pattern=DNS_LABEL, max_length=63),
            "ref": string(
                "Vers repository reference of a golden image, as repo:tag.",
                pattern=r"^[a-z0-9][-a-z0-9_.]*:[A-Za-z0-9][-A-Za-z0-9_.]*$",
                max_length=253,
            ),
        },
        min_properties=1,
        max_properties=1,
    )


def resources(owner: str) -> Schema:
    return obj(
        f"Size of the {owner}'s VM when it is created as a fresh root VM "
        "(a VM made from a golden image takes the image's size).",
        {
            "vcpu": integer("Virtual CPUs.", minimum=1, maximum=64),
            "memoryMiB": integer("Memory in MiB.", minimum=128, maximum=262144),
            "diskMiB": integer("Root filesystem size in MiB.", minimum=512, maximum=1048576),
        },
    )


def modules(owner: str) -> Schema:
    return string_set(
        f"Services (the seed's organs) the {owner} runs, merged without duplicates "
        "into the boot profile's.",
        "Service name, e.g. store, cron, registry.",
        max_items=64,
    )


def capabilities(owner: str) -> Schema:
    return string_set(
        f"Capabilities the {owner} is given, merged without duplicates into the boot profile's.",
        "Capability name, e.g. vers-vm, vers-swarm, ssh.",
        max_items=64,
    )


def idle_policy(owner: str) -> Schema:
    return obj(
        f"What happens to {owner} that has nothing to do (no task running, queued or "
        "waiting, no agent activity). Durations are written like 90s, 15m, 1h30m or 7d.",
        {
            "pauseAfter": string(
                "Pause the VM with the agent's memory intact after this long idle; spec.state "
                "is not changed, and the next task resumes it (status: phase Paused, Paused "
                "reason Idle).", pattern=DURATION, min_length=2, max_length=32),
            "destroyAfter": string(
                "Destroy the lieutenant after this long without tasks (paused or not): the VM "
                "is released, history and TaskRecords are kept (reason Expired). A task "
                "appended later is not delivered.", pattern=DURATION, min_length=2, max_length=32),
        },
    )


def budget(what: str) -> Schema:
    return obj(
        f"Spending limits of {what}, from the usage pi reports. When reached, the running "
        "task finishes, no further task is delivered and the VM pauses with the agent's "
        "memory (reason BudgetExhausted); raising the limit resumes it.",
        {
            "maxCostUSD": number("US dollars at most.", minimum=0),
            "maxTokens": integer("Tokens at most: input, output and prompt-cache reads and "
                                 "writes, summed.", minimum=0, format="int64"),
        },
    )


def ttl_after_destroyed() -> Schema:
    return integer("Delete the object this many seconds after it became Destroyed (its "
                   "TaskRecords go with it); absent means kept.", minimum=0, format="int64")
