"""`kubectl reef policy`: the namespace's ReefPolicy, what is used of each limit, its
defaults, and the lieutenants and VMNodes waiting for room (QuotaExceeded).

Read with the user's identity: the policy, and the lieutenants and VMNodes of the
namespace (a waiting object is one whose Ready condition says QuotaExceeded).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from reef_operator.api import reefpolicy
from reef_operator.cli.plugin import output
from reef_operator.cli.plugin.cluster import Cluster, Obj
from reef_operator.cli.plugin.command import Command, output_format, say
from reef_operator.constants import LABEL_LIEUTENANT

LIMITS = (  # (label, limit, figure of status.used, how a figure prints)
    ("lieutenants", "maxLieutenants", "lieutenants", "{}"),
    ("running VMs", "maxRunningVMs", "runningVMs", "{}"),
    ("cost today", "costPerDayUSD", "costTodayUSD", "${:.2f}"),
)
SIZES = (("vCPU per VM", "maxVCPUPerVM", "{}"), ("memory per VM", "maxMemoryMiBPerVM",
                                                  "{} MiB"))
LISTS = (("profiles", "allowedProfiles"), ("model providers", "allowedModelProviders"))


def _arguments(parser: argparse.ArgumentParser) -> None:
    output_format(parser)


def waiting(objects: list[Obj], kind: str) -> list[Obj]:
    """Those of `objects` waiting for room, with why."""
    found = []
    for obj in objects:
        ready = output.condition(obj, "Ready")
        if ready.get("reason") == "QuotaExceeded":
            found.append({"kind": kind, "name": obj["metadata"]["name"],
                          "message": ready.get("message", "")})
    return found


def report(policy: Mapping[str, Any], others: list[str], lieutenants: list[Obj],
           vmnodes: list[Obj]) -> Obj:
    """What the command shows, as data (`-o json|yaml`)."""
    spec, status = policy.get("spec") or {}, policy.get("status") or {}
    limits, used = spec.get("limits") or {}, status.get("used") or {}
    own = {n["metadata"]["name"] for n in vmnodes if LABEL_LIEUTENANT in
           (n["metadata"].get("labels") or {})}
    return {
        "name": policy["metadata"]["name"], "namespace": policy["metadata"].get("namespace"),
        "ignored": others,
        "limits": limits, "used": used, "defaults": spec.get("defaults") or {},
        "waiting": waiting(lieutenants, "Lieutenant") +
        [w for w in waiting(vmnodes, "VMNode") if w["name"] not in own],
    }


def lines(found: Mapping[str, Any]) -> list[str]:
    """The table form of `report`."""
    limits, used = found["limits"], found["used"]
    rows = []
    for label, limit, figure, shape in LIMITS:
        have = used.get(figure)
        allowed = limits.get(limit)
        rows.append((label, ("-" if have is None else shape.format(have)) + "/" +
                     ("unlimited" if allowed is None else shape.format(allowed))))
    rows += [(label, "at most " + shape.format(limits[limit]) if limit in limits
              else "unlimited") for label, limit, shape in SIZES]
    rows += [(label, ", ".join(limits[limit]) or "none" if limit in limits else "any")
             for label, limit in LISTS]
    text = [f"ReefPolicy {found['namespace']}/{found['name']}" +
            (f" (as of {used['updatedAt']}, UTC day {used.get('day')})"
             if used.get("updatedAt") else " (no figures from the operator yet)")]
    text += [f"  {label:<16}{value}" for label, value in rows]
    defaults = found["defaults"]
    text.append("Defaults: " + ("; ".join(
        f"{key} " + (", ".join(f"{k}={v}" for k, v in value.items())
                     if isinstance(value, Mapping) else str(value))
        for key, value in defaults.items()) if defaults else "none"))
    if found["waiting"]:
        text.append("Waiting for room (QuotaExceeded):")
        text += [f"  {w['kind']} {w['name']}: {w['message']}" for w in found["waiting"]]
    else:
        text.append("Nothing waits for room.")
    text += [f"Ignored: ReefPolicy {name} (one per namespace: the oldest applies)"
             for name in found["ignored"]]
    return text


def _run(cluster: Cluster, args: argparse.Namespace) -> int:
    policies = cluster.items("reefpolicies")
    applied = reefpolicy.applied(policies)
    if applied is None:
        message = f"no ReefPolicy in namespace {cluster.namespace}"
        say(output.structured(None, args.output) if args.output != "table" else message)
        return 0
    others = [p["metadata"]["name"] for p in policies if p is not applied]
    found = report(applied, others, cluster.items("lieutenants"), cluster.items("vmnodes"))
    say(output.structured(found, args.output) if args.output != "table"
        else "\n".join(lines(found)))
    return 0


COMMAND = Command("policy", "the namespace's ReefPolicy and what is used of it", _arguments,
                  _run)
