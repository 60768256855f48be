"""What `kubectl reef wait --for=…` waits for: a condition's status, or a lieutenant's phase.

`--for` is parsed once, where the arguments are read, into one of two typed targets;
input that names neither is a usage error there, before any cluster is contacted.
The wait loop then only asks a target whether an object meets it and, when time
runs out, how the object stands instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reef_operator.api.lieutenant import PHASES
from reef_operator.kube.conditions import find_condition

USAGE = "expected condition=TYPE[=STATUS] or phase=PHASE"
# Kubernetes condition statuses, in the spelling the API writes them.
STATUSES = ("True", "False", "Unknown")


@dataclass(frozen=True)
class ConditionTarget:
    """`condition=TYPE[=STATUS]`: the condition has STATUS for the object's current
    generation (a condition written for an older spec does not count)."""

    type: str
    status: str = "True"

    def met_by(self, obj: Mapping[str, Any]) -> bool:
        status = obj.get("status") or {}
        found = find_condition(obj, self.type)
        generation = (obj.get("metadata") or {}).get("generation")
        observed = found.get("observedGeneration", status.get("observedGeneration"))
        fresh = generation is None or observed is None or observed >= generation
        return fresh and str(found.get("status", "")).lower() == self.status.lower()

    def describe(self, obj: Mapping[str, Any]) -> str:
        found = find_condition(obj, self.type)
        if not found:
            return f"no {self.type} condition; phase {(obj.get('status') or {}).get('phase')}"
        return (f"{found.get('status')} {found.get('reason', '')}: "
                f"{found.get('message', '')}").strip()

    def __str__(self) -> str:
        return f"{self.type}={self.status}"


@dataclass(frozen=True)
class PhaseTarget:
    """`phase=PHASE`: a lieutenant's `status.phase` (VMNodes have none)."""

    phase: str

    def met_by(self, obj: Mapping[str, Any]) -> bool:
        return str((obj.get("status") or {}).get("phase")) == self.phase

    def describe(self, obj: Mapping[str, Any]) -> str:
        return f"phase {(obj.get('status') or {}).get('phase')}"

    def __str__(self) -> str:
        return f"phase={self.phase}"


WaitTarget = ConditionTarget | PhaseTarget


def parse(text: str) -> WaitTarget:
    """`condition=Ready`, `condition=Ready=false`, `phase=Idle`; ValueError says what is
    expected. A condition's status is matched case-insensitively, as kubectl wait does;
    a phase must be one the Lieutenant schema allows (any other is never reached)."""
    kind, _, rest = text.partition("=")
    if kind == "phase" and rest:
        if rest not in PHASES:
            raise ValueError(f"{text!r}: a lieutenant's phase is one of {', '.join(PHASES)}")
        return PhaseTarget(rest)
    condition, _, status = rest.partition("=")
    if kind != "condition" or not condition:
        raise ValueError(f"{text!r}: {USAGE}")
    spelled = {s.lower(): s for s in STATUSES}.get((status or "True").lower())
    if spelled is None:
        raise ValueError(f"{text!r}: a condition's status is one of {', '.join(STATUSES)}")
    return ConditionTarget(condition, spelled)
