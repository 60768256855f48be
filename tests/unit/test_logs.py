"""JSON log lines: the fields a log pipeline reads, kopf's object reference, no secrets."""

from __future__ import annotations

import json
import logging
import sys

from reef_operator.logs import JsonFormatter
from reef_operator.secret import Secret

KEY = "vers_sk_live_0123456789abcdefSECRETTAIL"


def record(message: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    entry = logging.LogRecord("kopf.objects", logging.WARNING, __file__, 1, message, args,
                              sys.exc_info() if exc else None)
    for key, item in extra.items():
        setattr(entry, key, item)
    return entry


def test_a_line_has_time_level_logger_message_and_the_object() -> None:
    ref = {"apiVersion": "reef.vers.sh/v1alpha1", "kind": "Lieutenant", "name": "api",
           "uid": "6a1f", "namespace": "team-a"}
    line = JsonFormatter().format(record("stepping out: %s\nnext line", "pausing",
                                         k8s_ref=ref, k8s_skip=False, settings=object()))
    assert "\n" not in line
    entry = json.loads(line)
    assert set(entry) == {"time", "level", "logger", "message", "object"}
    assert entry["time"].endswith("Z") and "T" in entry["time"]
    assert entry["level"] == "warning" and entry["logger"] == "kopf.objects"
    assert entry["message"] == "stepping out: pausing\nnext line"
    assert entry["object"] == ref


def test_secrets_are_masked_and_exceptions_kept() -> None:
    secret = Secret(KEY)
    try:
        raise RuntimeError(f"cannot use key {secret}")
    except RuntimeError:
        line = JsonFormatter().format(record("config: VERS_API_KEY=%s (%r)", secret, secret,
                                             exc=True))
    entry = json.loads(line)
    assert KEY not in line and "vers****" in entry["message"]
    assert "RuntimeError: cannot use key vers****" in entry["exception"]
    assert "object" not in entry
