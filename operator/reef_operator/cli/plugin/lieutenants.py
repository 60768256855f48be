"""What the lieutenant commands do (their arguments are read in `commands/`): create,
send, read, status, pause, resume, destroy, and the wait loop (VMNodes too).

Each changes only the spec (the operator does the work) and reads only status,
so everything the plugin does can also be done with kubectl or GitOps.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException

from reef_operator.api import reefpolicy
from reef_operator.api.lieutenant import TASK_MODES
from reef_operator.cli.plugin import output, pruning
from reef_operator.cli.plugin.cluster import Cluster, Obj, PluginError
from reef_operator.cli.plugin.wait_target import WaitTarget
from reef_operator.constants import API_VERSION
from reef_operator.lieutenants import holds

PLURAL = "lieutenants"


def create(cluster: Cluster, name: str, role: str, *, profile: str | None, model: str | None,
           credentials: str | None, providers: str | None, instructions: str | None,
           tasks: list[str], history_limit: int | None) -> str:
    spec: dict[str, Any] = {"role": role}
    if profile:
        spec["profileRef"] = {"name": profile}
    if model:
        provider, _, model_id = model.partition("/")
        if not provider or not model_id:
            raise PluginError(f"--model {model!r}: expected PROVIDER/ID, e.g. "
                              "anthropic/claude-sonnet-4-5", exit_code=2)
        spec["model"] = {"provider": provider, "id": model_id}
    if credentials:
        spec["credentialsSecretRef"] = {"name": credentials}
    if providers:
        spec["providersConfigMapRef"] = {"name": providers}
    if instructions:
        spec["instructions"] = instructions
    if history_limit is not None:
        spec["historyLimit"] = history_limit
    if tasks:
        spec["tasks"] = [{"name": f"task-{i}", "message": m, "mode": "prompt"}
                         for i, m in enumerate(tasks, start=1)]
    cluster.create(PLURAL, {"apiVersion": API_VERSION, "kind": "Lieutenant",
                            "metadata": {"name": name}, "spec": spec})
    return f"lieutenant/{name} created"


def send(cluster: Cluster, name: str, message: str, mode: str, task_name: str | None) -> str:
    """Append a task to spec.tasks; a concurrent edit makes us re-read and retry. Near the
    object's budget the finished tasks leave the list in the same write (`pruning`)."""
    if mode not in TASK_MODES:
        raise PluginError(f"--mode {mode!r}: expected one of {', '.join(TASK_MODES)}",
                          exit_code=2)
    for _ in range(10):
        lieutenant = cluster.get(PLURAL, name)
        desired = (lieutenant.get("spec") or {}).get("state", "Running")
        if desired == "Destroyed":
            raise PluginError(f"lieutenant {name} is Destroyed: it takes no more tasks "
                              "(create a new one, or set spec.state back to Running)")
        tasks = list((lieutenant.get("spec") or {}).get("tasks") or [])
        taken = {t["name"] for t in tasks}
        used = taken | _names_that_ran(lieutenant)
        chosen = task_name or _next_name(used)
        if chosen in taken:
            raise PluginError(f"lieutenant {name} already has a task named {chosen!r}: "
                              "task names are unique and sent tasks cannot be changed")
        if chosen in used:
            raise PluginError(f"lieutenant {name} already ran a task named {chosen!r}: "
                              "task names are never reused, choose another --task-name")
        task = {"name": chosen, "message": message, "mode": mode}
        pruned = pruning.to_make_room(lieutenant, task)
        gone = {n for _, n in pruned}
        tasks = [t for t in tasks if t["name"] not in gone] + [task]
        patch = {"metadata": {"resourceVersion": lieutenant["metadata"]["resourceVersion"]},
                 "spec": {"tasks": tasks}}
        try:
            cluster.merge_patch(PLURAL, name, patch)
        except ApiException as error:
            if error.status == 409:
                continue
            with cluster.errors(f"cannot send to lieutenant {name}"):
                raise
        notes = []
        if pruned:
            notes.append(f"pruned {len(pruned)} finished task{'s' if len(pruned) > 1 else ''} "
                         "to make room")
        if desired == "Paused":
            notes.append("the lieutenant is paused: it runs after resume")
        elif mode == "prompt" and (lieutenant.get("status") or {}).get("phase") == "Working":
            notes.append("the lieutenant is working: it runs when the current task ends")
        note = f" ({'; '.join(notes)})" if notes else ""
        return f"task {chosen} sent to lieutenant/{name} as {mode}{note}"
    raise PluginError(f"lieutenant {name} kept changing while sending; try again")


