"""The Argo CD health check on objects the running operator no longer writes: status left
by an older operator (before Ready/Reconciling/Stalled were written everywhere), and
text that must survive the trip into Lua. The integration and e2e tests judge the
objects today's operator writes."""

from __future__ import annotations

from typing import Any

import pytest

from reef_operator.api.conditions import BY_KIND, Summary
from reef_operator.kube.conditions import Condition, merge_conditions, summary
from reef_operator.lieutenants import phases
from reef_operator.lieutenants.holds import Hold
from tests.gitops import argo_health, installed_health_scripts, kstatus, verdict


def _obj(kind: str, *conditions: tuple[str, str, str], **status: Any) -> dict[str, Any]:
    return {"apiVersion": "reef.vers.sh/v1alpha1", "kind": kind,
            "metadata": {"name": "x", "generation": 3},
            "status": {"observedGeneration": 3, **status, "conditions": [
                {"type": t, "status": s, "reason": r, "message": f"{r} happened",
                 "lastTransitionTime": "2026-01-01T00:00:00Z"} for t, s, r in conditions]}}


def test_every_kind_gets_the_same_script() -> None:
    scripts = installed_health_scripts()
    assert set(scripts) == {"Lieutenant", "VMNode", "BootProfile", "ReefPolicy", "VMPool"}
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


def _written(kind: str, conditions: list[Condition], **status: Any) -> dict[str, Any]:
    """An object whose status holds `conditions` as the operator writes them."""
    return {"apiVersion": "reef.vers.sh/v1alpha1", "kind": kind,
            "metadata": {"name": "x", "generation": 3},
            "status": {"observedGeneration": 3, **status,
                       "conditions": merge_conditions(None, conditions, 3,
                                                      "2026-12-02T00:00:00Z")}}


NO_ROOM = "the namespace's ReefPolicy allows 2 running VMs; it starts when there is room"
POLICY_STATES = [
    # A lieutenant paused for idleness is asleep and well: the next task wakes it.
    ("idle-paused", _written("Lieutenant", phases.held(Hold(
        "Paused", "IdlePaused", "paused after 15m idle; the next task resumes it"))[1]),
     "Healthy", "Current", "IdlePaused: paused after 15m idle; the next task resumes it"),
    # A spent budget waits for a person to raise it: suspended, not broken.
    ("budget-paused", _written("Lieutenant", phases.held(Hold(
        "Paused", "BudgetExhausted", "budget spent: 41,200 of 40,000 tokens"))[1]),
     "Suspended", "Current", "BudgetExhausted: budget spent: 41,200 of 40,000 tokens"),
    ("expired", _written("Lieutenant", phases.destroyed(True, "x", Hold(
        "Destroyed", "Expired", "destroyed after 7d without tasks"))[1]),
     "Healthy", "Current", "Expired: destroyed after 7d without tasks"),
    # Expiring, the VM not released yet: on its way.
    ("expiring", _written("Lieutenant", phases.destroyed(False, "x", Hold(
        "Destroyed", "Expired", "destroyed after 7d without tasks"))[1]),
     "Progressing", "InProgress", "Destroying: waiting for VMNode x to release the VM"),
    ("lieutenant-no-room", _written("Lieutenant", [
        *summary("Lieutenant", "QuotaExceeded", NO_ROOM, reconciling=True),
        Condition("Lieutenant", "Working", False, "QuotaExceeded")]),
     "Progressing", "InProgress", f"QuotaExceeded: {NO_ROOM}"),
    ("vmnode-no-room", _written("VMNode", summary("VMNode", "QuotaExceeded", NO_ROOM,
                                                  reconciling=True)),
     "Progressing", "InProgress", f"QuotaExceeded: {NO_ROOM}"),
    ("policy-active", _written("ReefPolicy", summary("ReefPolicy", "Active", "applied",
                                                     ready=True)),
     "Healthy", "Current", "Active: applied"),
    ("policy-duplicate", _written("ReefPolicy", summary(
        "ReefPolicy", "Duplicate", "ReefPolicy team applies; delete one", stalled=True)),
     "Degraded", "Failed", "Duplicate: ReefPolicy team applies; delete one"),
    # The user's own pause stays Suspended, whatever the idle policy.
    ("user-paused", _written("Lieutenant", phases.paused()[1]), "Suspended", "Current",
     "Paused: frozen, memory kept"),
]


@pytest.mark.parametrize(("obj", "health", "kstatus_", "message"),
                         [case[1:] for case in POLICY_STATES],
                         ids=[case[0] for case in POLICY_STATES])
def test_what_a_policy_holds_reads_for_what_it_is(obj: dict[str, Any], health: str,
                                                   kstatus_: str, message: str) -> None:
    """The conditions the operator writes for each policy's hold, as Argo CD and kstatus
    read them; `verdict` also holds them to the catalogue's row."""
    judged = verdict(obj)
    assert (judged.health, judged.kstatus, judged.message) == (health, kstatus_, message)


@pytest.mark.parametrize(("kind", "row"), ROWS,
                         ids=[f"{k}-{r.reason}-{r.when}" for k, r in ROWS])
def test_kstatus_reads_every_row_as_the_catalogue_says(kind: str, row: Summary) -> None:
    """Reconciling=True is InProgress, Stalled=True is Failed, anything else is Current."""
    written = [(type_, str(status), row.reason) for type_, status in (
        ("Ready", row.ready), ("Reconciling", row.reconciling), ("Stalled", row.stalled))
        if status is not None]
    expected = "InProgress" if row.reconciling else "Failed" if row.stalled else "Current"
    assert kstatus(_obj(kind, *written)) == expected
