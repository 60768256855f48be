"""The operator's log output: kopf's text lines, or one JSON object per line.

JSON lines carry `time` (RFC 3339, UTC, milliseconds), `level`, `logger`, `message`, the
Kubernetes object the line is about (`object`: apiVersion, kind, namespace, name, uid;
kopf adds it to every line logged for an object) and, for errors, `exception`. Nothing
else from the log record is copied, so fields a library attaches (kopf's settings, say)
never reach the output. Secrets are `Secret` values, which format as a mask.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Mapping
from typing import Any

FORMATS = ("text", "json")
_REF_KEYS = ("apiVersion", "kind", "namespace", "name", "uid")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        entry: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, Mapping):
            entry["object"] = {key: str(ref[key]) for key in _REF_KEYS if ref.get(key)}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(log_format: str, verbose: bool) -> None:
    """Logging for `reef-operator run`: kopf's handler, with our formatter for JSON."""
    import kopf

    if log_format not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}: {log_format!r}")
    kopf.configure(verbose=verbose)
    logging.getLogger("reef_operator").setLevel(logging.DEBUG if verbose else logging.INFO)
    if log_format == "json":
        formatter = JsonFormatter()
        for handler in logging.getLogger().handlers:
            handler.setFormatter(formatter)
        logging.captureWarnings(True)   # warnings.warn() as JSON lines too, not raw stderr
