"""What a scale run measures: the operator's Kubernetes requests and platform calls per
phase, and the figures a run reports, computed from them."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bench.audit import audit_counts
from bench.errors import BenchError
from reef_operator.config import DEFAULT_PLATFORM_BURST, DEFAULT_PLATFORM_RATE


@dataclass
class Result:
    n: int
    kind: str
    ceiling_seconds: float = 0.0
    ready_all_seconds: float = 0.0
    ready_p50: float = 0.0
    ready_p95: float = 0.0
    ready_max: float = 0.0
    # Lieutenants only (None for VMNode runs, where the object is the VM): when each
    # lieutenant's VMNode got Ready, counted from the lieutenant's creation.
    vm_ready_all_seconds: float | None = None
    vm_ready_p50: float | None = None
    vm_ready_max: float | None = None
    agent_start_p50: float | None = None         # lieutenant Ready - its VMNode Ready
    tasks_all_seconds: float | None = None
    ratio_ready_to_ceiling: float = 0.0
    # The least time the operator's platform rate limit (its defaults: the bench does not
    # set REEF_PLATFORM_RATE) allows for the platform calls made until all were Ready:
    # when it is close to the time to all Ready, the limit is what sets the pace.
    platform_rate_floor_seconds: float = 0.0
    kube_writes_per_lifecycle: float = 0.0
    kube_writes_per_lifecycle_excl_task_events: float = 0.0
    events_per_lifecycle: float = 0.0
    kube_requests_per_lifecycle: float = 0.0
    writes_by_kind: dict[str, float] = field(default_factory=dict)
    status_patches_per_task: float | None = None
    platform_calls_per_lifecycle: float = 0.0
    operator_peak_rss_mib: float = 0.0
    operator_cpu_seconds: float = 0.0
    # The simulator's VM processes (sshd; pi, node, tmux for lieutenants), per VM, at
    # the end of the idle window: PSS, and CPU seconds used since they started.
    vm_memory_mib: float = 0.0
    vm_cpu_seconds: float = 0.0
    idle_requests_per_object_hour: float = 0.0
    note: str = ""
    skipped: str = ""


@dataclass
class Phase:
    """The operator's Kubernetes requests and platform calls in one phase of a run."""

    kube: Counter[str]
    platform: Counter[str]


class PlatformLog(Protocol):
    """The simulator's count of platform calls, by method and path, since it started."""

    def request_counts(self) -> dict[str, int]: ...


class Meter:
    """Reads the operator's Kubernetes requests (apiserver audit log, operator identity)
    and platform calls (simulator's request log) since the previous reading."""

    def __init__(self, audit: Path, platform: PlatformLog) -> None:
        self.audit, self.platform = audit, platform
        self._inode = audit.stat().st_ino
        _, self._line = audit_counts(audit, 0)
        self._calls = Counter(platform.request_counts())

    def platform_calls(self) -> int:
        """Platform calls since the previous reading, without ending the phase."""
        return sum((Counter(self.platform.request_counts()) - self._calls).values())

    def take(self) -> Phase:
        # The apiserver rotates its audit log at 200 MB; counting across that would be wrong.
        if self.audit.stat().st_ino != self._inode:
            raise BenchError("the audit log was rotated during the run; run fewer N at once")
        kube, self._line = audit_counts(self.audit, self._line)
        calls = Counter(self.platform.request_counts())
        since, self._calls = calls - self._calls, calls
        return Phase(kube, since)


def lifecycle_figures(result: Result, phases: dict[str, Phase], n: int) -> None:
    """Per-object request counts over create→Ready, the task (lieutenants) and deletion."""
    lifecycle = sum((phase.kube for phase in phases.values()), Counter[str]())
    writes = _writes(lifecycle)
    result.kube_writes_per_lifecycle = sum(writes.values()) / n
    result.kube_requests_per_lifecycle = sum(lifecycle.values()) / n
    result.events_per_lifecycle = sum(v for k, v in writes.items() if _is_event(k)) / n
    # What the object itself costs, without the task's chatter and without Events (which
    # an operator could drop or rate-limit without changing what it does).
    create_and_delete = _writes(phases["create"].kube + phases["delete"].kube)
    result.kube_writes_per_lifecycle_excl_task_events = sum(
        v for k, v in create_and_delete.items() if not _is_event(k)) / n
    result.writes_by_kind = {k[len("write "):]: round(v / n, 2)
                             for k, v in sorted(writes.items())}
    if "task" in phases:
        result.status_patches_per_task = phases["task"].kube[
            "write patch lieutenants/status"] / n
    result.platform_calls_per_lifecycle = sum(
        sum(phase.platform.values()) for phase in phases.values()) / n


def platform_rate_floor(calls: int, rate: float) -> float:
    """Seconds the operator's token bucket (full at the start) needs for so many calls."""
    return max(0, calls - burst(rate)) / rate


def burst(rate: float) -> int:
    """The bucket's size for a rate, in the operator defaults' proportion."""
    return max(1, round(rate * DEFAULT_PLATFORM_BURST / DEFAULT_PLATFORM_RATE))


def spread(values: Iterable[float]) -> tuple[float, float, float]:
    """(p50, p95, max)."""
    ordered = sorted(values)
    return (statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))], ordered[-1])


def _writes(counts: Counter[str]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if k.startswith("write ")}


def _is_event(key: str) -> bool:
    """`write create events` (audit_counts' keys: kind, verb, resource)."""
    return key.split()[-1] == "events"
