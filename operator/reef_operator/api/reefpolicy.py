"""The ReefPolicy kind: what the lieutenants and VMNodes of one namespace may use.

One per namespace (a second is refused at admission; if one slips through while the
webhook is down, the oldest applies and the other says so in its conditions). It sets
the defaults a lieutenant takes when its own spec is silent (idle policy, budget) and
the limits of the namespace: how many lieutenants and running VMs, how big a VM, which
BootProfiles and model providers, and how much the namespace may spend per day.
Limits that can be decided when an object is written are refused at admission; the
others (running VMs, the day's cost) make the object wait, `QuotaExceeded`.
"""

from __future__ import annotations

from reef_operator.api import common
from reef_operator.api.kinds import Column, Kind
from reef_operator.api.schema import (
    conditions,
    integer,
    number,
    obj,
    string,
    string_set,
    timestamp,
)

CONDITION_TYPES = ("Ready", "Stalled")

SPEC = obj(
    "Defaults and limits for the lieutenants and VMNodes of this namespace.",
    {
        "defaults": obj(
            "What a lieutenant in this namespace takes when its own spec does not say.",
            {
                "idlePolicy": common.idle_policy("a lieutenant of this namespace"),
                "budget": common.budget("a lieutenant's session"),
                "ttlSecondsAfterDestroyed": common.ttl_after_destroyed(),
            },
        ),
        "limits": obj(
            "Limits of the namespace; absent means unlimited.",
            {
                "maxLieutenants": integer(
                    "Lieutenants that may exist in the namespace (a create over it is "
                    "refused at admission).", minimum=0),
                "maxRunningVMs": integer(
                    "VMNodes whose VM may run at once (paused and destroyed ones do not "
                    "count); a node over it waits, QuotaExceeded, until there is room.",
                    minimum=0),
                "maxVCPUPerVM": integer("Virtual CPUs of one VM at most (from its "
                                        "BootProfile's resources).", minimum=1),
                "maxMemoryMiBPerVM": integer("Memory of one VM at most, in MiB (from its "
                                             "BootProfile's resources).", minimum=128),
                "costPerDayUSD": number(
                    "US dollars the namespace's lieutenants may spend per UTC day, summed "
                    "from the usage pi reports; once reached, every lieutenant of the "
                    "namespace pauses after its current task (BudgetExhausted) until the "
                    "next day or a higher limit.", minimum=0),
                "allowedProfiles": string_set(
                    "BootProfiles lieutenants and VMNodes here may boot from (the default "
                    "profile included); absent means any.", "BootProfile name.",
                    max_items=256),
                "allowedModelProviders": string_set(
                    "Model providers (spec.model.provider) lieutenants here may use (the "
                    "operator's default provider included); absent means any.",
                    "Provider name.", max_items=256),
            },
        ),
    },
)

STATUS = obj(
    "What the namespace uses of the policy, written by the operator.",
    {
        "observedGeneration": integer("The .metadata.generation the operator last acted on.",
                                      minimum=0, format="int64"),
        "conditions": conditions("Current conditions.", CONDITION_TYPES),
        "used": obj(
            "What the namespace uses now.",
            {
                "lieutenants": integer("Lieutenants in the namespace.", minimum=0),
                "runningVMs": integer("VMNodes whose VM runs.", minimum=0),
                "day": string("The UTC day costTodayUSD is for (YYYY-MM-DD).",
                              pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"),
                "costTodayUSD": number("US dollars spent by the namespace's lieutenants on "
                                       "that day.", minimum=0),
                "updatedAt": timestamp("When these figures were taken."),
            },
        ),
    },
)

REEFPOLICY = Kind(
    kind="ReefPolicy",
    plural="reefpolicies",
    short_names=("rp",),
    namespaced=True,
    description=(
        "Defaults and limits for the lieutenants and VMNodes of one namespace: idle policy, "
        "budgets, how many lieutenants and running VMs, VM size, allowed BootProfiles and "
        "model providers, a daily cost limit. One per namespace."
    ),
    spec=SPEC,
    status=STATUS,
    columns=(
        Column("Reason", "string", '.status.conditions[?(@.type=="Ready")].reason',
               "Active: the namespace's policy; Duplicate: an older one applies instead"),
        Column("Lieutenants", "integer", ".status.used.lieutenants", "Lieutenants in use"),
        Column("Max-LT", "integer", ".spec.limits.maxLieutenants", "Lieutenants allowed"),
        Column("Running-VMs", "integer", ".status.used.runningVMs", "Running VMs"),
        Column("Max-VMs", "integer", ".spec.limits.maxRunningVMs", "Running VMs allowed"),
        Column("Cost-Today", "number", ".status.used.costTodayUSD", "USD spent today"),
        Column("Age", "date", ".metadata.creationTimestamp", "Age"),
    ),
    spec_required=False,
)

__all__ = ["CONDITION_TYPES", "REEFPOLICY"]
