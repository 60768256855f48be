"""Admission checks the schema cannot express (a 1.20 apiserver has no CEL).

- A task already sent to the agent cannot be edited; only a finished one (Succeeded,
  Failed, Aborted) may leave spec.tasks, and a name that already ran is never added again
  (known from status.tasks, or from the lieutenant's TaskRecords, since the status keeps
  only a window of finished tasks: asked within the same short budget, failing open).
- spec.tasks stays within its byte budget (api/budget.py) unless the write shrinks it.
- A VMNode's vmId cannot change once set, nor a Lieutenant's forkFrom (nor can it be
  added to an existing lieutenant).
- A Lieutenant's credentialsSecretRef names a Secret labelled
  `reef.vers.sh/agent-credentials: "true"` (checked on CREATE and when the reference
  changes; reading the labels needs the operator's client, within a short budget).
- A BootProfile's env secretKeyRef reads only from the operator's namespace.
- What the namespace's ReefPolicy forbids (controllers/policy_admission.py).

Served by kopf's webhook server when REEF_WEBHOOK_PORT is set; kopf keeps the
ValidatingWebhookConfiguration `reef.vers.sh` pointing at it. Failures of the
webhook itself are ignored by the apiserver (an operator that is down must not
block every edit); the controllers still refuse to act on a changed sent task, on an
unlabelled credentials Secret and on a profile reading Secrets elsewhere. For the same
reason a lookup that fails or exceeds its budget lets the object through.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import kopf

from reef_operator.api.budget import SPEC_TASKS_BUDGET, spec_tasks_bytes
from reef_operator.api.lieutenant import FINISHED_TASK_PHASES as FINISHED
from reef_operator.constants import GROUP, LABEL_TASK, VERSION
from reef_operator.controllers import delegation_admission, policy_admission, runtime
from reef_operator.lieutenants.forking import fork_from_problems
from reef_operator.lieutenants.inputs import credentials_consented, unlabelled_credentials_message
from reef_operator.profiles.validation import secret_namespace_problems

logger = logging.getLogger(__name__)

# The apiserver waits for the webhook up to its own timeout (10 s by default); a lookup
# (a Secret's labels, a lieutenant's TaskRecords) gets a small part of it, so a slow
# apiserver makes admission fail open, not slow.
LOOKUP_BUDGET = 2.0




def _spec_tasks(body: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(t["name"]): t for t in (body.get("spec") or {}).get("tasks") or []}


def _status_tasks(body: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(t.get("name")): t for t in (body.get("status") or {}).get("tasks") or []}


def _outcome(entry: Mapping[str, Any]) -> str:
    """`Succeeded at <time>`, as much of it as the entry holds."""
    phase, at = entry.get("phase") or "finished", entry.get("completedAt")
    return f"{phase} at {at}" if at else str(phase)


def _finished(body: Mapping[str, Any]) -> dict[str, str]:
    """Tasks the object itself knows as finished, name -> outcome: its history (which keeps
    an answer after its task left spec.tasks and status.tasks), then status.tasks (whose
    phase is exact; the history may hold the time its entry does not keep)."""
    ran, ended = {}, {}
    for entry in (body.get("status") or {}).get("history") or []:
        if entry.get("task"):
            stop = entry.get("stopReason")
            phase = "Aborted" if stop == "aborted" else "Failed" if stop == "error" \
                else "Succeeded"
            ran[str(entry["task"])] = _outcome({**entry, "phase": phase})
            ended[str(entry["task"])] = entry.get("completedAt")
    for name, entry in _status_tasks(body).items():
        if entry.get("phase") in FINISHED:
            ran[name] = _outcome({"phase": entry["phase"],
                                  "completedAt": entry.get("completedAt") or ended.get(name)})
    return ran


def names_to_look_up(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Tasks whose past the object may no longer hold (status keeps a bounded window of
    finished tasks, history a bounded number of answers), so their TaskRecords are asked:
    names the update adds, and tasks it removes or edits, that the object does not know as
    sent."""
    if not old:          # a CREATE: the object has no past
        return []
    before, after, known = _spec_tasks(old), _spec_tasks(new), _status_tasks(old)
    finished = _finished(old)

    def unknown(name: str) -> bool:
        return name not in finished and (known.get(name) or {}).get("phase") in (None, "Pending")

    added = [n for n in after if n not in before and unknown(n)]
    removed = [n for n in before if n not in after and unknown(n)]
    edited = [n for n in before if n in after and _changed(before[n], after[n]) and unknown(n)]
    return added + removed + edited


