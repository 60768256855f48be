"""What a scale run creates: the kinds, their objects, when each counts as Ready, and
which runs fit in the memory this machine has."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reef_operator.constants import GROUP, VERSION
from reef_operator.kube.conditions import find_condition

PI_RSS_BYTES = 130 * 1024 * 1024      # one pi on a VM, with its tmux and sshd share
# One simulated VM without an agent: its sshd, the sshd session of the operator's
# connection and unshare (3.1 MiB PSS each at N=50), plus what each VMNode adds to the
# operator (about 0.5 MiB), the simulator and the control plane; rounded up generously
# because the smaller shares are too noisy to measure on a shared machine.
VM_BYTES = 8 * 1024 * 1024
MEMORY_SHARE = 0.8                    # of MemAvailable a run may plan to use


@dataclass(frozen=True)
class Kind:
    """What a run creates: the resource, how one is written and when it counts as Ready."""

    plural: str
    label: str                                   # the `kind` row: what the column measures
    prefix: str                                  # object names: prefix + index
    bytes_each: int                              # host memory one needs, for the guard
    manifest: Callable[[str], dict[str, Any]]
    ceiling_status: dict[str, Any]               # the raw ceiling's one status patch
    ready: Callable[[Mapping[str, Any]], bool]   # on the object's status


def _lieutenant(name: str) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Lieutenant",
            "metadata": {"name": name},
            "spec": {"role": "bench", "profileRef": {"name": "bench"},
                     "model": {"provider": "scripted", "id": "scripted-1"},
                     "providersConfigMapRef": {"name": "models"}}}


def _vmnode(name: str) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VMNode",
            "metadata": {"name": name}, "spec": {"profileRef": {"name": "bench"}}}


def condition_ready(status: Mapping[str, Any]) -> bool:
    return find_condition({"status": status}, "Ready").get("status") == "True"


def answered(status: Mapping[str, Any]) -> bool:
    """A lieutenant that has a history entry and is idle again: its task is done."""
    return len(status.get("history") or []) >= 1 and status.get("phase") == "Idle"


LIEUTENANTS = Kind("lieutenants", "lieutenants", "lt", PI_RSS_BYTES, _lieutenant,
                   {"phase": "Idle", "observedGeneration": 1},
                   lambda status: status.get("phase") == "Idle")
VMNODES = Kind("vmnodes", "vmnodes (no agent)", "vm", VM_BYTES, _vmnode,
               {"vmState": "running", "observedGeneration": 1}, condition_ready)


def available_bytes(meminfo: Path = Path("/proc/meminfo")) -> int:
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def memory_refusal(n: int, kind: Kind, available: int) -> str:
    """Why N of this kind would not fit in `available` bytes, or "" if they would."""
    needed = n * kind.bytes_each
    if needed <= MEMORY_SHARE * available:
        return ""
    what = "real pi agents" if kind is LIEUTENANTS else "simulated VMs"
    return (f"{n} {what} need about {needed / 2**30:.1f} GiB; "
            f"{available / 2**30:.1f} GiB available")


def plan(lieutenant_ns: list[int], vmnode_ns: list[int],
         available: int) -> list[tuple[int, Kind, str]]:
    """(N, kind, note) per run: lieutenants where their agents fit, VMNodes where not."""
    runs = []
    for n in lieutenant_ns:
        refusal = memory_refusal(n, LIEUTENANTS, available)
        runs.append((n, VMNODES, f"instead of lieutenants: {refusal}") if refusal
                    else (n, LIEUTENANTS, ""))
    return runs + [(n, VMNODES, "") for n in vmnode_ns]
