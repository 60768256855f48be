"""A session that lives for months: what its length costs, for sessions of 10, 100 and 1000
tasks. All three figures should stay flat as the session grows.

Real control plane, the operator, the real pi on a Local VM, the scripted model (short
answers, no model latency). Each session is one lieutenant given its tasks one at a
time, the next appended once the previous is answered; finished tasks are pruned from
`spec.tasks` as they finish (with `kubectl reef prune`'s own code). Per session it
reports:
  - the object's size: bytes of the Lieutenant's JSON as the apiserver returns it, read
    after every task (the largest, and the last);
  - Kubernetes writes per task: the operator's requests in the apiserver's audit log
    during the session (all writes, and status patches alone), divided by its tasks;
  - append → pi asks the model: from the patch that appends a task to the scripted
    model's first request for it (p50, p95).

    .venv/bin/python -m bench.long_session [SIZES...] [--json PATH]     (default 10 100 1000)
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

from bench.audit import audit_counts
from bench.errors import BenchError
from reef_devkit.controlplane import LocalControlPlane
from reef_devkit.operator_process import OperatorProcess
from reef_devkit.scripted_model.harness import ScriptedModel
from reef_operator.cli.plugin import pruning
from reef_operator.cli.plugin.cluster import Cluster
from reef_operator.constants import GROUP, VERSION
from reef_operator.providers.local import kill_every_vm

NAMESPACE = "bench"
SCRIPT = """
tasks:
  - match: "Task"
    steps:
      - text: "Done with it."
"""
FINISHED = ("Succeeded", "Failed", "Aborted")
TASK_SECONDS = 120            # a task not answered in this long fails the run
SETTLE_SECONDS = 2            # after the last task, for its last (coalesced) writes
JSON_PATCH = "application/json-patch+json"


@dataclass
class Session:
    tasks: int
    object_bytes_max: int = 0
    object_bytes_last: int = 0
    writes_per_task: float = 0.0
    status_patches_per_task: float = 0.0
    delivery_p50: float = 0.0
    delivery_p95: float = 0.0
    seconds: float = 0.0


class LongSessions:
    """One control plane, scripted model and operator for all the sessions."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.plane = LocalControlPlane(work / "cp", log=lambda m: print(m, file=sys.stderr))
        self.plane.up()
        self.audit = self.plane.state_dir / "logs" / "audit.log"
        self.model = ScriptedModel(SCRIPT, work / "model")
        self.operator = OperatorProcess(self.plane.operator_kubeconfig, work / "operator.log",
                                        {"REEF_LOCAL_ROOT": str(work / "vms")})
        configuration = client.Configuration()
        config.load_kube_config(str(self.plane.kubeconfig), client_configuration=configuration)
        api_client = client.ApiClient(configuration)
        self.custom = client.CustomObjectsApi(api_client)
        self.cluster = Cluster.connect(str(self.plane.kubeconfig), None, NAMESPACE)
        core = client.CoreV1Api(api_client)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
        core.create_namespaced_config_map(NAMESPACE, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="models"),
            data={"models.json": self.model.models_json()}))
        self.operator.start()

    def close(self) -> None:
        self.operator.stop()
        kill_every_vm(self.work / "vms")    # a Local VM's processes outlive its directory
        self.model.stop()
        self.plane.down()

    def run(self, tasks: int) -> Session:
        name = f"s{tasks}"
        print(f"--- a session of {tasks} tasks", file=sys.stderr, flush=True)
        self.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "lieutenants", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "Lieutenant", "metadata": {"name": name},
            "spec": {"role": "bench", "profileRef": {"name": "local"},
                     "model": {"provider": "scripted", "id": "scripted-1"},
                     "providersConfigMapRef": {"name": "models"}, "tasks": []}})
        self._until(name, lambda obj: (obj.get("status") or {}).get("phase") == "Idle",
                    "the lieutenant Idle", None)
        session = Session(tasks)
        deliveries: list[float] = []
        sizes: list[int] = []
        _, mark = audit_counts(self.audit, 0)
        started = time.monotonic()
        for n in range(tasks):
            task = f"t{n}"
            message = f"Task {n} of session {name}"
            self.model.forget_requests()
            appended = time.time()
            patched: dict[str, Any] = self.custom.patch_namespaced_custom_object(  # type: ignore[assignment]
                GROUP, VERSION, NAMESPACE, "lieutenants", name,
                [{"op": "add", "path": "/spec/tasks/-",
                  "value": {"name": task, "message": message}}], _content_type=JSON_PATCH)
            self._until(name, lambda obj, t=task: _finished(obj, t), f"task {task} answered",
                        str(patched["metadata"]["resourceVersion"]))
            asked = [r["time"] for r in self.model.requests()
                     if r["conversation"] and r["conversation"][-1]["text"] == message]
            if not asked:
                raise BenchError(f"the scripted model never saw task {task}")
            deliveries.append(min(asked) - appended)
            sizes.append(self._object_bytes(name))
            pruning.prune(self.cluster, name, keep=0)       # kubectl reef prune NAME
        session.seconds = time.monotonic() - started
        time.sleep(SETTLE_SECONDS)
        counts, _ = audit_counts(self.audit, mark)
        session.writes_per_task = sum(v for k, v in counts.items()
                                      if k.startswith("write")) / tasks
        session.status_patches_per_task = counts["write patch lieutenants/status"] / tasks
        session.object_bytes_max, session.object_bytes_last = max(sizes), sizes[-1]
        session.delivery_p50 = statistics.median(deliveries)
        session.delivery_p95 = nearest_rank(deliveries, 0.95)
        return session

    def _object_bytes(self, name: str) -> int:
        response: Any = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, "lieutenants", name, _preload_content=False)
        return len(response.data)

    def _until(self, name: str, check: Any, what: str, resource_version: str | None) -> None:
        """Watch the lieutenant (from `resource_version`, or from a fresh read) until
        `check` holds."""
        if resource_version is None:
            current: dict[str, Any] = self.custom.get_namespaced_custom_object(  # type: ignore[assignment]
                GROUP, VERSION, NAMESPACE, "lieutenants", name)
            if check(current):
                return
            resource_version = current["metadata"]["resourceVersion"]
        stream = watch.Watch()
        deadline = time.monotonic() + TASK_SECONDS
        while time.monotonic() < deadline:
            for event in stream.stream(
                    self.custom.list_namespaced_custom_object, GROUP, VERSION, NAMESPACE,
                    "lieutenants", field_selector=f"metadata.name={name}",
                    resource_version=resource_version, timeout_seconds=TASK_SECONDS):
                obj = event["object"]
                resource_version = obj["metadata"]["resourceVersion"]
                if check(obj):
                    stream.stop()
                    return
        raise BenchError(f"timed out waiting for {what}; the operator's log ends:\n"
                         f"{self.operator.log_tail(40)}")


