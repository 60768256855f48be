"""The dashboard's mirror: what a page is told from the collections it keeps (objects in
`kubectl get` order, or the reason they may be stale)."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from reef_operator.cli.plugin import dashboard
from reef_operator.cli.plugin.cluster import Cluster, PluginError
from reef_operator.cli.plugin.mirror import Mirror

SERVER = "https://127.0.0.1:6443"


def _mirror() -> Mirror:
    """A mirror never started: its collections are fed by the test."""
    return Mirror(Cluster(client.ApiClient(), "team", SERVER), all_namespaces=True)


def _lieutenant(namespace: str, name: str) -> dict[str, object]:
    return {"metadata": {"namespace": namespace, "name": name, "resourceVersion": "1"}}


def test_objects_come_sorted_by_namespace_then_name() -> None:
    mirror = _mirror()
    mirror.collections["lieutenants"].replace({
        "metadata": {"resourceVersion": "5"},
        "items": [_lieutenant("b", "api"), _lieutenant("a", "web"), _lieutenant("a", "db")]})
    names = [(o["metadata"]["namespace"], o["metadata"]["name"])
             for o in mirror.items("lieutenants", wait=0)]
    assert names == [("a", "db"), ("a", "web"), ("b", "api")]


def test_a_failed_watch_is_what_the_page_is_told_until_a_list_succeeds() -> None:
    mirror = _mirror()
    collection = mirror.collections["vmnodes"]
    collection.replace({"metadata": {"resourceVersion": "5"}, "items": []})
    collection.fail("watch", ApiException(status=403, reason="Forbidden"))
    with pytest.raises(PluginError, match=r"^cannot watch vmnodes: Forbidden \(HTTP 403\)$"):
        mirror.items("vmnodes", wait=0)
    collection.fail("list", ConnectionRefusedError(111, "Connection refused"))
    with pytest.raises(PluginError, match=f"^cannot reach the cluster at {SERVER}: "):
        mirror.items("vmnodes", wait=0)
    collection.replace({"metadata": {"resourceVersion": "6"}, "items": []})
    assert mirror.items("vmnodes", wait=0) == []


def test_no_answer_yet_is_an_error_not_an_empty_fleet() -> None:
    with pytest.raises(PluginError, match=f"no answer from the cluster at {SERVER} within 0s"):
        _mirror().items("lieutenants", wait=0)


def test_the_fleet_says_which_policy_holds_a_lieutenant() -> None:
    """`hold` is the Ready reason of a policy's hold (the page colours each its own way),
    empty otherwise; the reason and message travel in `ready` for every row."""
    def lieutenant(name: str, ready: str, reason: str, message: str) -> dict[str, object]:
        return {**_lieutenant("a", name), "status": {"phase": "Paused", "conditions": [
            {"type": "Ready", "status": ready, "reason": reason, "message": message}]}}

    mirror = _mirror()
    mirror.collections["lieutenants"].replace({"metadata": {"resourceVersion": "5"}, "items": [
        lieutenant("asleep", "True", "IdlePaused", "no task for 15m"),
        lieutenant("spent", "False", "BudgetExhausted", "the budget is spent"),
        lieutenant("gone", "False", "Expired", "expired"),
        lieutenant("waiting", "False", "QuotaExceeded", "no room"),
        lieutenant("napping", "False", "Paused", "frozen, memory kept")]})
    mirror.collections["vmnodes"].replace({"metadata": {"resourceVersion": "5"}, "items": []})
    rows = {row["name"]: row for row in dashboard.fleet_view(mirror)["lieutenants"]}
    assert {name: row["hold"] for name, row in rows.items()} == {
        "asleep": "IdlePaused", "spent": "BudgetExhausted", "gone": "Expired",
        "waiting": "QuotaExceeded", "napping": ""}
    assert rows["spent"]["ready"] == {"status": "False", "reason": "BudgetExhausted",
                                      "message": "the budget is spent"}
