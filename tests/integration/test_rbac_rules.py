"""The operator's role grants exactly what its code calls, in every mode the chart installs.

The inventory is kube/permissions.py (each call declared next to the code that makes it);
the grants are what `helm template` renders, what manifests/ applies and what the local
control plane binds. Equal both ways: a grant nobody uses is a door left open (webhook
configuration writes, Secret lists), a use nobody grants fails in a real cluster.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from reef_devkit import helm
from reef_operator.api.rbac import operator_rbac
from reef_operator.constants import OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT
from reef_operator.kube.permissions import (
    IN_SERVED_NAMESPACES,
    USED,
    USED_WITH_MANAGED_WEBHOOK,
    Permission,
)
from tests.conftest import Kube

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


def test_serving_some_namespaces_secrets_and_identities_are_only_there_and_in_its_own() -> None:
    objects = helm.template(REPO_ROOT, {"operator": {"watchNamespaces": ["team-a", "team-b"]}},
                            namespace="ops")
    [cluster_role] = [o for o in objects if o["kind"] == "ClusterRole"]
    assert granted([cluster_role]) == USED - IN_SERVED_NAMESPACES
    roles = {o["metadata"]["namespace"]: o for o in objects if o["kind"] == "Role"}
    assert sorted(roles) == ["ops", "team-a", "team-b"]
    for role in roles.values():
        assert granted([role]) == IN_SERVED_NAMESPACES
    bindings = {o["metadata"]["namespace"]: o for o in objects if o["kind"] == "RoleBinding"}
    assert sorted(bindings) == sorted(roles)
    account = next(o for o in objects if o["kind"] == "ServiceAccount")["metadata"]["name"]
    for namespace, binding in bindings.items():
        assert binding["roleRef"]["name"] == roles[namespace]["metadata"]["name"]
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account,
                                        "namespace": "ops"}]


def test_the_plain_manifests_grant_exactly_what_the_operator_calls() -> None:
    documents = list(yaml.safe_load_all(
        (REPO_ROOT / "manifests" / "rbac" / "operator.yaml").read_text()))
    assert granted(documents) == USED


def test_no_install_may_write_webhook_configurations_or_list_secrets() -> None:
    for permissions in (granted(helm.template(REPO_ROOT)), USED):
        assert not {p for p in permissions if p[0] == "admissionregistration.k8s.io"}
        # Read by name; made and deleted for a delegating lieutenant's tokens to be bound to
        # (docs/delegation.md); never listed, watched or changed.
        assert {verb for group, resource, verb in permissions
                if (group, resource) == ("", "secrets")} == {"get", "create", "delete"}


def test_only_the_local_control_plane_lets_kopf_manage_its_webhook() -> None:
    """The local control plane runs the operator with REEF_WEBHOOK_MANAGED on."""
    managed = operator_rbac(OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT, managed_webhook=True)
    assert granted(managed) == USED_WITH_MANAGED_WEBHOOK


@pytest.mark.controlplane
def test_the_charts_account_reads_secrets_only_where_it_serves(admin: Kube,
                                                              namespace: str) -> None:
    """The chart's RBAC for an operator serving one namespace, applied to a real apiserver;
    its ServiceAccount, impersonated, reads a Secret there and is refused one elsewhere, and
    may not touch webhook configurations."""
    served, home, elsewhere = namespace, f"{namespace}-op", f"{namespace}-other"
    release = f"rr-{uuid.uuid4().hex[:6]}"
    objects: list[dict[str, Any]] = []
    for extra in (home, elsewhere):
        admin.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=extra)))
    try:
        objects += [o for o in helm.template(REPO_ROOT, {"operator": {"watchNamespaces": [served]}},
                                            release=release, namespace=home)
                   if o["kind"] in ("ServiceAccount", *ROLE_KINDS, "ClusterRoleBinding",
                                    "RoleBinding")]
        admin.kubectl("apply", "-f", "-", stdin="\n---\n".join(yaml.safe_dump(o)
                                                              for o in objects))
        account = next(o for o in objects if o["kind"] == "ServiceAccount")["metadata"]["name"]
        for where in (served, home, elsewhere):
            admin.core.create_namespaced_secret(where, client.V1Secret(
                metadata=client.V1ObjectMeta(name="creds"), string_data={"KEY": "value"}))

        def as_operator(*args: str) -> subprocess.CompletedProcess[str]:
            return admin.kubectl(*args, f"--as=system:serviceaccount:{home}:{account}",
                                 check=False)

        for where in (served, home):
            read = as_operator("get", "secret", "creds", "-n", where, "-o", "name")
            assert read.returncode == 0 and read.stdout.strip() == "secret/creds", read.stderr
        refused = as_operator("get", "secret", "creds", "-n", elsewhere)
        assert refused.returncode != 0 and "Forbidden" in refused.stderr
        listed = as_operator("get", "secrets", "-n", served)
        assert listed.returncode != 0 and "Forbidden" in listed.stderr
        for verb in ("create", "patch"):
            can = as_operator("auth", "can-i", verb,
                              "validatingwebhookconfigurations.admissionregistration.k8s.io")
            assert can.stdout.strip() == "no", verb
    finally:
        for extra in (home, elsewhere):
            admin.core.delete_namespace(extra)
        for obj in objects:
            if obj["kind"] in ("ClusterRole", "ClusterRoleBinding"):
                admin.kubectl("delete", obj["kind"].lower(), obj["metadata"]["name"],
                              check=False)
