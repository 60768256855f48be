"""What the operator reads out of pi's events: text, stop reasons, usage, and busy/idle.

Busy/idle, as observed on pi 0.73: a run starts with `agent_start` and ends
with `agent_end`, but auto-retry (`auto_retry_start` after a failed run) and
auto-compaction (`compaction_start` after `agent_end`, `willRetry` meaning
another run follows) can start more runs. So `agent_end` only makes the
session *settling*; it is idle once `get_state` confirms nothing streams,
compacts or waits (the seed's flaw was to trust one `agent_end`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Activity = Literal["idle", "working", "settling"]

WORK_STARTS = frozenset({"agent_start", "auto_retry_start", "compaction_start"})

# The bounds of one assistant message's usage. The VM writes the events, so a number
# outside them (NaN, Infinity, negative, absurdly large, not a number) is no usage at
# all: it is dropped with a note rather than summed into status and the metrics.
MAX_MESSAGE_TOKENS = 100_000_000     # far above any model's context window
MAX_MESSAGE_COST = 10_000.0          # US dollars for one message


def next_activity(current: Activity, event: Mapping[str, Any]) -> Activity:
    kind = event.get("type")
    if kind in WORK_STARTS:
        return "working"
    if kind == "agent_end":
        return "settling"
    if kind == "compaction_end":
        return "working" if event.get("willRetry") else "settling"
    if kind == "auto_retry_end":
        return "settling"
    return current


def confirms_idle(state: Mapping[str, Any]) -> bool:
    """A `get_state` answer saying nothing runs. Queued messages do not count: after a
    failed run pi keeps its follow-up queue until the next run, and waiting for it
    would hang the lieutenant."""
    return not state.get("isStreaming") and not state.get("isCompacting")


@dataclass(frozen=True)
class Outcome:
    """How a run ended, from its last assistant message."""

    text: str
    stop_reason: str
    error: str
    input_tokens: int
    output_tokens: int
    cost: float


@dataclass(frozen=True)
class MessageUsage:
    """The usage of one assistant message (pi-ai's Usage), every number validated;
    `dropped` names the fields that were not a number within bounds."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    cost: float = 0.0
    dropped: tuple[str, ...] = ()

    def note(self) -> str:
        if not self.dropped:
            return ""
        return (f"usage ignored: {', '.join(self.dropped)} not a number between 0 and "
                f"{MAX_MESSAGE_TOKENS:,} tokens or {MAX_MESSAGE_COST:,.0f} USD")


def message_usage(message: Mapping[str, Any]) -> MessageUsage:
    usage = message.get("usage")
    if not isinstance(usage, Mapping):
        return MessageUsage()
    dropped: list[str] = []

    def bounded(value: Any, name: str, limit: float) -> float:
        if value is None:
            return 0.0
        if isinstance(value, bool) or not isinstance(value, int | float) or \
                not math.isfinite(value) or not 0 <= value <= limit:
            dropped.append(name)
            return 0.0
        return float(value)

    tokens = {key: int(bounded(usage.get(key), f"usage.{key}", MAX_MESSAGE_TOKENS))
              for key in ("input", "output", "cacheRead", "cacheWrite")}
    cost = usage.get("cost")
    total = bounded(cost.get("total"), "usage.cost.total", MAX_MESSAGE_COST) \
        if isinstance(cost, Mapping) else 0.0
    return MessageUsage(tokens["input"], tokens["output"], tokens["cacheRead"],
                        tokens["cacheWrite"], total, tuple(dropped))


def assistant_text(message: Mapping[str, Any]) -> str:
    return "".join(str(block.get("text", "")) for block in message.get("content") or []
                   if isinstance(block, Mapping) and block.get("type") == "text")


def outcome_of(agent_end: Mapping[str, Any]) -> Outcome | None:
    """The final assistant message of an `agent_end` event (None if it has none)."""
    messages = [m for m in agent_end.get("messages") or []
                if isinstance(m, Mapping) and m.get("role") == "assistant"]
    if not messages:
        return None
    last = messages[-1]
    usage = message_usage(last)
    return Outcome(
        text=assistant_text(last).strip(),
        stop_reason=str(last.get("stopReason", "")),
        error=str(last.get("errorMessage", "") or ""),
        input_tokens=usage.input,
        output_tokens=usage.output,
        cost=usage.cost,
    )


COMPACTION_REASONS = frozenset({"threshold", "overflow", "manual"})
MAX_COMPACTION_ERROR = 256    # characters of pi's error kept for the Event


@dataclass(frozen=True)
class Compaction:
    """A `compaction_end`: pi replaced the conversation's older messages with a summary
    (`done`), or tried and could not (`error`; "" when it was aborted or found
    nothing to compact). Every field is bounded: the VM writes the event."""

    done: bool
    reason: str                  # threshold | overflow | manual | "" (anything else)
    tokens_before: int | None    # the context's size before, when pi says and it is sane
    error: str


def compaction_of(event: Mapping[str, Any]) -> Compaction | None:
    """What a `compaction_end` says (None for any other event)."""
    if event.get("type") != "compaction_end":
        return None
    reason = event.get("reason")
    result = event.get("result")
    tokens = result.get("tokensBefore") if isinstance(result, Mapping) else None
    error = event.get("errorMessage")
    return Compaction(
        done=isinstance(result, Mapping) and not event.get("aborted"),
        reason=reason if isinstance(reason, str) and reason in COMPACTION_REASONS else "",
        tokens_before=tokens if isinstance(tokens, int) and not isinstance(tokens, bool)
        and 0 <= tokens <= MAX_MESSAGE_TOKENS else None,
        error=error[:MAX_COMPACTION_ERROR] if isinstance(error, str) else "",
    )


def text_delta(event: Mapping[str, Any]) -> str:
    """Streamed text in a `message_update`, or ""."""
    if event.get("type") != "message_update":
        return ""
    delta = event.get("assistantMessageEvent") or {}
    if isinstance(delta, Mapping) and delta.get("type") == "text_delta":
        return str(delta.get("delta", ""))
    return ""