def _finished(obj: dict[str, Any], task: str) -> bool:
    status = obj.get("status") or {}
    return any(t.get("name") == task and t.get("phase") in FINISHED
               for t in status.get("tasks") or []) or \
        any(h.get("task") == task for h in status.get("history") or [])


def nearest_rank(values: list[float], fraction: float) -> float:
    """The smallest value with at least `fraction` of them at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def measure(sizes: list[int], measured: Callable[[Session], None]) -> list[Session]:
    """Each session in turn, handed to `measured` as soon as it is done."""
    work = Path(tempfile.mkdtemp(prefix="reef-ls-"))
    bench = LongSessions(work)
    sessions: list[Session] = []
    try:
        for size in sizes:
            sessions.append(bench.run(size))
            measured(sessions[-1])
        return sessions
    finally:
        bench.close()
        shutil.rmtree(work, ignore_errors=True)


HEADER = (f"{'tasks':>6} {'object bytes max':>17} {'last':>9} {'writes/task':>12} "
          f"{'status patches/task':>20} {'append→pi p50':>14} {'p95':>8} {'run':>8}")


def row(s: Session) -> str:
    return (f"{s.tasks:>6} {s.object_bytes_max:>17,} {s.object_bytes_last:>9,} "
            f"{s.writes_per_task:>12.2f} {s.status_patches_per_task:>20.2f} "
            f"{s.delivery_p50:>13.3f}s {s.delivery_p95:>7.3f}s {s.seconds:>7.0f}s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.long_session",
                                     description=(__doc__ or "").splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[10, 100, 1000],
                        help="tasks per session (default 10 100 1000)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    print(HEADER, flush=True)
    try:
        sessions = measure(args.sizes, lambda s: print(row(s), flush=True))
    except BenchError as error:
        print(f"bench.long_session: {error}", file=sys.stderr)
        return 1
    if args.json:
        args.json.write_text(json.dumps([asdict(s) for s in sessions], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
