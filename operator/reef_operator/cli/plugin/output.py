"""Tables, JSON and YAML for the plugin's answers, and the seed's read format."""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from reef_operator.kube.conditions import find_condition

FORMATS = ("table", "json", "yaml")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """kubectl-style: upper-case headers, columns padded by three spaces, no borders."""
    cells = [[str(h).upper() for h in headers], *[[_cell(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in cells]
    return "\n".join(lines)


def structured(data: object, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2, sort_keys=False)
    return yaml.safe_dump(data, sort_keys=False).rstrip("\n")


def _cell(value: object) -> str:
    if value is None or value == "":
        return "<none>"
    return str(value)


def age(timestamp: str | None, now: datetime.datetime | None = None) -> str:
    """`5s`, `3m`, `2h`, `4d`, as kubectl prints ages."""
    if not timestamp:
        return ""
    now = now or datetime.datetime.now(datetime.UTC)
    then = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "m" else 1):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    return find_condition(obj, kind)


def condition_summary(obj: Mapping[str, Any], kind: str) -> dict[str, str]:
    """status, reason and message of a condition ("" for each when it is absent)."""
    found = condition(obj, kind)
    return {k: str(found.get(k, "")) for k in ("status", "reason", "message")}


def model_label(spec: Mapping[str, Any]) -> str:
    """`provider/id` of a lieutenant's model, as `--model` takes it."""
    model = spec.get("model") or {}
    return "/".join(v for v in (model.get("provider"), model.get("id")) if v)


def total_tokens(status: Mapping[str, Any]) -> int:
    usage = status.get("usage") or {}
    return int(usage.get("inputTokens") or 0) + int(usage.get("outputTokens") or 0)


def current_output(lieutenant: Mapping[str, Any]) -> str:
    """What `read` shows without options: the live output while working, else the last
    response (as the seed did)."""
    status = lieutenant.get("status") or {}
    current = status.get("currentTask") or {}
    if current.get("name"):
        return str(current.get("output") or "")
    history = status.get("history") or []
    return str(history[-1].get("response") or "") if history else ""


def history_blocks(lieutenant: Mapping[str, Any], count: int) -> str:
    """The seed's format: `=== Response i ===` for the last `count` responses, oldest
    first, then `=== Current (<phase>) ===` with the live output."""
    status = lieutenant.get("status") or {}
    history = list(status.get("history") or [])[-count:] if count > 0 else []
    parts = []
    for index, entry in enumerate(history, start=1):
        note = " [truncated]" if entry.get("truncated") else ""
        parts.append(f"=== Response {index} ===\n(task {entry.get('task')}, "
                     f"{entry.get('stopReason') or 'stop'}{note})\n{entry.get('response') or ''}")
    phase = str(status.get("phase") or "Unknown").lower()
    current = status.get("currentTask") or {}
    live = str(current.get("output") or "") if current.get("name") else ""
    heading = f"=== Current ({phase}) ==="
    if current.get("name"):
        heading = f"=== Current ({phase}: {current['name']}) ==="
    parts.append(f"{heading}\n{live}" if live else heading)
    return "\n\n".join(parts)