def _names_that_ran(lieutenant: Mapping[str, Any]) -> set[str]:
    """Task names the status still knows as sent: pruned from the spec, never to be reused."""
    status = lieutenant.get("status") or {}
    return {str(t["name"]) for t in status.get("tasks") or []
            if t.get("phase") not in (None, "Pending")} | \
        {str(h["task"]) for h in status.get("history") or [] if h.get("task")}


def _next_name(taken: set[str]) -> str:
    """`task-N` after the highest N used (a pruned task's number is never given again)."""
    numbers = [int(n[5:]) for n in taken if n.startswith("task-") and n[5:].isdigit()]
    number = max([len(taken), *numbers]) + 1
    while f"task-{number}" in taken:
        number += 1
    return f"task-{number}"


def read(cluster: Cluster, name: str, *, tail: int | None, history: int | None) -> str:
    lieutenant = cluster.get(PLURAL, name)
    if history is not None:
        text = output.history_blocks(lieutenant, history)
    else:
        text = output.current_output(lieutenant)
    if tail is not None:
        text = text[-tail:] if tail > 0 else ""
    return text


def status_rows(lieutenants: list[Obj], all_namespaces: bool,
                policies: Mapping[str, Obj] | None = None,
                ) -> tuple[list[str], list[list[object]]]:
    """The status table: a lieutenant's phase and the reason for it, its work, and its
    idle policy and budget with the usage against it (the spec's, else the defaults of
    its namespace's ReefPolicy in `policies`, marked so)."""
    headers = ["name", "phase", "reason", "task", "tasks", "vm", "model", "tokens", "cost",
               "budget", "idle policy", "last activity", "age"]
    if all_namespaces:
        headers.insert(0, "namespace")
    rows: list[list[object]] = []
    for item in lieutenants:
        status, spec = item.get("status") or {}, item.get("spec") or {}
        usage = status.get("usage") or {}
        policy = (policies or {}).get(str(item["metadata"].get("namespace")))
        row: list[object] = [
            item["metadata"]["name"], status.get("phase"),
            output.condition_summary(item, "Ready")["reason"],
            (status.get("currentTask") or {}).get("name"), status.get("taskCount", 0),
            status.get("vmId"), output.model_label(spec),
            output.total_tokens(status), f"${float(usage.get('cost') or 0):.4f}",
            _budget_cell(spec, status, policy), _idle_cell(spec, policy),
            output.age(status.get("lastActivityTime")) and
            f"{output.age(status.get('lastActivityTime'))} ago",
            output.age(item["metadata"].get("creationTimestamp")),
        ]
        if all_namespaces:
            row.insert(0, item["metadata"].get("namespace"))
        rows.append(row)
    return headers, rows


def held_notes(lieutenants: list[Obj], all_namespaces: bool) -> list[str]:
    """One line per lieutenant a policy holds (idle-paused, budget spent, expired, waiting
    for room in its namespace): who, the reason, and the operator's one-line message."""
    notes = []
    for item in lieutenants:
        ready = output.condition_summary(item, "Ready")
        if ready["reason"] not in POLICY_REASONS:
            continue
        meta = item["metadata"]
        who = f"{meta.get('namespace')}/{meta['name']}" if all_namespaces else meta["name"]
        message = " ".join(ready["message"].split())[:NOTE_LIMIT]
        notes.append(f"{who}: {ready['reason']}" + (f": {message}" if message else ""))
    return notes


# The summary reasons of the operator's policies (docs/policies.md), shown with their message.
POLICY_REASONS = ("IdlePaused", "BudgetExhausted", "Expired", "QuotaExceeded")
NOTE_LIMIT = 300     # characters of a condition's message on a note line


def namespace_policies(cluster: Cluster, all_namespaces: bool) -> dict[str, Obj]:
    """Each namespace's ReefPolicy (the oldest, as the operator picks it), for the defaults
    a lieutenant's spec leaves out; {} when the user may not read policies."""
    try:
        found = cluster.items("reefpolicies", all_namespaces=all_namespaces)
    except PluginError:
        return {}
    by_namespace: dict[str, list[Obj]] = {}
    for policy in found:
        by_namespace.setdefault(str(policy["metadata"].get("namespace")), []).append(policy)
    return {namespace: dict(reefpolicy.applied(policies) or {})
            for namespace, policies in by_namespace.items()}


def _effective(spec: Mapping[str, Any], policy: Obj | None, key: str) -> tuple[Any, bool]:
    """The spec's value of `key`, else the policy's default; and whether it is the policy's."""
    if key in spec:
        return spec[key], False
    value = holds.effective(spec, policy)[key]
    return value, value is not None


