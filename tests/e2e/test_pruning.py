"""Finished tasks leave spec.tasks; nothing else does, and no name comes back.

Real apiserver with the operator's admission webhook, the operator as its own process,
Local VMs, the real pi and the scripted model; `kubectl reef` run as a user runs it. A task
holds in a bash tool call until the test releases it, so a Running and a Queued task stand
still while the test tries to remove them.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from reef_devkit.operator_process import OperatorProcess
from reef_operator.api.budget import SPEC_TASKS_BUDGET
from reef_operator.cli.plugin.pruning import PRUNE_AT
from reef_operator.constants import GROUP, VERSION
from tests.conftest import Kube
from tests.e2e.conftest import wait_for
from tests.e2e.plugin import create, ok, reef

pytestmark = pytest.mark.controlplane
WEBHOOK = True                     # the operator serves its admission webhook

GATE = Path(tempfile.gettempdir()) / f"reef-prune-gate-{uuid.uuid4().hex}"
SCRIPT = f"""
tasks:
  - match: "Hold until released"
    steps:
      - tool_calls:
          - name: bash
            arguments: {{command: "while [ ! -e {GATE} ]; do sleep 0.2; done; echo released"}}
      - text: "Released."
  - match: "Answer"
    steps:
      - text: "Answered."
"""


@pytest.fixture(scope="module", autouse=True)
def _gate_removed() -> Iterator[None]:
    yield
    GATE.unlink(missing_ok=True)


@pytest.fixture
def webhook(admin: Kube, operator: OperatorProcess) -> None:
    """The operator's webhook configuration is in place with the task list's check."""
    admission = client.AdmissionregistrationV1Api(admin.api)

    def configured() -> bool:
        found = admission.list_validating_webhook_configuration().items
        return "lieutenant-tasks-are-kept" in json.dumps(
            [admin.api.sanitize_for_serialization(c) for c in found])

    wait_for(configured, 60, "the operator's ValidatingWebhookConfiguration", operator)


def _tasks(admin: Kube, namespace: str) -> list[dict[str, Any]]:
    return list(admin.get("lieutenants", "api", namespace)["spec"].get("tasks") or [])


def _phase(admin: Kube, namespace: str, task: str) -> str:
    status = admin.get("lieutenants", "api", namespace).get("status") or {}
    return next((str(t["phase"]) for t in status.get("tasks") or [] if t["name"] == task), "")


def _until(admin: Kube, namespace: str, operator: OperatorProcess, phase: str,
           *tasks: str) -> None:
    wait_for(lambda: all(_phase(admin, namespace, t) == phase for t in tasks), 180,
             f"{', '.join(tasks)} {phase}", operator)


def _refusal(admin: Kube, namespace: str, tasks: list[dict[str, Any]]) -> str:
    """The webhook's message refusing spec.tasks = `tasks` (the list stays as it was)."""
    before = _tasks(admin, namespace)
    with pytest.raises(ApiException) as refused:
        admin.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "lieutenants", "api", {"spec": {"tasks": tasks}})
    assert refused.value.status == 422
    assert _tasks(admin, namespace) == before
    message = str(json.loads(refused.value.body or "{}")["message"])
    return message.split("denied the request: ", 1)[1]


def test_only_finished_tasks_leave_and_no_name_comes_back(
        admin: Kube, scripted: str, operator: OperatorProcess, webhook: None) -> None:
    ns = scripted
    create(admin, ns)
    for message in ("Answer one", "Answer two"):
        ok(reef(admin, "-n", ns, "send", "api", message))
    _until(admin, ns, operator, "Succeeded", "task-1", "task-2")
    ok(reef(admin, "-n", ns, "send", "api", "Hold until released"))
    _until(admin, ns, operator, "Running", "task-3")
    ok(reef(admin, "-n", ns, "send", "api", "Answer four", "--mode", "followUp"))
    _until(admin, ns, operator, "Queued", "task-4")
    one, two, three, four = _tasks(admin, ns)

    assert _refusal(admin, ns, [one, two, three]) == (
        "task 'task-4' is Queued and cannot be removed from spec.tasks: only a finished task "
        "(Succeeded, Failed or Aborted) can; wait until it ends, then remove it or run "
        "`kubectl reef prune api`")
    assert _refusal(admin, ns, [{**one, "message": "Answer one, differently"}, two, three,
                                four]) == (
        "task 'task-1' was already sent to the agent (Succeeded); its message cannot change: "
        "append a new task instead")

    assert ok(reef(admin, "-n", ns, "prune", "api", "--keep", "1")) == \
        "pruned 1 finished task (task-1) from lieutenant/api\n"
    assert _tasks(admin, ns) == [two, three, four]
    refused = _refusal(admin, ns, [two, three, four, one])
    assert refused.startswith("task 'task-1' already ran (Succeeded at ")
    assert refused.endswith("); task names are never reused: append it under a new name")

    # A finished task removed by hand (as a GitOps sync does) is accepted.
    admin.custom.patch_namespaced_custom_object(
        GROUP, VERSION, ns, "lieutenants", "api", {"spec": {"tasks": [three, four]}})
    assert ok(reef(admin, "-n", ns, "prune", "api")) == \
        "lieutenant/api has no finished tasks to prune\n"
    assert _tasks(admin, ns) == [three, four]

    GATE.touch()
    _until(admin, ns, operator, "Succeeded", "task-3", "task-4")
    assert ok(reef(admin, "-n", ns, "prune", "api")) == \
        "pruned 2 finished tasks (task-3, task-4) from lieutenant/api\n"
    assert _tasks(admin, ns) == []

    # The next task gets a new name and is answered, once.
    assert ok(reef(admin, "-n", ns, "send", "api", "Answer five")) == \
        "task task-5 sent to lieutenant/api as prompt\n"
    assert ok(reef(admin, "-n", ns, "read", "api", "--follow")) == "Answered.\n"
    history = admin.get("lieutenants", "api", ns)["status"]["history"]
    assert [h["task"] for h in history] == ["task-1", "task-2", "task-3", "task-4", "task-5"]


def test_send_near_the_budget_prunes_the_finished_tasks_and_says_so(
        admin: Kube, scripted: str, operator: OperatorProcess, webhook: None) -> None:
    """Three finished tasks hold just under the mark at which send prunes; the fourth's
    message takes the list over it."""
    ns = scripted
    create(admin, ns)
    big = "Answer " + "é" * (PRUNE_AT // 3 // 2 - 100)      # two bytes a character
    for _ in range(3):
        assert "pruned" not in ok(reef(admin, "-n", ns, "send", "api", big))
    _until(admin, ns, operator, "Succeeded", "task-1", "task-2", "task-3")
    assert ok(reef(admin, "-n", ns, "send", "api", "Answer " + "x" * 2000)) == \
        "task task-4 sent to lieutenant/api as prompt (pruned 3 finished tasks to make room)\n"
    assert [t["name"] for t in _tasks(admin, ns)] == ["task-4"]
    assert ok(reef(admin, "-n", ns, "read", "api", "--follow")) == "Answered.\n"

    # Past the budget itself, the webhook refuses the append and says what to do.
    more = [{"name": f"more-{i}", "message": "Answer " + "x" * 25000, "mode": "prompt"}
            for i in range(4)]
    refused = _refusal(admin, ns, _tasks(admin, ns) + more)
    assert refused.startswith("spec.tasks would be ")
    assert refused.endswith(f" bytes, over its budget of {SPEC_TASKS_BUDGET} bytes: prune "
                            "finished tasks first (`kubectl reef prune api`, or delete them "
                            "from Git), then append")
