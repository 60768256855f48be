"""What the operator reads out of pi's events: text, stop reasons, usage, and busy/idle.

Busy/idle, as observed on pi 0.73: a run starts with `agent_start` and ends
with `agent_end`, but auto-retry (`auto_retry_start` after a failed run) and
auto-compaction (`compaction_start` after `agent_end`, `willRetry` meaning
another run follows) can start more runs. So `agent_end` only makes the
session *settling*; it is idle once `get_state` confirms nothing streams,
compacts or waits (the seed's flaw was to trust one `agent_end`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Activity = Literal["idle", "working", "settling"]

WORK_STARTS = frozenset({"agent_start", "auto_retry_start", "compaction_start"})


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
    usage = last.get("usage") or {}
    cost = usage.get("cost") or {}
    return Outcome(
        text=assistant_text(last).strip(),
        stop_reason=str(last.get("stopReason", "")),
        error=str(last.get("errorMessage", "") or ""),
        input_tokens=int(usage.get("input", 0) or 0),
        output_tokens=int(usage.get("output", 0) or 0),
        cost=float(cost.get("total", 0) or 0) if isinstance(cost, Mapping) else 0.0,
    )


def text_delta(event: Mapping[str, Any]) -> str:
    """Streamed text in a `message_update`, or ""."""
    if event.get("type") != "message_update":
        return ""
    delta = event.get("assistantMessageEvent") or {}
    if isinstance(delta, Mapping) and delta.get("type") == "text_delta":
        return str(delta.get("delta", ""))
    return ""