def _budget_cell(spec: Mapping[str, Any], status: Mapping[str, Any], policy: Obj | None) -> str:
    """The usage against spec.budget: `41,200/40,000 tok`, `$0.4100/$1.00`, or ''."""
    budget, from_policy = _effective(spec, policy, "budget")
    usage = status.get("usage") or {}
    parts = []
    if (budget or {}).get("maxTokens") is not None:
        parts.append(f"{holds.budget_tokens(usage):,}/{int(budget['maxTokens']):,} tok")
    if (budget or {}).get("maxCostUSD") is not None:
        parts.append(f"${float(usage.get('cost') or 0):.4f}/${float(budget['maxCostUSD']):.2f}")
    return ", ".join(parts) + (" (policy)" if parts and from_policy else "")


def _idle_cell(spec: Mapping[str, Any], policy: Obj | None) -> str:
    """`pause 15m, destroy 7d` from idlePolicy, or ''."""
    idle, from_policy = _effective(spec, policy, "idlePolicy")
    parts = [f"{verb} {(idle or {})[key]}" for verb, key in (("pause", "pauseAfter"),
                                                            ("destroy", "destroyAfter"))
             if (idle or {}).get(key)]
    return ", ".join(parts) + (" (policy)" if parts and from_policy else "")


def set_state(cluster: Cluster, name: str, state: str) -> str:
    lieutenant = cluster.get(PLURAL, name)
    current = (lieutenant.get("spec") or {}).get("state", "Running")
    if current == "Destroyed" and state != "Destroyed":
        raise PluginError(f"lieutenant {name} is Destroyed: its VM is gone, it cannot be "
                          f"{'paused' if state == 'Paused' else 'resumed'}")
    if current == state:
        return f"lieutenant/{name} is already {state}"
    with cluster.errors(f"cannot set lieutenant {name} to {state}"):
        cluster.merge_patch(PLURAL, name, {"spec": {"state": state}})
    note = ""
    status = lieutenant.get("status") or {}
    if state == "Paused" and status.get("phase") == "Working":
        task = (status.get("currentTask") or {}).get("name")
        note = f" (working on {task}: it pauses when that task ends)"
    return f"lieutenant/{name} set to {state}{note}"


def wait_for(cluster: Cluster, name: str, target: WaitTarget, timeout: float,
             namespace: str | None = None, plural: str = PLURAL) -> Obj:
    """Watch the object until it meets `target`; the timeout names how it stands instead."""
    deadline = time.monotonic() + timeout
    last: Obj = {}
    while time.monotonic() < deadline:
        for obj in cluster.watch(plural, name, namespace, deadline - time.monotonic()):
            last = obj
            if target.met_by(obj):
                return obj
    shown = target.describe(last) if last else "nothing read"
    raise PluginError(f"timed out after {timeout:g}s waiting for {name} {target} "
                      f"(now: {shown})")


def destroy(cluster: Cluster, target: str, *, yes: bool, delete: bool, all_namespaces: bool,
            confirm: Callable[[str], bool]) -> list[str]:
    if target == "*":
        lieutenants = cluster.items(PLURAL, all_namespaces=all_namespaces)
        if not lieutenants:
            where = "any namespace" if all_namespaces else f"namespace {cluster.namespace}"
            return [f"no lieutenants in {where}"]
    else:
        lieutenants = [cluster.get(PLURAL, target)]
    names = [f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in lieutenants]
    action = "delete" if delete else "destroy"
    what = ("their VMs are deleted and the objects removed" if delete else
            "their agents stop and VMs are deleted; the objects and histories stay")
    if not yes and not confirm(f"{action} {len(names)} lieutenant(s): {', '.join(names)}? "
                               f"({what}) [y/N] "):
        raise PluginError("nothing destroyed (not confirmed)")
    done = []
    for item in lieutenants:
        name, namespace = item["metadata"]["name"], item["metadata"]["namespace"]
        if delete:
            cluster.delete(PLURAL, name, namespace)
            done.append(f"lieutenant/{name} deleted")
        else:
            with cluster.errors(f"cannot destroy lieutenant {namespace}/{name}"):
                cluster.merge_patch(PLURAL, name, {"spec": {"state": "Destroyed"}}, namespace)
            done.append(f"lieutenant/{name} destroyed")
    return done


def ask(prompt: str) -> bool:
    if not sys.stdin.isatty():
        raise PluginError("refusing to destroy without confirmation: stdin is not a terminal "
                          "(pass --yes)")
    return input(prompt).strip().lower() in ("y", "yes")
