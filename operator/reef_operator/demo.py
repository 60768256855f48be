"""The main job on its embedded local default: `make demo`.

Brings up the local control plane, starts the operator against it (the Local
provider: VMs are directories and processes on this machine), and walks a
small VM tree through its life, printing what `kubectl` shows at each step.

    python -m reef_operator.demo [--keep]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from reef_operator.testing.controlplane import LocalControlPlane
from reef_operator.testing.operator_process import OperatorProcess

NAMESPACE = "reef-demo"
TREE = """
apiVersion: v1
kind: Namespace
metadata: {name: reef-demo}
---
apiVersion: reef.vers.sh/v1alpha1
kind: VMNode
metadata: {name: api, namespace: reef-demo}
spec:
  category: Lieutenant
  profileRef: {name: local}
  modules: [cron]
  heartbeat: {intervalSeconds: 10, staleAfterSeconds: 30}
---
apiVersion: reef.vers.sh/v1alpha1
kind: VMNode
metadata: {name: api-worker-1, namespace: reef-demo}
spec:
  category: Swarm
  profileRef: {name: local}
  parentRef: {name: api}
"""


class Demo:
    def __init__(self, plane: LocalControlPlane) -> None:
        self.plane = plane
        self.kubectl_binary = str(plane.binaries().kubectl)

    def kubectl(self, *args: str, stdin: str | None = None, show: bool = True) -> str:
        result = subprocess.run([self.kubectl_binary, "--kubeconfig", str(self.plane.kubeconfig),
                                 *args], input=stdin, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise SystemExit(f"kubectl {' '.join(args)} failed: {result.stderr}")
        if show:
            print(f"$ kubectl {' '.join(args)}\n{result.stdout}", flush=True)
        return result.stdout

    def wait(self, name: str, jsonpath: str, value: str, within: float = 120) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            got = self.kubectl("get", "vmnode", name, "-n", NAMESPACE, "-o",
                               f"jsonpath={jsonpath}", show=False)
            if got == value:
                return
            time.sleep(0.5)
        raise SystemExit(f"timed out waiting for {name} {jsonpath}={value}")


def step(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--keep", action="store_true",
                        help="leave the control plane running afterwards")
    parser.add_argument("--state-dir", type=Path, default=None,
                        help="control-plane state directory (default: the dev one)")
    args = parser.parse_args(argv)
    plane = LocalControlPlane(args.state_dir)
    step("a real local control plane (etcd, kube-apiserver, kube-controller-manager)")
    plane.up()
    demo = Demo(plane)
    work = Path(tempfile.mkdtemp(prefix="reef-demo-"))
    operator = OperatorProcess(plane.operator_kubeconfig, work / "operator.log",
                               {"REEF_LOCAL_ROOT": str(work / "vms")})
    try:
        step("the operator, with its own least-privilege identity")
        operator.start()
        print(f"operator running (log: {operator.log_file})")
        demo.kubectl("get", "bootprofiles")

        step("declare a lieutenant's VM and a swarm worker below it")
        demo.kubectl("apply", "-f", "-", stdin=TREE)
        for name in ("api", "api-worker-1"):
            demo.wait(name, '{.status.conditions[?(@.type=="Ready")].status}', "True")
        demo.kubectl("get", "vmnodes", "-n", NAMESPACE, "-o", "wide")
        vm_id = demo.kubectl("get", "vmnode", "api", "-n", NAMESPACE, "-o",
                             "jsonpath={.status.vmId}", show=False)
        identity = work / "vms" / vm_id / "root" / ".reef" / "identity.env"
        print(f"the boot script wrote {identity}:\n{identity.read_text()}")

        step("pause the root: the whole subtree freezes")
        demo.kubectl("patch", "vmnode", "api", "-n", NAMESPACE, "--type=merge",
                     "-p", '{"spec":{"state":"Paused"}}')
        for name in ("api", "api-worker-1"):
            demo.wait(name, '{.status.conditions[?(@.type=="Paused")].status}', "True")
        demo.kubectl("get", "vmnodes", "-n", NAMESPACE)

        step("resume it")
        demo.kubectl("patch", "vmnode", "api", "-n", NAMESPACE, "--type=merge",
                     "-p", '{"spec":{"state":"Running"}}')
        for name in ("api", "api-worker-1"):
            demo.wait(name, '{.status.conditions[?(@.type=="Ready")].status}', "True")
        demo.kubectl("get", "vmnodes", "-n", NAMESPACE)

        step("what happened, as Events")
        events = demo.kubectl("get", "events", "-n", NAMESPACE, "-o", "yaml", show=False)
        for event in yaml.safe_load(events)["items"]:
            print(f"{event['involvedObject']['name']:14} {event['reason']:10} "
                  f"{event['message']}")

        step("delete the root: the worker goes with it, and so do both VMs")
        demo.kubectl("delete", "vmnode", "api", "-n", NAMESPACE, "--wait=true")
        deadline = time.monotonic() + 120
        while demo.kubectl("get", "vmnodes", "-n", NAMESPACE, "-o", "name", show=False).strip():
            if time.monotonic() > deadline:
                raise SystemExit("the subtree was not deleted in time")
            time.sleep(0.5)
        demo.kubectl("get", "vmnodes", "-n", NAMESPACE)
        left = [p.name for p in (work / "vms").iterdir() if not p.name.startswith(".")]
        print(f"Local VMs left on disk: {left or 'none'}")
        demo.kubectl("delete", "namespace", NAMESPACE, "--wait=false")
    finally:
        operator.stop()
        if not args.keep:
            plane.down()
            print("control plane stopped (run with --keep to leave it up)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