def _changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """The fields of a task that an update changes (a sent task keeps them)."""
    return [field for field in ("message", "mode")
            if before.get(field, "prompt") != after.get(field, "prompt")]


def task_problems(old: Mapping[str, Any], new: Mapping[str, Any],
                  recorded: Mapping[str, str] | None = None) -> list[str]:
    """What an update does wrong to the task list (pure, for the webhook and tests).

    A task sent to the agent keeps its message and mode; only a finished one may leave the
    list; a name that already ran never comes back (the operator would not deliver it, and
    its answer and record belong to the first task). `recorded` holds what TaskRecords say
    of tasks the object no longer lists: name -> outcome (`Succeeded at <time>`).
    """
    before, after, known = _spec_tasks(old), _spec_tasks(new), _status_tasks(old)
    ran = {**(recorded or {}), **_finished(old)}
    problems = []
    for name in before:
        phase = str((known.get(name) or {}).get("phase") or "Pending")
        if name not in after:
            if name not in ran:
                state = f"{phase} (not yet sent)" if phase == "Pending" else phase
                problems.append(
                    f"task {name!r} is {state} and cannot be removed from spec.tasks: only a "
                    "finished task (Succeeded, Failed or Aborted) can; wait until it ends, "
                    f"then remove it or run `kubectl reef prune "
                    f"{(old.get('metadata') or {}).get('name') or 'NAME'}`")
            continue
        if phase == "Pending" and name not in ran:
            continue
        shown = ran[name] if phase == "Pending" else phase
        problems += [f"task {name!r} was already sent to the agent ({shown}); its {field} "
                     "cannot change: append a new task instead"
                     for field in _changed(before[name], after[name])]
    for name in after:
        if name in before:
            continue
        sent = (known.get(name) or {}).get("phase")
        if name in ran or sent not in (None, "Pending"):
            problems.append(f"task {name!r} already ran ({ran.get(name) or sent}); task names "
                            "are never reused: append it under a new name")
    return problems


