"""What one task costs a lieutenant: Kubernetes writes, and the two latencies users feel.

Real control plane, the operator, the real pi on a Local VM, the scripted model
(no model latency). For each of N tasks appended one at a time it measures:
  - append → pi's request reaches the model (delivery latency),
  - the model's last answer → the history entry visible through a watch,
  - Kubernetes writes by the operator during the task (from the audit log);
then one task whose answer streams for STREAM_SECONDS, and the lieutenant's status
patches per second while it streams (coalesced: at most one a second).

    .venv/bin/python -m bench.lieutenant_task [N]
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

from bench.audit import audit_counts
from bench.errors import BenchError
from reef_devkit.controlplane import LocalControlPlane
from reef_devkit.operator_process import OperatorProcess
from reef_devkit.scripted_model.harness import ScriptedModel
from reef_operator.constants import GROUP, VERSION
from reef_operator.providers.local import kill_every_vm

STREAM_CHUNKS, CHUNK_DELAY = 50, 0.2
STREAM_SECONDS = STREAM_CHUNKS * CHUNK_DELAY
SCRIPT = f"""
tasks:
  - match: "Stream"
    steps:
      - text: "{'Streaming a long answer. ' * STREAM_CHUNKS}"
        chunks: {STREAM_CHUNKS}
        delay: {CHUNK_DELAY}
  - match: "Task"
    steps:
      - text: "Done with it."
"""


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    try:
        measure(count)
    except BenchError as error:
        print(f"bench.lieutenant_task: {error}", file=sys.stderr)
        return 1
    return 0


def measure(count: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="reef-bt-"))
    plane = LocalControlPlane(work / "cp", log=lambda m: print(m, file=sys.stderr))
    plane.up()
    model = ScriptedModel(SCRIPT, work / "model")
    operator = OperatorProcess(plane.operator_kubeconfig, work / "operator.log",
                               {"REEF_LOCAL_ROOT": str(work / "vms")})
    try:
        configuration = client.Configuration()
        config.load_kube_config(str(plane.kubeconfig), client_configuration=configuration)
        api_client = client.ApiClient(configuration)
        custom, core = client.CustomObjectsApi(api_client), client.CoreV1Api(api_client)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="bench")))
        core.create_namespaced_config_map("bench", client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="models"), data={"models.json": model.models_json()}))
        operator.start()
        custom.create_namespaced_custom_object(GROUP, VERSION, "bench", "lieutenants", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "Lieutenant", "metadata": {"name": "lt"},
            "spec": {"role": "bench", "profileRef": {"name": "local"},
                     "model": {"provider": "scripted", "id": "scripted-1"},
                     "providersConfigMapRef": {"name": "models"}, "tasks": []}})
        wait_phase(custom, "Idle")
        audit = plane.state_dir / "logs" / "audit.log"
        time.sleep(2)
        _, mark = audit_counts(audit, 0)
        deliveries, settles, writes = [], [], []
        for n in range(count):
            tasks = custom.get_namespaced_custom_object(GROUP, VERSION, "bench", "lieutenants",
                                                        "lt")["spec"]["tasks"]  # type: ignore[index]
            appended = time.time()
            custom.patch_namespaced_custom_object(GROUP, VERSION, "bench", "lieutenants", "lt", {
                "spec": {"tasks": [*tasks, {"name": f"t{n}", "message": f"Task {n}"}]}})
            seen_at = wait_history(custom, n + 1)
            requests = [r for r in model.requests() if r["conversation"]
                        and r["conversation"][-1]["text"] == f"Task {n}"]
            deliveries.append(requests[0]["time"] - appended)
            settles.append(seen_at - requests[-1]["time"])
            time.sleep(1.5)  # let the final writes of this task land in its count
            counts, mark = audit_counts(audit, mark)
            writes.append(sum(v for k, v in counts.items() if k.startswith("write")))
        tasks = custom.get_namespaced_custom_object(GROUP, VERSION, "bench", "lieutenants",
                                                    "lt")["spec"]["tasks"]  # type: ignore[index]
        started = time.time()
        custom.patch_namespaced_custom_object(GROUP, VERSION, "bench", "lieutenants", "lt", {
            "spec": {"tasks": [*tasks, {"name": "stream", "message": "Stream an answer"}]}})
        streamed = wait_history(custom, count + 1) - started
        counts, mark = audit_counts(audit, mark)
        patches_per_second = counts["write patch lieutenants/status"] / streamed
        print(f"tasks: {count}")
        for name, values, unit in (("append → pi asks the model", deliveries, "s"),
                                   ("model answered → history visible", settles, "s"),
                                   ("operator Kubernetes writes per task", writes, "")):
            print(f"{name:40} median {statistics.median(values):7.3f}{unit}  "
                  f"max {max(values):7.3f}{unit}")
        print(f"{'status patches per second, streaming':40} {patches_per_second:7.2f}  "
              f"({counts['write patch lieutenants/status']} over {streamed:.1f}s of a "
              f"{STREAM_SECONDS:g}s streamed answer)")
    finally:
        operator.stop()
        kill_every_vm(work / "vms")         # a Local VM's processes outlive its directory
        model.stop()
        plane.down()
        shutil.rmtree(work, ignore_errors=True)


def wait_phase(custom: Any, phase: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        got = custom.get_namespaced_custom_object(GROUP, VERSION, "bench", "lieutenants", "lt")
        if (got.get("status") or {}).get("phase") == phase:
            return
        time.sleep(0.2)
    raise BenchError(f"lieutenant not {phase}")


def wait_history(custom: Any, length: int) -> float:
    stream = watch.Watch()
    for event in stream.stream(custom.list_namespaced_custom_object, GROUP, VERSION, "bench",
                               "lieutenants", timeout_seconds=120):
        status = event["object"].get("status") or {}
        if len(status.get("history") or []) >= length:
            stream.stop()
            return time.time()
    raise BenchError("no history entry in time")


if __name__ == "__main__":
    sys.exit(main())
