"""The VMPool kind: warm VMs of one BootProfile, booted ahead so a lieutenant need not wait.

The pool keeps `minReady` VMNodes of its profile booted and unclaimed (its members: owned
by the pool, labelled `reef.vers.sh/pool`), never more than `maxSize` at once. A Lieutenant
or VMNode naming the pool in `spec.poolRef` takes a ready member's VM instead of booting
one (docs/pools-and-forks.md), and the pool boots a replacement.
"""

from __future__ import annotations

from reef_operator.api import common
from reef_operator.api.conditions import VMPOOL as VMPOOL_CONDITIONS
from reef_operator.api.kinds import Column, Kind
from reef_operator.api.schema import conditions, integer, name_ref, obj
from reef_operator.api.vmnode import SPEC as VMNODE_SPEC

CONDITION_TYPES = VMPOOL_CONDITIONS.type_names
MAX_SIZE = 100

SPEC = obj(
    "How many warm VMs of which profile to keep.",
    {
        "profileRef": name_ref("BootProfile the members boot from; a lieutenant taking a "
                               "member boots nothing of its own.", "BootProfile"),
        "minReady": integer("Members kept booted and unclaimed; each claim is replaced.",
                            minimum=0, maximum=MAX_SIZE, default=1),
        "maxSize": integer("Members (booting or ready, unclaimed) that may exist at once; "
                           "at least minReady.", minimum=1, maximum=MAX_SIZE, default=10),
        "resources": common.resources("member"),
        "heartbeat": VMNODE_SPEC["properties"]["heartbeat"],
    },
    required=("profileRef",),
)

STATUS = obj(
    "The pool's members as the operator last counted them.",
    {
        "observedGeneration": integer("The .metadata.generation the operator last acted on.",
                                      minimum=0, format="int64"),
        "ready": integer("Members booted, answering heartbeats and unclaimed.", minimum=0),
        "size": integer("Unclaimed members, booting or ready.", minimum=0),
        "claimed": integer("VMNodes in the namespace whose VM came from this pool.",
                           minimum=0),
        "conditions": conditions("Current conditions.", CONDITION_TYPES),
    },
)

VMPOOL = Kind(
    kind="VMPool",
    plural="vmpools",
    short_names=("vmp",),
    namespaced=True,
    description=("Warm VMs of one BootProfile, booted ahead for lieutenants and VMNodes "
                 "that name the pool in spec.poolRef."),
    spec=SPEC,
    status=STATUS,
    columns=(
        Column("Profile", "string", ".spec.profileRef.name", "BootProfile of the members"),
        Column("Ready", "integer", ".status.ready", "Members ready to be claimed"),
        Column("Claimed", "integer", ".status.claimed", "VMNodes whose VM came from the pool"),
        Column("Size", "integer", ".status.size", "Unclaimed members, booting or ready"),
        Column("Min", "integer", ".spec.minReady", "Members kept ready"),
        Column("Max", "integer", ".spec.maxSize", "Members at most"),
        Column("Age", "date", ".metadata.creationTimestamp", "Age"),
    ),
)
