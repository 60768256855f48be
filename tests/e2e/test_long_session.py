"""A session of 151 tasks stays a bounded object, answers each task once, and keeps every
full answer in a TaskRecord.

150 tasks of 6 KB multi-byte messages, each answered with 16 KB of multi-byte text,
`historyLimit: 100`, sent in batches the way a GitOps repository would: each apply
carries the next batch and drops the finished tasks of the last one (pruning by
omission, through the webhook). A watch records the size of every version of the
object the apiserver stores. Then a 151st task through `kubectl reef send`, and task 3's
full answer, long gone from `status.history`, through `kubectl reef read --task`.

Real apiserver and webhook, the operator as its own process, real pi on a Local VM, the
scripted model (whose small context window makes pi compact the conversation on the way).
"""

from __future__ import annotations

import json
import threading
from functools import partial
from typing import Any, cast

import pytest
import yaml
from kubernetes import client

from reef_devkit.operator_process import OperatorProcess
from reef_devkit.scripted_model.harness import ScriptedModel
from reef_operator.constants import GROUP, LABEL_LIEUTENANT, LABEL_TASK, VERSION
from reef_operator.kube.watch import Change, Collection, CustomObjects, ListWatch
from tests.conftest import Kube
from tests.e2e.conftest import wait_for
from tests.e2e.plugin import ok, reef

pytestmark = pytest.mark.controlplane
WEBHOOK = True                     # the operator serves its admission webhook

TASKS = 150
BATCH = 10
OBJECT_BUDGET = 512 * 1024


def marker(number: int) -> str:
    return f"[task {number:03d}]"


def _fill(head: str, pattern: str, size: int) -> str:
    """`head`, then `pattern` repeated, cut to at most `size` UTF-8 bytes."""
    text = head + pattern * (size // len(pattern.encode()) + 1)
    return text.encode()[:size].decode(errors="ignore")


def message(number: int) -> str:
    return _fill(f"{marker(number)} Review module {number}: ", "ünïcödé çhâñgé → ", 6000)


def answer(number: int) -> str:
    ending = f" (end {number:03d})"
    return _fill(f"Answer {number:03d}: ", "レビュー完了、問題なし。", 16000) + ending


SCRIPT = yaml.safe_dump({"tasks": [
    {"match": marker(n), "steps": [{"text": answer(n), "chunks": 4}]}
    for n in range(1, TASKS + 2)]}, allow_unicode=True)


class Sizes:
    """The size of every version of one object, as a list and watch deliver them."""

    def __init__(self, admin: Kube, namespace: str, name: str) -> None:
        self.name = name
        self.sizes: list[int] = []
        self._lock = threading.Lock()
        self._collection = Collection(self._record)
        self._follower = ListWatch(CustomObjects(admin.custom, "lieutenants", namespace),
                                   self._collection, name="long-session-sizes")

    def _record(self, change: Change, obj: dict[str, Any]) -> None:
        if change != "DELETED" and obj["metadata"]["name"] == self.name:
            with self._lock:
                self.sizes.append(len(json.dumps(obj, separators=(",", ":")).encode()))

    def __enter__(self) -> Sizes:
        self._follower.start()
        assert self._collection.answered.wait(10), "the watch did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._follower.stop(wait=15)

    def largest(self) -> tuple[int, int]:
        with self._lock:
            return max(self.sizes, default=0), len(self.sizes)


def test_a_long_session_stays_bounded_and_answers_every_task_once(
        admin: Kube, namespace: str, operator: OperatorProcess, model: ScriptedModel) -> None:
    # A window small enough that pi compacts the conversation several times on the way.
    admin.core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="scripted-models"),
        data={"models.json": model.models_json(context_window=120000)}))

    def apply(tasks: range) -> None:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Lieutenant",
                "metadata": {"name": "api"},
                "spec": {"role": "Review modules", "profileRef": {"name": "local"},
                         "model": {"provider": "scripted", "id": "scripted-1"},
                         "providersConfigMapRef": {"name": "scripted-models"},
                         "historyLimit": 100,
                         "tasks": [{"name": f"t{n:03d}", "message": message(n)}
                                   for n in tasks]}}
        admin.kubectl("apply", "-n", namespace, "-f", "-",
                      stdin=yaml.safe_dump(body, allow_unicode=True))

    def finished(tasks: range) -> dict[str, Any] | None:
        obj = admin.get("lieutenants", "api", namespace)
        phases = {t["name"]: t.get("phase") for t in (obj.get("status") or {}).get("tasks") or []}
        done = all(phases.get(f"t{n:03d}") == "Succeeded" for n in tasks)
        return obj if done and obj["status"].get("phase") == "Idle" else None

    with Sizes(admin, namespace, "api") as sizes:
        for first in range(1, TASKS + 1, BATCH):
            batch = range(first, first + BATCH)
            apply(batch)
            wait_for(partial(finished, batch), 300, f"tasks {batch.start}-{batch.stop - 1}",
                     operator)
            largest, versions = sizes.largest()
            assert largest < OBJECT_BUDGET, (largest, versions)

        ok(reef(admin, "-n", namespace, "send", "api", message(TASKS + 1),
                "--task-name", f"t{TASKS + 1:03d}"))
        last = wait_for(lambda: finished(range(TASKS + 1, TASKS + 2)), 300, "task 151",
                        operator)
        largest, versions = sizes.largest()
    assert largest < OBJECT_BUDGET, (largest, versions)
    assert versions > 2 * TASKS               # the watch saw the session's many writes

    status = last["status"]
    assert status["session"]["compactions"] >= 1       # pi compacted on the way
    assert status["history"][-1]["response"] == answer(TASKS + 1)
    assert status["history"][0]["task"] != "t001"     # the earliest answers left history

    # Every task reached the model exactly once (compaction requests aside).
    asked: dict[str, int] = {}
    for request in model.requests(brief=True):
        latest = str(request.get("latestUser", ""))
        if latest.startswith("[task "):
            asked[latest[:10]] = asked.get(latest[:10], 0) + 1
    assert asked == {marker(n): 1 for n in range(1, TASKS + 2)}

    # Exactly one record per task, each holding the task's whole answer.
    listed = cast(dict[str, Any], admin.custom.list_namespaced_custom_object(
        GROUP, VERSION, namespace, "taskrecords", label_selector=f"{LABEL_LIEUTENANT}=api"))
    records: list[dict[str, Any]] = listed["items"]
    by_task: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_task.setdefault(record["metadata"]["labels"][LABEL_TASK], []).append(record)
    assert sorted(by_task) == [f"t{n:03d}" for n in range(1, TASKS + 2)]
    assert all(len(found) == 1 for found in by_task.values())
    assert all(found[0]["spec"]["answer"] == answer(int(task[1:]))
               for task, found in by_task.items())

    # Task 3's full answer, from its record, though history no longer holds it.
    assert "t003" not in [h["task"] for h in status["history"]]
    assert ok(reef(admin, "-n", namespace, "read", "api", "--task", "t003")) == \
        answer(3) + "\n"
