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

from collections.abc import Iterable, Mapping
from typing import Any

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



# -- what the limits say of one object -------------------------------------------------
# Pure, so admission and the controllers ask the same questions and give the same answer.
# Each problem names the policy, the limit, the figure and what to do instead.


def applied(policies: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The policy that applies among a namespace's ReefPolicies: the oldest (creation time,
    then name) when several slipped past admission; None when there is none."""
    return min(policies, default=None, key=lambda body: (
        str((body.get("metadata") or {}).get("creationTimestamp", "")),
        str((body.get("metadata") or {}).get("name", ""))))


def limits(policy: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The policy's spec.limits ({} without a policy: everything is allowed)."""
    return ((policy or {}).get("spec") or {}).get("limits") or {}


def _named(policy: Mapping[str, Any] | None) -> str:
    meta = (policy or {}).get("metadata") or {}
    return f"ReefPolicy {meta.get('namespace', '')}/{meta.get('name', '')}"


def profile_problems(policy: Mapping[str, Any] | None, profile: str,
                     resources: Mapping[str, Any] | None) -> list[str]:
    """What the policy refuses of a VM booted from BootProfile `profile` with `resources`
    (the node's own, else the profile's; None when the profile is unknown)."""
    found, named = limits(policy), _named(policy)
    problems = []
    allowed = found.get("allowedProfiles")
    if allowed is not None and profile not in allowed:
        problems.append(f"BootProfile {profile!r} is not allowed by {named} (limits."
                        f"allowedProfiles: {', '.join(sorted(allowed)) or 'none'}); set "
                        "spec.profileRef.name to an allowed profile, or ask whoever "
                        "manages the policy")
    for limit, field, unit in (("maxVCPUPerVM", "vcpu", " vCPU"),
                               ("maxMemoryMiBPerVM", "memoryMiB", " MiB")):
        asked = (resources or {}).get(field)
        if found.get(limit) is not None and asked is not None and asked > found[limit]:
            problems.append(f"a VM of BootProfile {profile!r} has {asked}{unit} "
                            f"(resources.{field}), over {named} limits.{limit} "
                            f"({found[limit]}{unit}); use a smaller profile")
    return problems


def model_provider_problem(policy: Mapping[str, Any] | None, provider: str) -> str:
    """Why the policy refuses a lieutenant using model provider `provider` ("" if not)."""
    allowed = limits(policy).get("allowedModelProviders")
    if allowed is None or provider in allowed:
        return ""
    return (f"model provider {provider!r} is not allowed by {_named(policy)} (limits."
            f"allowedModelProviders: {', '.join(sorted(allowed)) or 'none'}); set "
            "spec.model.provider to an allowed one")


def lieutenants_problem(policy: Mapping[str, Any] | None, existing: int) -> str:
    """Why one more lieutenant is refused where `existing` already are ("" if it is not)."""
    most = limits(policy).get("maxLieutenants")
    if most is None or existing < most:
        return ""
    return (f"{_named(policy)} allows {most} lieutenants (limits.maxLieutenants) and "
            f"{existing} already exist in the namespace; delete one first, or ask whoever "
            "manages the policy for a higher limit")


def running_vms_message(policy: Mapping[str, Any] | None, running: int) -> str:
    """The QuotaExceeded message of a node waiting for a running-VM slot."""
    return (f"{_named(policy)} allows {limits(policy).get('maxRunningVMs')} running VMs "
            f"(limits.maxRunningVMs) and {running} run in the namespace; this VM starts "
            "when one of them is paused, destroyed or deleted")


def duplicate_problem(existing: list[str]) -> str:
    """Why a second ReefPolicy in a namespace is refused ("" when it is the first)."""
    if not existing:
        return ""
    return (f"the namespace already has ReefPolicy {existing[0]!r}; there is one per "
            "namespace: edit that one instead")


__all__ = [
    "CONDITION_TYPES",
    "REEFPOLICY",
    "applied",
    "duplicate_problem",
    "lieutenants_problem",
    "limits",
    "model_provider_problem",
    "profile_problems",
    "running_vms_message",
]
