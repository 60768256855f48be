"""Every Prometheus metric the operator exports, in one place (served at /metrics).

Labels stay bounded: kinds, outcomes, endpoint *templates* (`GET /vm/{id}/status`, never a
concrete id), provider operations, namespaces and model names (the spec's, never what a VM reports:
what pi says comes from the VM, and a VM could mint series without end). No label carries an
object's name: a fleet of lieutenants would otherwise grow the series without limit, and
the per-object picture is what `kubectl reef status` is for.

Counters and histograms are updated where things happen (the controllers' loops, the
Vers client's request path, the providers, the lieutenant runner). Gauges that describe
the current picture (lieutenants by phase and by the policy holding them, objects in
backoff, event-stream backlog) are computed at scrape time from the operator's memory by
`PictureCollector`: no scrape makes an API call.

Per-object metrics come from the active replica only: a standby replica (kopf peering)
runs no handlers, so its counters stay at zero and its gauges are empty.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from reef_operator.api import lieutenant as api_lieutenant

# No `_created` series beside every counter and histogram: they double the series and
# only matter to exporters that restart counters without restarting the process.
disable_created_metrics()  # type: ignore[no-untyped-call]

# -- reconciliation ------------------------------------------------------------------------
KINDS = ("VMNode", "Lieutenant", "BootProfile")
# success: the pass finished; retry: it failed in a way retried with backoff (platform,
# SSH, agent unreachable); invalid: the spec needs a person (missing Secret, name taken);
# error: an unexpected exception (a bug, logged with its traceback).
OUTCOMES = ("success", "retry", "invalid", "error")

RECONCILES = Counter(
    "reef_reconcile", "Reconciliation passes by kind and outcome.",
    ["kind", "outcome"])
RECONCILE_DURATION = Histogram(
    "reef_reconcile_duration_seconds",
    "Duration of one reconciliation pass. A Lieutenant pass that attaches to its agent "
    "is timed until pi answers the handshake; the attachment itself is not a pass.",
    ["kind"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))

# -- the platform --------------------------------------------------------------------------
PLATFORM_REQUESTS = Counter(
    "reef_platform_requests",
    "HTTP requests to the Vers API, every attempt (retries included), by endpoint template "
    "and outcome: ok, 4xx, 5xx, timeout or connection_error.",
    ["endpoint", "outcome"])
PLATFORM_REQUEST_DURATION = Histogram(
    "reef_platform_request_duration_seconds",
    "Duration of one HTTP attempt to the Vers API, by endpoint template.",
    ["endpoint"], buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
RATE_LIMIT_WAITERS = Gauge(
    "reef_platform_rate_limit_waiters",
    "Platform calls waiting for the global rate limiter (REEF_PLATFORM_RATE/_BURST).")
PROVIDER_OPERATIONS = Counter(
    "reef_provider_operations",
    "VM operations through a provider (vers or local) by operation and outcome: ok or the "
    "provider error's class (NotFound, ServerError, OutcomeUnknown, ShellError, ..., other).",
    ["provider", "operation", "outcome"])
PROVIDER_OPERATION_DURATION = Histogram(
    "reef_provider_operation_duration_seconds",
    "Duration of one provider operation (retries and rate limiting included).",
    ["provider", "operation"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600))

# -- tasks and the agent -------------------------------------------------------------------
TASKS = Counter(
    "reef_tasks",
    "Lieutenant tasks that ended, by namespace and outcome (Succeeded, Failed, Aborted).",
    ["namespace", "outcome"])
TASK_DURATION = Histogram(
    "reef_task_duration_seconds",
    "Time from a task's delivery to the agent to its end (status sentAt to completedAt, "
    "so it spans operator restarts; one-second resolution).",
    ["outcome"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800))
TOKENS = Counter(
    "reef_agent_tokens",
    "Model tokens the agents used, as pi reports them per assistant message, by namespace, "
    "model (provider/id) and type: input, output, cache_read, cache_write.",
    ["namespace", "model", "type"])
COST = Counter(
    "reef_agent_cost_usd",
    "Model cost in US dollars as pi computes it from the model's prices (0 for models "
    "without prices), by namespace and model.",
    ["namespace", "model"])
BUDGET_EXHAUSTED = Counter(
    "reef_lieutenant_budget_exhausted",
    "Times a lieutenant was paused because a budget was spent, by namespace and limit: "
    "maxTokens, maxCostUSD (spec.budget or the ReefPolicy's default) or costPerDayUSD (the "
    "namespace's daily cost limit).",
    ["namespace", "limit"])
EVENT_LAG = Histogram(
    "reef_agent_event_lag_seconds",
    "Time from pi emitting a message_start event (of a user or tool-result message, whose "
    "timestamp is its emission) to the operator consuming it from the VM's event log. "
    "Includes SSH transport, the operator's own backlog and any time the operator was "
    "down; uses the VM's clock against the operator's.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800))

TOKEN_TYPES = ("input", "output", "cache_read", "cache_write")    # reef_agent_tokens' `type`
LIEUTENANT_PHASES = api_lieutenant.PHASES     # status.phase's enum in the CRD
# Why the operator itself holds a lieutenant (lieutenants/holds.py): the catalogue's
# summary reasons of its holds, reef_lieutenants_held's `reason`.
HOLD_REASONS = ("IdlePaused", "BudgetExhausted", "Expired")


# -- recording helpers ---------------------------------------------------------------------
def reconciled(kind: str, outcome: str, seconds: float) -> None:
    RECONCILES.labels(kind, outcome).inc()
    RECONCILE_DURATION.labels(kind).observe(max(0.0, seconds))


def platform_request(endpoint: str, outcome: str, seconds: float) -> None:
    PLATFORM_REQUESTS.labels(endpoint, outcome).inc()
    PLATFORM_REQUEST_DURATION.labels(endpoint).observe(max(0.0, seconds))


def status_outcome(status: int) -> str:
    return "ok" if 200 <= status < 300 else f"{status // 100}xx"


def provider_operation(provider: str, operation: str, outcome: str, seconds: float) -> None:
    PROVIDER_OPERATIONS.labels(provider, operation, outcome).inc()
    PROVIDER_OPERATION_DURATION.labels(provider, operation).observe(max(0.0, seconds))


def task_ended(namespace: str, outcome: str, seconds: float | None) -> None:
    TASKS.labels(namespace, outcome).inc()
    if seconds is not None:
        TASK_DURATION.labels(outcome).observe(max(0.0, seconds))


def model_usage(namespace: str, model: str, tokens: Mapping[str, int], cost: float) -> None:
    """Count one assistant message's usage, validated by the caller: tokens by their
    `type` label (input, output, cache_read, cache_write) and the cost in dollars."""
    for kind in TOKEN_TYPES:
        if tokens.get(kind, 0) > 0:
            TOKENS.labels(namespace, model, kind).inc(tokens[kind])
    if cost > 0:
        COST.labels(namespace, model).inc(cost)


def budget_exhausted(namespace: str, limit: str) -> None:
    BUDGET_EXHAUSTED.labels(namespace, limit).inc()


def event_consumed(event: Mapping[str, Any], now: float | None = None) -> None:
    """Observe the event-stream lag of one pi event, if it says when it was emitted."""
    if event.get("type") != "message_start":
        return
    message = event.get("message")
    if not isinstance(message, Mapping) or message.get("role") not in ("user", "toolResult"):
        return
    stamp = message.get("timestamp")
    if isinstance(stamp, int | float) and not isinstance(stamp, bool) and \
            math.isfinite(stamp) and stamp > 0:
        now = time.time() if now is None else now
        EVENT_LAG.observe(max(0.0, now - stamp / 1000.0))


# -- the current picture -------------------------------------------------------------------
@dataclass
class Picture:
    """What the operator knows right now, for the gauges (built at scrape time)."""

    lieutenant_phases: dict[tuple[str, str], int] = field(default_factory=dict)
    held: dict[tuple[str, str], int] = field(default_factory=dict)     # (namespace, reason)
    in_backoff: dict[str, int] = field(default_factory=dict)           # kind -> objects
    backlog_bytes: dict[str, int] = field(default_factory=dict)        # namespace -> max
    agent_starts: dict[str, int] = field(default_factory=dict)         # starting/waiting


class PictureCollector(Collector):
    """Gauges read from the operator's memory at scrape time (no API calls)."""

    def __init__(self) -> None:
        self.source: Callable[[], Picture] | None = None

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return list(self._families(Picture()))

    def collect(self) -> Iterable[GaugeMetricFamily]:
        picture = self.source() if self.source is not None else Picture()
        return list(self._families(picture))

    @staticmethod
    def _families(picture: Picture) -> Iterator[GaugeMetricFamily]:
        phases = GaugeMetricFamily(
            "reef_lieutenants",
            "Lieutenants served by this replica by namespace and phase (the phase the "
            "operator last decided, as written to status.phase). Every phase is reported, "
            "0 included, for each namespace with a lieutenant.",
            labels=["namespace", "phase"])
        namespaces = sorted({ns for ns, _ in picture.lieutenant_phases})
        for namespace in namespaces:
            known = {phase for ns, phase in picture.lieutenant_phases if ns == namespace}
            for phase in sorted(set(LIEUTENANT_PHASES) | known):
                phases.add_metric([namespace, phase],
                                  picture.lieutenant_phases.get((namespace, phase), 0))
        yield phases
        held = GaugeMetricFamily(
            "reef_lieutenants_held",
            "Lieutenants the operator holds back although their spec.state is Running, by "
            "namespace and reason: IdlePaused (paused after idlePolicy.pauseAfter; healthy, "
            "the next task resumes it), BudgetExhausted (paused: spec.budget or the "
            "namespace's daily cost limit is spent), Expired (destroyed after "
            "idlePolicy.destroyAfter). Every reason is reported, 0 included, for each "
            "namespace with a lieutenant.", labels=["namespace", "reason"])
        for namespace in namespaces:
            known = {reason for ns, reason in picture.held if ns == namespace}
            for reason in sorted(set(HOLD_REASONS) | known):
                held.add_metric([namespace, reason], picture.held.get((namespace, reason), 0))
        yield held
        backoff = GaugeMetricFamily(
            "reef_objects_in_backoff",
            "Objects whose last reconciliation failed and which wait to retry with "
            "exponential backoff, by kind.", labels=["kind"])
        for kind in ("VMNode", "Lieutenant"):
            backoff.add_metric([kind], picture.in_backoff.get(kind, 0))
        yield backoff
        backlog = GaugeMetricFamily(
            "reef_agent_event_backlog_bytes",
            "Bytes of pi's event log not yet consumed by the operator, the largest among "
            "the namespace's attached lieutenants, as sampled at their last liveness check "
            "(every 15 s while attached).", labels=["namespace"])
        for namespace, size in sorted(picture.backlog_bytes.items()):
            backlog.add_metric([namespace], size)
        yield backlog
        starts = GaugeMetricFamily(
            "reef_agent_starts",
            "Lieutenants starting (or re-attaching to) pi right now, and those waiting for "
            "a turn (at most REEF_MAX_AGENT_STARTS start at once).", labels=["state"])
        for state in ("starting", "waiting"):
            starts.add_metric([state], picture.agent_starts.get(state, 0))
        yield starts


PICTURE = PictureCollector()
REGISTRY.register(PICTURE)


def show_picture(source: Callable[[], Picture] | None) -> None:
    """Where the gauges read the current picture from (the runtime, once started)."""
    PICTURE.source = source
