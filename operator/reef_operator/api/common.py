"""Schema pieces shared by more than one kind: golden-image source, VM size, DNA."""

from __future__ import annotations

from reef_operator.api.schema import DNS_LABEL, Schema, integer, obj, string, string_set

VM_STATES = ("Running", "Paused", "Destroyed")
VM_CATEGORIES = ("Lieutenant", "Swarm", "Agent", "Infra")
COMMIT_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


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
