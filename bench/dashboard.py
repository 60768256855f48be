"""What an open `kubectl reef dashboard` page costs, beside plain reads of the same objects.

Runs a real control plane, fills a namespace with N VMNodes in lieutenant trees (one
lieutenant's node with nine swarm workers below it) and N/10 Lieutenants whose status
carries a full history, starts `kubectl reef dashboard`, and prints for each N: the time
and size of the page's two answers (the fleet overview, one lieutenant in full) next to
the time of the plain API reads that would give the same (list both kinds; get one
lieutenant), and the apiserver requests the dashboard made while a page polled it every
second (counted in the apiserver's audit log by the plugin's user agent).

    .venv/bin/python -m bench.dashboard [N ...]        (default: 10 100 1000)
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client, config

from bench.errors import BenchError
from reef_devkit.controlplane import LocalControlPlane
from reef_operator.constants import API_VERSION, GROUP, VERSION

NAMESPACE = "bench-dashboard"
RESPONSE = "All routes now validate their input; " * 100      # ≈ 3.7 KiB per response
HISTORY = 20
REPEATS = 15
POLL_SECONDS = 1.0     # dashboard.js POLL_MS
WINDOW_SECONDS = 65    # a watch is renewed every 60 s (mirror.WATCH_SECONDS)


def median_seconds(call: Callable[[], Any]) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def fill(api: client.CustomObjectsApi, have: int, want: int) -> None:
    """VMNodes `have`..`want`-1: every tenth is a lieutenant's node with its lieutenant."""
    for index in range(have, want):
        lead = index - index % 10
        spec: dict[str, Any] = {"category": "Lieutenant" if index == lead else "Swarm",
                                "profileRef": {"name": "local"},
                                "modules": ["store"], "capabilities": ["npm"]}
        if index != lead:
            spec["parentRef"] = {"name": f"node-{lead}"}
        api.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "vmnodes", {
            "apiVersion": API_VERSION, "kind": "VMNode",
            "metadata": {"name": f"node-{index}"}, "spec": spec})
        if index == lead:
            name = f"lt-{index // 10}"
            api.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "lieutenants", {
                "apiVersion": API_VERSION, "kind": "Lieutenant", "metadata": {"name": name},
                "spec": {"role": "Build the API", "tasks": [
                    {"name": f"task-{t}", "message": "Add validation"} for t in range(HISTORY)]}})
            api.patch_namespaced_custom_object_status(GROUP, VERSION, NAMESPACE, "lieutenants",
                                                      name, {"status": {
                "phase": "Idle", "vmNodeName": f"node-{index}", "taskCount": HISTORY,
                "history": [{"task": f"task-{t}", "completedAt": "2026-01-01T00:00:00Z",
                             "stopReason": "stop", "response": RESPONSE, "truncated": False}
                            for t in range(HISTORY)]}})


def requests_per_minute(audit: Path, *urls: str) -> float:
    """Poll like an open page with a lieutenant shown, and count what reached the apiserver."""
    before = _dashboard_requests(audit)
    start = time.monotonic()
    while time.monotonic() - start < WINDOW_SECONDS:
        for url in urls:
            fetch(url)
        time.sleep(POLL_SECONDS)
    time.sleep(1)                     # the audit log is written asynchronously
    return (_dashboard_requests(audit) - before) * 60 / WINDOW_SECONDS


def _dashboard_requests(audit: Path) -> int:
    """Requests completed (a watch is logged when it starts and again when it ends)."""
    entries = (json.loads(line) for line in audit.read_text().splitlines())
    return sum(1 for e in entries if e.get("stage") == "ResponseComplete"
               and e.get("userAgent", "").startswith("kubectl-reef/"))


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as answer:
        return bytes(answer.read())


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or [10, 100, 1000]
    try:
        measure(sizes)
    except BenchError as error:
        print(f"bench.dashboard: {error}", file=sys.stderr)
        return 1
    return 0


def measure(sizes: list[int]) -> None:
    state = Path(tempfile.mkdtemp(prefix="reef-bench-dashboard-"))
    plane = LocalControlPlane(state)
    plane.up()
    plugin = Path(sys.executable).parent / "kubectl-reef"
    dashboard: subprocess.Popen[str] | None = None
    try:
        api_client = config.new_client_from_config(str(plane.kubeconfig))
        custom = client.CustomObjectsApi(api_client)
        client.CoreV1Api(api_client).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
        dashboard = subprocess.Popen(
            [str(plugin), "--kubeconfig", str(plane.kubeconfig), "-n", NAMESPACE,
             "dashboard", "--port", "0"], stdout=subprocess.PIPE, text=True)
        assert dashboard.stdout is not None
        url = dashboard.stdout.readline().split(" at ")[1].split(" ")[0]
        print(f"dashboard at {url}; {REPEATS} reads each, medians\n")
        print(f"{'VMNodes':>8} {'lts':>5} | {'fleet answer':>12} {'KiB':>7} "
              f"{'2 lists':>11} {'ratio':>6} | {'one lt':>8} {'KiB':>6} "
              f"{'get':>8} {'ratio':>6} | {'apiserver req/min':>17}")
        have = 0
        for size in sizes:
            fill(custom, have, size)
            have = size
            lieutenant = f"lt-{(size - 1) // 10}"

            def raw_lists() -> None:
                for plural in ("lieutenants", "vmnodes"):
                    custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, plural)

            def raw_get(name: str = lieutenant) -> None:
                custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE,
                                                    "lieutenants", name)

            fleet_url = f"{url}api/fleet"
            detail_url = f"{url}api/lieutenants/{NAMESPACE}/{lieutenant}"
            fleet = json.loads(fetch(fleet_url))
            if len(fleet["lieutenants"]) != (size + 9) // 10:
                raise BenchError(f"the dashboard shows {len(fleet['lieutenants'])} "
                                 f"lieutenants of {(size + 9) // 10}")
            fleet_time = median_seconds(lambda u=fleet_url: fetch(u))      # type: ignore[misc]
            detail_time = median_seconds(lambda u=detail_url: fetch(u))    # type: ignore[misc]
            lists_time, get_time = median_seconds(raw_lists), median_seconds(raw_get)
            fleet_kib = len(fetch(fleet_url)) / 1024
            detail_kib = len(fetch(detail_url)) / 1024
            per_minute = requests_per_minute(plane.state_dir / "logs" / "audit.log",
                                             fleet_url, detail_url)
            print(f"{size:>8} {(size + 9) // 10:>5} | {fleet_time * 1000:>10.1f}ms "
                  f"{fleet_kib:>7.1f} {lists_time * 1000:>9.1f}ms "
                  f"{fleet_time / lists_time:>5.2f}x | {detail_time * 1000:>6.1f}ms "
                  f"{detail_kib:>6.1f} {get_time * 1000:>6.1f}ms "
                  f"{detail_time / get_time:>5.2f}x | {per_minute:>17.0f}")
        print("\nratio = the dashboard's answer / plain API reads of the same objects (same "
              "client library, same machine, same run); apiserver req/min: every request of "
              f"the dashboard while polled every {POLL_SECONDS:g} s for {WINDOW_SECONDS} s")
    finally:
        if dashboard is not None:
            dashboard.terminate()
            dashboard.wait(timeout=10)
        plane.down()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
