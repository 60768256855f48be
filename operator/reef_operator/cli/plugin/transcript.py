"""What `kubectl reef read --follow` shows of one task's run, made from pi's events.

The follower reads pi's event log from where the task's user message begins
(`status.currentTask.eventOffset`) and feeds each event here. Out come the text
the agent streams, delta by delta (for stdout: every byte once and in order, so
`read --follow > answer.txt` keeps the answer), and one short line per tool call
or skipped record (for stderr, beside the text on a terminal).

The task ends where the operator ends it (lieutenants/protocol.py): once the run
settles (after `agent_end`, a `get_state` answer saying nothing streams or
compacts: auto-retry and compaction may start more runs first), or when the next
user message arrives (the next task, or a steer, starts there).

The VM writes the log, so nothing in it is trusted: records come bounded
(agent/framing.py), terminal control characters in the agent's text and in tool
arguments are printed escaped (`\\x1b`), and a tool call's summary is cut short.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reef_operator.agent.events import Activity, confirms_idle, next_activity, text_delta
from reef_operator.agent.framing import Rejected

TOOL_NAME_LIMIT = 64
TOOL_SUMMARY_LIMIT = 120      # characters of a tool call's arguments on its line
ARGUMENT_LIMIT = 48           # characters of one argument's value
TOOLS_REMEMBERED = 256        # calls started and not yet ended (pi runs a handful at once)

# C0 controls but tab and newline, DEL, C1 controls (ESC, CSI and OSC start terminal
# escape sequences; CR and backspace overwrite what was shown) and the bidirectional
# overrides and isolates (they reorder what the terminal displays).
_ESCAPED = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F) if code not in (0x09, 0x0A)}
_ESCAPED |= {code: f"\\u{code:04x}" for code in (*range(0x80, 0xA0), *range(0x202A, 0x202F),
                                                   *range(0x2066, 0x206A))}


def neutralised(text: str) -> str:
    """`text` with every terminal control character spelled out (`\\x1b`, `\\u009b`)."""
    return text.translate(_ESCAPED)


@dataclass(frozen=True)
class Shown:
    """What one event adds: agent text for stdout, a whole line for stderr."""

    text: str = ""
    line: str = ""


@dataclass
class Transcript:
    """One task's run as the follower shows it, fed events from the task's user message."""

    activity: Activity = "working"
    began: bool = False            # the task's own user message was read
    ended: bool = False
    _tools: dict[str, str] = field(default_factory=dict)

    def feed(self, event: Mapping[str, Any] | Rejected) -> Shown:
        if self.ended:
            return Shown()
        if isinstance(event, Rejected):
            return Shown(line=f"[skipped] {event.reason}")
        kind = event.get("type")
        if kind == "message_end":
            return self._message_end(event.get("message"))
        if kind == "response":
            if event.get("command") == "get_state" and self.activity == "settling" and \
                    event.get("success", True) and isinstance(event.get("data"), Mapping) and \
                    confirms_idle(event["data"]):
                self.ended = True
            return Shown()
        self.activity = next_activity(self.activity, event)
        if kind == "message_update":
            return Shown(text=neutralised(text_delta(event)))
        if kind == "tool_execution_start":
            return self._tool_start(event)
        if kind == "tool_execution_end":
            return self._tool_end(event)
        return Shown()

    def _message_end(self, message: Any) -> Shown:
        if isinstance(message, Mapping) and message.get("role") == "user":
            if self.began:
                self.ended = True     # the next task's message: this one is over
            self.began = True
        return Shown()

    def _tool_start(self, event: Mapping[str, Any]) -> Shown:
        if len(self._tools) >= TOOLS_REMEMBERED:
            self._tools.pop(next(iter(self._tools)))
        self._tools[str(event.get("toolCallId"))] = call_summary(event.get("toolName"),
                                                                 event.get("args"))
        return Shown()

    def _tool_end(self, event: Mapping[str, Any]) -> Shown:
        summary = self._tools.pop(str(event.get("toolCallId")), None) or \
            call_summary(event.get("toolName"), None)
        return Shown(line=f"[tool] {summary} {'error' if event.get('isError') else 'ok'}")


def call_summary(name: Any, arguments: Any) -> str:
    """`write(path=api/x.ts, content="export…")`: the name and the arguments, cut short."""
    shown_name = neutralised(str(name or "?"))[:TOOL_NAME_LIMIT]
    if not isinstance(arguments, Mapping):
        return shown_name
    parts = []
    for key, value in arguments.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        # One line: newlines and tabs are spelled out too.
        text = neutralised(text).replace("\n", "\\n").replace("\t", "\\t")
        if len(text) > ARGUMENT_LIMIT:
            text = text[:ARGUMENT_LIMIT - 1] + "…"
        parts.append(f"{neutralised(str(key))[:ARGUMENT_LIMIT]}={text}")
    summary = ", ".join(parts)
    if len(summary) > TOOL_SUMMARY_LIMIT:
        summary = summary[:TOOL_SUMMARY_LIMIT - 1] + "…"
    return f"{shown_name}({summary})"