def budget_problems(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """A spec.tasks over its byte budget (api/budget.py) is refused when it grew: a write
    that shrinks or keeps the list (a prune, an unrelated edit) always passes."""
    size = spec_tasks_bytes(new.get("spec") or {})
    if size <= SPEC_TASKS_BUDGET or (old and size <= spec_tasks_bytes(old.get("spec") or {})):
        return []
    name = (new.get("metadata") or {}).get("name") or "NAME"
    return [f"spec.tasks would be {size} bytes, over its budget of {SPEC_TASKS_BUDGET} bytes: "
            f"prune finished tasks first (`kubectl reef prune {name}`, or delete them from "
            "Git), then append"]


def record_outcome(record: Mapping[str, Any]) -> str:
    """What a TaskRecord says of its task's end (`Succeeded at <time>`, from its spec)."""
    return _outcome(record.get("spec") or {})


async def _recorded_outcomes(new: Mapping[str, Any], names: list[str]) -> dict[str, str]:
    """Outcomes of `names` from their TaskRecords; none when the lookup fails or exceeds its
    budget, or the kind is not installed (fail open: the ledger still never delivers a task
    twice)."""
    metadata = new.get("metadata") or {}
    namespace, lieutenant = metadata.get("namespace") or "", metadata.get("name") or ""
    if not names or not namespace or not lieutenant:
        return {}
    try:
        records = await asyncio.wait_for(
            runtime.current().kube.list_task_records(namespace, lieutenant, names),
            LOOKUP_BUDGET)
    except Exception as error:
        logger.warning("admission: TaskRecords of lieutenant %s/%s not read (%s); names "
                       "are checked against its status only", namespace, lieutenant,
                       type(error).__name__)
        return {}
    outcomes: dict[str, str] = {}
    for record in records:
        task = ((record.get("metadata") or {}).get("labels") or {}).get(LABEL_TASK)
        if task in names:
            outcomes.setdefault(str(task), record_outcome(record))
    return outcomes


async def lieutenant_tasks_are_kept(body: kopf.Body, **kwargs: Any) -> None:
    old, new = kwargs.get("old") or {}, kwargs.get("new") or body
    recorded = await _recorded_outcomes(new, names_to_look_up(old, new))
    problems = (budget_problems(old, new) + task_problems(old, new, recorded) +
                fork_from_problems(old, new))
    if problems:
        raise kopf.AdmissionError("; ".join(problems), code=422)


def vmnode_vm_id_is_immutable(body: kopf.Body, **kwargs: Any) -> None:
    before = ((kwargs.get("old") or {}).get("spec") or {}).get("vmId")
    after = ((kwargs.get("new") or body).get("spec") or {}).get("vmId")
    if before and after != before:
        raise kopf.AdmissionError(f"spec.vmId is {before!r} and cannot change once set; "
                                  "create another VMNode to adopt another VM", code=422)


def credentials_ref_to_check(old: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
    """The credentials Secret to check: on CREATE, or when an UPDATE names another one.
    An unchanged reference is not checked again, so no unrelated edit (a deletion's
    metadata, an annotation) is ever refused because a label was removed later: the
    controller catches that."""
    def ref(body: Mapping[str, Any]) -> str | None:
        name = ((body.get("spec") or {}).get("credentialsSecretRef") or {}).get("name")
        return str(name) if name else None
    after = ref(new)
    return after if after and after != ref(old) else None


async def lieutenant_credentials_are_labelled(body: kopf.Body, **kwargs: Any) -> None:
    new = kwargs.get("new") or body
    name = credentials_ref_to_check(kwargs.get("old") or {}, new)
    namespace = (new.get("metadata") or {}).get("namespace") or ""
    if name is None or not namespace:
        return
    try:
        labels = await asyncio.wait_for(
            runtime.current().kube.read_secret_labels(namespace, name), LOOKUP_BUDGET)
    except Exception as error:  # fail open: the controller still refuses
        logger.warning("admission: labels of Secret %s/%s not read (%s); the lieutenant's "
                       "controller checks them", namespace, name, type(error).__name__)
        return
    # A Secret not there yet may follow its lieutenant (GitOps order): the controller
    # reports MissingInput until it exists.
    if labels is not None and not credentials_consented(labels):
        raise kopf.AdmissionError(unlabelled_credentials_message(namespace, name), code=422)


def bootprofile_reads_secrets_only_from_the_operator(body: kopf.Body, **kwargs: Any) -> None:
    spec = (kwargs.get("new") or body).get("spec") or {}
    problems = secret_namespace_problems(spec, runtime.current().profiles.secret_namespace)
    if problems:
        raise kopf.AdmissionError("; ".join(problems), code=422)


def register() -> None:
    """Register the checks with kopf (only when a webhook server is configured: kopf
    refuses to run admission handlers without one)."""
    # kopf serves each check at /<id>; a Service clientConfig (the Helm chart's) only
    # accepts lowercase DNS labels as path segments, hence ids without underscores.
    kopf.on.validate(GROUP, VERSION, "lieutenants", operations=["CREATE", "UPDATE"],
                     ignore_failures=True, id="lieutenant-tasks-are-kept")(
        lieutenant_tasks_are_kept)
    kopf.on.validate(GROUP, VERSION, "vmnodes", operations=["UPDATE"], ignore_failures=True,
                     id="vmnode-vm-id-is-immutable")(vmnode_vm_id_is_immutable)
    kopf.on.validate(GROUP, VERSION, "lieutenants", operations=["CREATE", "UPDATE"],
                     ignore_failures=True, id="lieutenant-credentials-are-labelled")(
        lieutenant_credentials_are_labelled)
    kopf.on.validate(GROUP, VERSION, "bootprofiles", operations=["CREATE", "UPDATE"],
                     ignore_failures=True, id="bootprofile-secrets-in-operator-namespace")(
        bootprofile_reads_secrets_only_from_the_operator)
    policy_admission.register()
    delegation_admission.register()
