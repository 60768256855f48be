"""The Argo CD health check on objects the running operator no longer writes: status left
by an older operator (before Ready/Reconciling/Stalled were written everywhere), and
text that must survive the trip into Lua. The integration and e2e tests judge the
objects today's operator writes."""

from __future__ import annotations

from typing import Any

import pytest

from reef_operator.api.conditions import BY_KIND, Summary
from tests.gitops import argo_health, installed_health_scripts


def _obj(kind: str, *conditions: tuple[str, str, str], **status: Any) -> dict[str, Any]:
    return {"apiVersion": "reef.vers.sh/v1alpha1", "kind": kind,
            "metadata": {"name": "x", "generation": 3},
            "status": {"observedGeneration": 3, **status, "conditions": [
                {"type": t, "status": s, "reason": r, "message": f"{r} happened",
                 "lastTransitionTime": "2026-01-01T00:00:00Z"} for t, s, r in conditions]}}


def test_every_kind_gets_the_same_script() -> None:
    scripts = installed_health_scripts()
    assert set(scripts) == {"Lieutenant", "VMNode", "BootProfile", "ReefPolicy"}
    assert len(set(scripts.values())) == 1


@pytest.mark.parametrize(("obj", "health"), [
    # A BootProfile validated by an operator that wrote only Valid.
    (_obj("BootProfile", ("Valid", "True", "Validated")), ("Healthy", "Validated: Validated "
                                                           "happened")),
    (_obj("BootProfile", ("Valid", "False", "Invalid")), ("Degraded", "Invalid: Invalid "
                                                          "happened")),
    # A lieutenant from before Reconciling/Stalled: Ready=False alone is not healthy.
    (_obj("Lieutenant", ("Ready", "False", "WaitingForVM")),
     ("Progressing", "WaitingForVM: WaitingForVM happened")),
    # Status with conditions but none of ours yet.
    (_obj("VMNode", vmId="vm-1"), ("Progressing", "waiting for the operator to report "
                                                  "readiness")),
])
def test_status_from_an_older_operator(obj: dict[str, Any], health: tuple[str, str]) -> None:
    assert argo_health(obj) == health


def test_messages_keep_quotes_newlines_and_unicode() -> None:
    obj = _obj("VMNode", ("Ready", "False", "BootScriptFailed"),
               ("Stalled", "True", "BootScriptFailed"))
    obj["status"]["conditions"][1]["message"] = 'exit 1:\n"npm" → ERR \\ done'
    assert argo_health(obj) == ("Degraded", 'BootScriptFailed: exit 1:\n"npm" → ERR \\ done')


ROWS = [(kind, row) for kind, catalogue in BY_KIND.items() for row in catalogue.summaries]


@pytest.mark.parametrize(("kind", "row"), ROWS,
                         ids=[f"{k}-{r.reason}-{r.when}" for k, r in ROWS])
def test_every_documented_row_gets_its_documented_health(kind: str, row: Summary) -> None:
    """The catalogue (and docs/crd-reference.md from it) and health.lua agree."""
    written = [(type_, str(status), row.reason) for type_, status in (
        ("Ready", row.ready), ("Reconciling", row.reconciling), ("Stalled", row.stalled))
        if status is not None]
    if row.health == "Suspended":
        written.append(("Paused", "True", "Paused"))
    health, _ = argo_health(_obj(kind, *written))
    assert health == row.health
