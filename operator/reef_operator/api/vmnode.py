"""The VMNode kind: one VM, its desired state and its place in the lineage tree."""

from __future__ import annotations

from reef_operator.api import common
from reef_operator.api.conditions import VMNODE as VMNODE_CONDITIONS
from reef_operator.api.kinds import Column, Kind
from reef_operator.api.schema import (
    DNS_LABEL,
    array,
    conditions,
    integer,
    name_ref,
    obj,
    string,
    string_set,
    timestamp,
)

VM_STATES_OBSERVED = ("booting", "running", "paused", "sleeping", "dead")
CONDITION_TYPES = VMNODE_CONDITIONS.type_names

SPEC = obj(
    "Desired state of the VM.",
    {
        "state": string(
            "Desired state: Running, Paused (frozen with memory intact) or Destroyed (VM "
            "released, object kept). Pausing or resuming a node does the same to its subtree.",
            enum=common.VM_STATES, default="Running",
        ),
        "category": string(
            "What the VM is for: Lieutenant, Swarm (worker), Agent or Infra.",
            enum=common.VM_CATEGORIES, default="Agent",
        ),
        "profileRef": name_ref("BootProfile the VM is made and booted from.", "BootProfile"),
        "source": common.source("VM"),
        "poolRef": name_ref(
            "VMPool (same namespace) to take a warm VM from: a ready member's VM, booted "
            "from the pool's profile, instead of booting one (the profile is the pool's "
            "unless profileRef says otherwise; a pool with no ready member means a VM of "
            "its own, condition Pooled=False PoolEmpty). Read when the node has no VM.",
            "VMPool"),
        "resources": common.resources("node"),
        "parentRef": obj(
            "The VMNode that spawned this one. Deleting the parent deletes this node too.",
            {
                "name": string("Name of the parent VMNode.", pattern=DNS_LABEL, max_length=63),
                "namespace": string(
                    "Namespace of the parent; it must be this node's own namespace (ownership "
                    "cannot cross namespaces). Leave it out.", pattern=DNS_LABEL, max_length=63),
            },
            required=("name",),
        ),
        "modules": common.modules("VM"),
        "capabilities": common.capabilities("VM"),
        "vmId": string(
            "Adopt this existing VM instead of creating one. Cannot change once set. A VM "
            "labelled for another namespace or node is never touched (Stalled, "
            "VMOwnedElsewhere); an unlabelled VM is adopted, and labelled, only in "
            "namespaces the operator lists in REEF_ADOPTION_NAMESPACES.",
            pattern=common.COMMIT_ID,
        ),
        "deletionPolicy": string(
            "What happens to the VM when this object is deleted: Delete it, or Orphan it "
            "(leave it running on the platform).",
            enum=("Delete", "Orphan"), default="Delete",
        ),
        "heartbeat": obj(
            "Liveness checks of the running VM.",
            {
                "intervalSeconds": integer("Seconds between checks.", minimum=5, maximum=3600,
                                           default=60),
                "staleAfterSeconds": integer(
                    "Seconds without a successful check before the VM counts as stale.",
                    minimum=10, maximum=86400, default=300,
                ),
            },
        ),
        "checkpoints": obj(
            "Periodic snapshots (commits) of the VM; the oldest beyond retain are deleted.",
            {
                "intervalSeconds": integer("Seconds between snapshots.", minimum=10,
                                           maximum=604800, default=3600),
                "retain": integer("How many snapshots to keep.", minimum=1, maximum=1000,
                                  default=24),
            },
        ),
    },
)

STATUS = obj(
    "Observed state of the VM, written by the operator.",
    {
        "observedGeneration": integer("The .metadata.generation the operator last acted on.",
                                      minimum=0, format="int64"),
        "vmId": string("Id of the VM on the platform.", max_length=128),
        "vmState": string("State the platform reports.", enum=VM_STATES_OBSERVED),
        "address": string("Host name the VM is reached at.", max_length=253),
        "hostKeyFingerprint": string("SSH host key fingerprint pinned on first contact.",
                                     max_length=256),
        "lineage": obj(
            "Place in the lineage tree.",
            {
                "root": string("Name of the root VMNode of this tree.", max_length=63),
                "depth": integer("Distance from the root (the root has depth 0).", minimum=0),
            },
        ),
        "dna": obj(
            "Effective configuration: the profile's modules and capabilities plus the node's.",
            {
                "modules": string_set("Effective services.", "Service name."),
                "capabilities": string_set("Effective capabilities.", "Capability name."),
            },
        ),
        "boot": obj(
            "The boot script run on the VM.",
            {
                "profileHash": string("Hash of the rendered boot script the VM booted with.",
                                      max_length=128),
                "completedAt": timestamp("When the boot script succeeded."),
                "attempts": integer("Boot script runs so far.", minimum=0),
            },
        ),
        "lastHeartbeatTime": timestamp(
            "A recent successful liveness check: refreshed every half staleAfterSeconds "
            "while the VM answers (the Alive condition changes at once)."),
        "checkpoints": array(
            "Retained snapshots, oldest first.",
            obj(
                "One snapshot.",
                {
                    "commitId": string("Commit id of the snapshot.", max_length=128),
                    "createdAt": timestamp("When it was taken."),
                },
                required=("commitId",),
            ),
            max_items=1000,
        ),
        "conditions": conditions("Current conditions.", CONDITION_TYPES),
    },
)

VMNODE = Kind(
    kind="VMNode",
    plural="vmnodes",
    short_names=("vmn",),
    namespaced=True,
    description=(
        "One VM on a provider (Vers or Local): its desired state, lineage, DNA, heartbeat "
        "and checkpoints."
    ),
    spec=SPEC,
    status=STATUS,
    spec_required=False,
    columns=(
        Column("Category", "string", ".spec.category", "What the VM is for"),
        Column("State", "string", ".status.vmState", "State the platform reports"),
        Column("Ready", "string", '.status.conditions[?(@.type=="Ready")].status', "Ready"),
        Column("Reason", "string", '.status.conditions[?(@.type=="Ready")].reason',
               "Why it is (not) Ready (e.g. Paused, QuotaExceeded, VMNotFound)"),
        Column("VM", "string", ".status.vmId", "VM id"),
        Column("Parent", "string", ".spec.parentRef.name", "Parent VMNode"),
        Column("Age", "date", ".metadata.creationTimestamp", "Age"),
    ),
)
