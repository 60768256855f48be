"""The operator's role grants exactly what its code calls, in every mode the chart installs.

The inventory is kube/permissions.py (each call declared next to the code that makes it);
the grants are what `helm template` renders, what manifests/ applies and what the local
control plane binds. Equal both ways: a grant nobody uses is a door left open (webhook
configuration writes, Secret lists), a use nobody grants fails in a real cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from reef_devkit import helm
from reef_operator.api.rbac import operator_rbac
from reef_operator.constants import OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT
from reef_operator.kube.permissions import USED, USED_WITH_MANAGED_WEBHOOK, Permission

REPO_ROOT = Path(__file__).resolve().parents[2]
ROLE_KINDS = ("ClusterRole", "Role")

CHART_MODES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "webhook off": {"webhook": {"enabled": False}},
    "webhook certificate from cert-manager": {"webhook": {"certificate": {
        "source": "certManager"}}},
    "some namespaces": {"operator": {"watchNamespaces": ["team-a", "team-b"]}},
    "standby replicas": {"replicaCount": 2},
    "local profile": {"bootProfiles": {"local": True},
                      "config": {"REEF_LOCAL_PROVIDER": "enabled"}},
}


def granted(objects: list[dict[str, Any]]) -> set[Permission]:
    """Every (group, resource, verb) the roles grant; wildcards and names refused outright."""
    out: set[Permission] = set()
    for role in (o for o in objects if o.get("kind") in ROLE_KINDS):
        for rule in role["rules"]:
            assert "resourceNames" not in rule and "nonResourceURLs" not in rule, rule
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], rule
            out |= {(group, resource, verb) for group in rule["apiGroups"]
                    for resource in rule["resources"] for verb in rule["verbs"]}
    return out


@pytest.mark.parametrize("values", CHART_MODES.values(), ids=CHART_MODES.keys())
def test_the_charts_role_grants_exactly_what_the_operator_calls(values: dict[str, Any]) -> None:
    objects = helm.template(REPO_ROOT, values)
    # The chart installs the webhook configuration itself: the operator runs unmanaged.
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    env = {e["name"]: e.get("value") for c in deployment["spec"]["template"]["spec"][
        "containers"] for e in c.get("env") or []}
    if "REEF_WEBHOOK_PORT" in env:
        assert env["REEF_WEBHOOK_MANAGED"] == "false"
    assert granted(objects) == USED


def test_the_plain_manifests_grant_exactly_what_the_operator_calls() -> None:
    documents = list(yaml.safe_load_all(
        (REPO_ROOT / "manifests" / "rbac" / "operator.yaml").read_text()))
    assert granted(documents) == USED


def test_no_install_may_write_webhook_configurations_or_list_secrets() -> None:
    for permissions in (granted(helm.template(REPO_ROOT)), USED):
        assert not {p for p in permissions if p[0] == "admissionregistration.k8s.io"}
        assert {verb for group, resource, verb in permissions
                if (group, resource) == ("", "secrets")} == {"get"}


def test_only_the_local_control_plane_lets_kopf_manage_its_webhook() -> None:
    """The local control plane runs the operator with REEF_WEBHOOK_MANAGED on."""
    managed = operator_rbac(OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT, managed_webhook=True)
    assert granted(managed) == USED_WITH_MANAGED_WEBHOOK
