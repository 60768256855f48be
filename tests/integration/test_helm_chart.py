"""The Helm chart and the plain manifests.

Rendered with several value sets and read back as objects; the plain manifests compared
with the chart; then the chart installed into the real control plane and its
ServiceAccount put to work: there are no kubelets, so the operator runs as a local
process started exactly as the chart's Deployment starts it (command, arguments,
environment, the webhook certificate where the Secret volume would put it), with the
ServiceAccount's own token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from kubernetes import client

from reef_devkit import helm
from reef_devkit.controlplane import LocalControlPlane
from reef_devkit.controlplane.build import ensure_binaries
from reef_devkit.controlplane.processes import free_port
from reef_operator import config
from reef_operator.api import KINDS
from reef_operator.api.peering import peering_documents
from reef_operator.api.rbac import RULES
from reef_operator.constants import GROUP, VERSION
from reef_operator.kube.conditions import find_condition
from reef_operator.profiles.defaults import DEFAULT_PROFILES
from reef_operator.providers.local.provider import kill_every_vm
from reef_operator.render.chart import admission_webhooks
from tests.conftest import REPO_ROOT, Kube

Object = dict[str, Any]
API_KEY = "vk-chart-test-0123456789abcdef"


# --- rendering ---------------------------------------------------------------------------


def render(values: dict[str, Any] | None = None, *, release: str = "reef-operator",
           namespace: str = "reef-system") -> list[Object]:
    return helm.template(REPO_ROOT, values, release=release, namespace=namespace)


def render_error(values: dict[str, Any]) -> str:
    result = helm.template_run(REPO_ROOT, values)
    assert result.returncode != 0, "helm template should have refused these values"
    return result.stderr


def find(objects: list[Object], kind: str, name: str | None = None) -> list[Object]:
    return [o for o in objects if o["kind"] == kind
            and (name is None or o["metadata"]["name"] == name)]


def one(objects: list[Object], kind: str, name: str | None = None) -> Object:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def operator_container(objects: list[Object]) -> Object:
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    return cast(Object, next(c for c in pod["containers"] if c["name"] == "operator"))


def env_of(container: Object) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env") or [] if "value" in e}


def flags(container: Object) -> dict[str, str]:
    """`--name=value` arguments of the operator's command line."""
    return dict(arg[2:].split("=", 1) for arg in container["args"] if arg.startswith("--")
                and "=" in arg)


def pem(b64: str) -> bytes:
    return base64.b64decode(b64)


VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "webhook off": {"webhook": {"enabled": False}},
    "service monitor": {"metrics": {"serviceMonitor": {"enabled": True,
                                                       "labels": {"release": "prom"}}}},
    "inline key": {"versCredentials": {"apiKey": API_KEY}},
    "replicas": {"replicaCount": 3},
    "cert-manager": {"webhook": {"certificate": {"source": "certManager"}}},
    "namespaced": {"operator": {"watchNamespaces": ["team-a", "team-b"]}},
}


def test_the_chart_lints_with_every_value_set() -> None:
    for values in VALUE_SETS.values():
        with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
            json.dump(values, file)
            file.flush()
            result = helm.helm("lint", "--strict", str(REPO_ROOT / helm.CHART),
                               "--values", file.name, check=False)
        assert result.returncode == 0, (values, result.stdout, result.stderr)


def test_the_chart_version_follows_the_operator() -> None:
    chart = yaml.safe_load((REPO_ROOT / helm.CHART / "Chart.yaml").read_text())
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"]
    image = operator_container(render())["image"]
    assert image == f"reef-operator:{project['version']}"


def test_defaults_one_recreated_replica_run_as_the_chart_says() -> None:
    objects = render()
    deployment = one(objects, "Deployment", "reef-operator")
    assert deployment["metadata"]["namespace"] == "reef-system"
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"][
        "labels"].items()
    container = operator_container(objects)
    assert container["command"][:2] == ["/bin/sh", "-c"]
    assert container["command"][2].startswith("exec reef-operator run --priority=")
    assert flags(container) == {
        "peering": "reef-operator",
        "metrics-bind-address": "0.0.0.0:8080",
        "health-probe-bind-address": "0.0.0.0:8081",
        "log-format": "json",
    }
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 8080, "health": 8081, "webhook": 9443}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert container["resources"]["requests"] and container["resources"]["limits"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/tmp", "/home/reef"} <= mounts   # noqa: S108 - the Local provider writes only there

    # One peering group, the object kopf needs for it, and nothing namespaced.
    assert one(objects, "ClusterKopfPeering")["metadata"]["name"] == "reef-operator"
    assert find(objects, "KopfPeering") == []
    assert find(objects, "ServiceMonitor") == []
    assert find(objects, "Secret", "reef-vers-credentials") == []


def test_the_rbac_is_exactly_the_operators_rules() -> None:
    objects = render(release="reef", namespace="ops")
    role = one(objects, "ClusterRole")
    assert role["rules"] == RULES
    binding = one(objects, "ClusterRoleBinding")
    account = one(objects, "ServiceAccount")
    assert binding["roleRef"]["name"] == role["metadata"]["name"] == "reef-reef-operator"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": "ops"}]
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    # Every object in the release namespace; every cluster-wide name carries the release.
    for obj in objects:
        if obj["kind"] in ("ClusterRole", "ClusterRoleBinding", "ClusterKopfPeering",
                           "ValidatingWebhookConfiguration"):
            assert obj["metadata"]["name"].startswith("reef-"), obj["kind"]
        elif obj["kind"] != "BootProfile":
            assert obj["metadata"]["namespace"] == "ops", obj["kind"]


def test_the_operator_is_told_where_its_configuration_is() -> None:
    values = {"config": {"VERS_BASE_URL": "https://api.staging.vers.sh", "VERS_SSH_PORT": 8443,
                         "REEF_DEFAULT_PROFILE": "local", "VERS_TLS_VERIFY": True}}
    objects = render(values)
    configmap = one(objects, "ConfigMap")
    assert configmap["metadata"]["name"] == config.DEFAULT_CONFIGMAP
    assert configmap["data"] == {"VERS_BASE_URL": "https://api.staging.vers.sh",
                                 "VERS_SSH_PORT": "8443", "REEF_DEFAULT_PROFILE": "local",
                                 "VERS_TLS_VERIFY": "true"}
    env = env_of(operator_container(objects))
    assert env[config.REEF_NAMESPACE.key] == "reef-system"
    assert env[config.REEF_CONFIGMAP.key] == config.DEFAULT_CONFIGMAP
    assert env[config.REEF_SECRET.key] == config.DEFAULT_SECRET
    # The operator reads that ConfigMap the way it reads any: the values mean what they say.
    resolved = config.resolve({}, configmap["data"], configmap_name="reef-system/x")
    assert (resolved.vers_base_url, resolved.vm_domain, resolved.ssh_port,
            resolved.default_profile, resolved.tls_verify) == (
        "https://api.staging.vers.sh", "vm.staging.vers.sh", 8443, "local", True)
    assert one(render(), "ConfigMap")["data"] == {}


def test_every_setting_of_the_operator_is_a_value_and_nothing_else_is() -> None:
    values = yaml.safe_load((REPO_ROOT / helm.CHART / "values.yaml").read_text())
    assert list(values["config"]) == [k for k in config.KEYS if k not in config.SECRET_KEYS]
    assert "VERS_API_KEY" in render_error({"config": {"VERS_API_KEY": API_KEY}})
    assert "belongs in a Secret" in render_error({"config": {"VERS_API_KEY": API_KEY}})
    message = render_error({"config": {"VERS_BASEURL": "https://x"}})
    assert "config.VERS_BASEURL: not a setting of the operator" in message
    assert "VERS_BASE_URL" in message
    assert API_KEY not in render_error({"config": {"VERS_API_KEY": API_KEY}})


def test_a_config_change_rolls_the_operator() -> None:
    def checksum(values: dict[str, Any]) -> str:
        pod = one(render(values), "Deployment")["spec"]["template"]
        return str(pod["metadata"]["annotations"]["checksum/config"])

    assert checksum({}) == checksum({})
    assert checksum({}) != checksum({"config": {"REEF_PLATFORM_RATE": "5"}})


def test_the_api_key_from_an_existing_secret() -> None:
    objects = render({"versCredentials": {"secretName": "my-vers"}})
    assert find(objects, "Secret", "my-vers") == []
    assert env_of(operator_container(objects))[config.REEF_SECRET.key] == "my-vers"


def test_an_inline_api_key_lands_in_a_secret_and_nowhere_else() -> None:
    objects = render({"versCredentials": {"apiKey": API_KEY}})
    secret = one(objects, "Secret", config.DEFAULT_SECRET)
    assert base64.b64decode(secret["data"]["VERS_API_KEY"]).decode() == API_KEY
    assert env_of(operator_container(objects))[config.REEF_SECRET.key] == config.DEFAULT_SECRET
    encoded = base64.b64encode(API_KEY.encode()).decode()
    for obj in objects:
        if obj is secret:
            continue
        text = yaml.safe_dump(obj)
        assert API_KEY not in text and encoded not in text, obj["kind"]
    # The key is not in the environment either: the operator reads the Secret itself.
    container = operator_container(objects)
    assert all("valueFrom" not in e for e in container["env"])
    # A new key rolls the operator, which reads the key at start.
    pod = one(objects, "Deployment")["spec"]["template"]
    assert pod["metadata"]["annotations"]["checksum/credentials"] == hashlib.sha256(
        API_KEY.encode()).hexdigest()


def test_the_webhook_is_served_where_the_configuration_points() -> None:
    objects = render()
    configuration = one(objects, "ValidatingWebhookConfiguration", "reef-operator")
    service = one(objects, "Service", "reef-operator-webhook")
    container = operator_container(objects)
    env = env_of(container)
    # The operator serves it but does not manage the configuration (kopf would write a url).
    assert env["REEF_WEBHOOK_MANAGED"] == "false"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert int(env["REEF_WEBHOOK_PORT"]) == ports["webhook"]
    assert service["spec"]["ports"] == [{"name": "webhook", "port": 443, "targetPort": "webhook",
                                         "protocol": "TCP"}]
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()

    # The webhooks are the operator's admission handlers, at the paths kopf serves them.
    expected = admission_webhooks()
    assert [w["name"] for w in configuration["webhooks"]] == [w["name"] for w in expected]
    assert {w["clientConfig"]["service"]["path"] for w in expected} == {
        "/lieutenant-tasks-are-kept", "/vmnode-vm-id-is-immutable",
        "/lieutenant-credentials-are-labelled", "/bootprofile-secrets-in-operator-namespace",
        "/lieutenant-fits-the-policy", "/vmnode-fits-the-policy", "/reefpolicy-is-the-only-one",
        "/delegated-lieutenant-writes", "/delegated-vmnode-writes"}
    for webhook, kopf_built in zip(configuration["webhooks"], expected, strict=True):
        assert webhook["rules"] == kopf_built["rules"]
        # A delegate's writes are never admitted unchecked, and only namespaces that enable
        # delegation depend on the operator for them (docs/delegation.md); the rest fail open.
        if webhook["name"].startswith("delegated-"):
            assert webhook["failurePolicy"] == "Fail"
            assert webhook["namespaceSelector"] == {
                "matchLabels": {"reef.vers.sh/delegation": "enabled"}}
            continue
        assert webhook["failurePolicy"] == "Ignore" and "namespaceSelector" not in webhook
        assert webhook["sideEffects"] == "None"
        assert webhook["timeoutSeconds"] == 10
        assert webhook["clientConfig"]["service"] == {
            "name": "reef-operator-webhook", "namespace": "reef-system", "port": 443,
            "path": kopf_built["clientConfig"]["service"]["path"]}

    # The certificate: signed by the caBundle's CA, for the name the apiserver calls, and
    # mounted where the operator is told to read it.
    secret = one(objects, "Secret", "reef-operator-webhook-tls")
    assert secret["type"] == "kubernetes.io/tls"
    bundles = {w["clientConfig"]["caBundle"] for w in configuration["webhooks"]}
    assert bundles == {secret["data"]["ca.crt"]}
    ca = x509.load_pem_x509_certificate(pem(secret["data"]["ca.crt"]))
    cert = x509.load_pem_x509_certificate(pem(secret["data"]["tls.crt"]))
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "reef-operator-webhook.reef-system.svc" in names.get_values_for_type(x509.DNSName)
    assert env["REEF_WEBHOOK_HOST"] == "reef-operator-webhook.reef-system.svc"
    key = serialization.load_pem_private_key(pem(secret["data"]["tls.key"]), password=None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()  # type: ignore[union-attr]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "webhook-tls")
    volume = next(v for v in one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
                  if v["name"] == "webhook-tls")
    assert volume["secret"]["secretName"] == "reef-operator-webhook-tls"
    assert {env["REEF_WEBHOOK_CERT"], env["REEF_WEBHOOK_KEY"], env["REEF_WEBHOOK_CA"]} == {
        f"{mount['mountPath']}/{name}" for name in ("tls.crt", "tls.key", "ca.crt")}


def test_webhook_off_leaves_no_trace() -> None:
    objects = render({"webhook": {"enabled": False}})
    assert find(objects, "ValidatingWebhookConfiguration") == []
    assert [o["metadata"]["name"] for o in find(objects, "Service")] == ["reef-operator-metrics"]
    assert find(objects, "Secret") == []
    container = operator_container(objects)
    assert not [name for name in env_of(container) if name.startswith("REEF_WEBHOOK")]
    assert "webhook" not in {p["name"] for p in container["ports"]}
    assert "webhook-tls" not in {m["name"] for m in container["volumeMounts"]}


def test_a_webhook_certificate_of_your_own() -> None:
    bundle = base64.b64encode(b"-----BEGIN CERTIFICATE-----\n...").decode()
    objects = render({"webhook": {"certificate": {"source": "secret", "secretName": "mine",
                                                  "caBundle": bundle}}})
    assert find(objects, "Secret") == []
    configuration = one(objects, "ValidatingWebhookConfiguration")
    assert {w["clientConfig"]["caBundle"] for w in configuration["webhooks"]} == {bundle}
    volumes = one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "webhook-tls", "secret": {"secretName": "mine"}} in volumes
    # Without a caBundle, and no cluster to read the Secret's ca.crt from: a clear refusal.
    message = render_error({"webhook": {"certificate": {"source": "secret"}}})
    assert "set webhook.certificate.caBundle" in message
    assert "reef-operator-webhook-tls with ca.crt" in message
    assert "expected helm, secret or certManager" in render_error(
        {"webhook": {"certificate": {"source": "vault"}}})


def test_a_webhook_certificate_from_cert_manager() -> None:
    objects = render({"webhook": {"certificate": {"source": "certManager"}}})
    certificate = one(objects, "Certificate")
    issuer = one(objects, "Issuer")
    assert certificate["spec"]["issuerRef"] == {"kind": "Issuer",
                                                "name": issuer["metadata"]["name"]}
    assert "reef-operator-webhook.reef-system.svc" in certificate["spec"]["dnsNames"]
    assert certificate["spec"]["secretName"] == "reef-operator-webhook-tls"
    configuration = one(objects, "ValidatingWebhookConfiguration")
    assert configuration["metadata"]["annotations"] == {
        "cert-manager.io/inject-ca-from": "reef-system/reef-operator-webhook"}
    assert all("caBundle" not in w["clientConfig"] for w in configuration["webhooks"])
    assert find(objects, "Secret") == []     # cert-manager writes it
    cluster_issuer = {"kind": "ClusterIssuer", "name": "corp-ca"}
    objects = render({"webhook": {"certificate": {"source": "certManager",
                                                  "certManager": {"issuerRef": cluster_issuer}}}})
    assert find(objects, "Issuer") == []
    assert one(objects, "Certificate")["spec"]["issuerRef"] == cluster_issuer


def test_metrics_service_and_optional_service_monitor() -> None:
    objects = render({"metrics": {"serviceMonitor": {"enabled": True,
                                                     "labels": {"release": "prom"}}}})
    service = one(objects, "Service", "reef-operator-metrics")
    container = operator_container(objects)
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert "metrics" in {p["name"] for p in container["ports"]}
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    monitor = one(objects, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"][
        "labels"].items()
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics",
                                             "interval": "30s", "scrapeTimeout": "10s"}]
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["reef-system"]}


def test_extra_replicas_stand_by_through_peering() -> None:
    objects = render({"replicaCount": 3})
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    container = operator_container(objects)
    # Distinct priorities per replica (kopf pauses every replica of a tie): minus the start
    # time, computed by the container's shell.
    assert '--priority="-$(date +%s%N)"' in container["command"][2]
    assert flags(container)["peering"] == one(objects, "ClusterKopfPeering")["metadata"]["name"]
    fixed = operator_container(render({"operator": {"priority": 5}}))
    assert fixed["command"] == ["reef-operator", "run", "--priority=5"]


def test_serving_some_namespaces_peers_in_each() -> None:
    objects = render({"operator": {"watchNamespaces": ["team-a", "team-b"],
                                   "peeringName": "reef"}})
    assert find(objects, "ClusterKopfPeering") == []
    peerings = find(objects, "KopfPeering")
    assert [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in peerings] == [
        ("team-a", "reef"), ("team-b", "reef")]
    args = operator_container(objects)["args"]
    namespaces = [a for a in args if a.startswith("--namespace")]
    assert namespaces == ["--namespace=team-a", "--namespace=team-b"]


def test_the_shipped_boot_profiles_are_the_operators_but_local_only_on_request() -> None:
    shipped = {name: profile["spec"] for name, profile in DEFAULT_PROFILES.items()}
    profiles = find(render(), "BootProfile")
    # A Local agent would run in the operator's pod, with its identity.
    assert {p["metadata"]["name"]: p["spec"] for p in profiles} == {
        name: spec for name, spec in shipped.items() if spec["provider"] != "Local"}
    for profile in profiles:
        assert profile["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    asked = find(render({"bootProfiles": {"local": True}}), "BootProfile")
    assert {p["metadata"]["name"]: p["spec"] for p in asked} == shipped
    assert find(render({"bootProfiles": {"install": False, "local": True}}), "BootProfile") == []
    # Nor do the plain manifests apply it.
    kustomization = yaml.safe_load((REPO_ROOT / "manifests" / "kustomization.yaml").read_text())
    assert "profiles/local.yaml" not in kustomization["resources"]


def test_the_chart_carries_the_crds() -> None:
    crds = find(helm.template(REPO_ROOT, include_crds=True), "CustomResourceDefinition")
    assert sorted(c["metadata"]["name"] for c in crds) == sorted(
        [kind.crd_name for kind in KINDS] + [d["metadata"]["name"] for d in peering_documents()])


# --- plain manifests ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def kubectl() -> Path:
    return ensure_binaries(None, lambda message: None).kubectl


def _run(argv: list[str | Path], **kwargs: Any) -> str:
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=60,
                            **kwargs)
    assert result.returncode == 0, result.stderr
    return str(result.stdout)


def _comparable(objects: list[Object]) -> dict[tuple[str, str, str], Object]:
    """Objects by kind, namespace and name; in pods, lists merged by name (env, ports,
    mounts, volumes) in name order: kustomize 2.0 puts a patch's entries first, kubectl
    patch last, and none of them refer to another."""
    out = {}
    for obj in objects:
        obj = helm.comparable(obj)
        obj["metadata"].pop("creationTimestamp", None)
        obj.pop("status", None)
        pod = (((obj.get("spec") or {}).get("template") or {}).get("spec")) or {}
        for container in pod.get("containers") or []:
            for field in ("env", "ports", "volumeMounts"):
                container[field] = sorted(container.get(field) or [], key=lambda e: e["name"])
        if "volumes" in pod:
            pod["volumes"] = sorted(pod["volumes"], key=lambda v: v["name"])
        out[helm.key(obj)] = obj
    return out


def test_the_plain_manifests_are_generated_from_the_chart() -> None:
    assert helm.stale_files(REPO_ROOT) == [], "run: python -m reef_devkit.helm"


def test_kustomize_installs_what_the_chart_installs(kubectl: Path) -> None:
    built = list(yaml.safe_load_all(_run([kubectl, "kustomize", REPO_ROOT / "manifests"])))
    chart = helm.template(REPO_ROOT, helm.PLAIN_VALUES, include_crds=True)
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "reef-system"}}
    assert _comparable(built) == _comparable([*chart, namespace])


def test_the_webhook_for_plain_manifests_is_the_charts_cert_manager_one(
    kubectl: Path, tmp_path: Path
) -> None:
    chart = _comparable(helm.template(REPO_ROOT, helm.WEBHOOK_VALUES, include_crds=True))
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "reef-system"}}
    chart.update(_comparable([namespace]))
    # The kustomization recipe the webhook files document: an overlay of one's own.
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    shutil.copy(REPO_ROOT / "manifests/webhook/deployment-patch.yaml", overlay)
    manifests = os.path.relpath(REPO_ROOT / "manifests", overlay)
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "bases": [manifests, f"{manifests}/webhook"],
        "patchesStrategicMerge": ["deployment-patch.yaml"]}))
    built = list(yaml.safe_load_all(_run([kubectl, "kustomize", overlay])))
    assert _comparable(built) == chart
    # The other documented way: apply manifests/webhook/ and patch the Deployment.
    patched = yaml.safe_load(_run([
        kubectl, "patch", "--local", "-o", "yaml", "--type", "strategic",
        "-f", REPO_ROOT / "manifests/operator/deployment.yaml",
        "-p", (REPO_ROOT / "manifests/webhook/deployment-patch.yaml").read_text()]))
    key = ("Deployment", "reef-system", "reef-operator")
    assert _comparable([patched])[key] == chart[key]


# --- installed into the real control plane ------------------------------------------------


@dataclass
class Release:
    name: str
    namespace: str
    fullname: str
    values: dict[str, Any]
    local_root: Path
    kubeconfig: Path       # the ServiceAccount's own token
    env: dict[str, str]    # KUBECONFIG for helm


def _helm_live(release: Release, *args: str) -> str:
    result = subprocess.run([helm.helm_binary(), *args, "--namespace", release.namespace],
                            capture_output=True, text=True, timeout=120, env=release.env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _values_file(directory: Path, values: dict[str, Any]) -> Path:
    path = directory / f"values-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(values))
    return path


def _service_account_kubeconfig(admin: Kube, control_plane: LocalControlPlane, namespace: str,
                                name: str, path: Path) -> Path:
    """A kubeconfig with the token kube-controller-manager minted for the ServiceAccount."""
    deadline = time.monotonic() + 30
    token = ""
    while not token and time.monotonic() < deadline:
        secrets = json.loads(admin.kubectl("get", "secrets", "-n", namespace, "-o",
                                           "json").stdout)["items"]
        for secret in secrets:
            annotations = secret["metadata"].get("annotations") or {}
            if (secret["type"] == "kubernetes.io/service-account-token"
                    and annotations.get("kubernetes.io/service-account.name") == name
                    and (secret.get("data") or {}).get("token")):
                token = base64.b64decode(secret["data"]["token"]).decode()
        time.sleep(0.2)
    assert token, f"no token Secret for ServiceAccount {namespace}/{name}"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {
            "server": control_plane.server,
            "certificate-authority": str(control_plane.ca_file)}}],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "c", "user": "sa"}}],
        "current-context": "sa"}))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def release(control_plane: LocalControlPlane, admin: Kube,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    """The chart installed in a namespace of its own, under a release name of its own (every
    cluster-wide object carries it). The BootProfiles are left out: the control plane
    already ships the same ones, unowned by any release."""
    suffix = uuid.uuid4().hex[:6]
    directory = tmp_path_factory.mktemp("helm-release")
    local_root = Path(tempfile.mkdtemp(prefix="reef-helm-"))   # short: tmux socket paths
    values = {
        "config": {"REEF_LOCAL_ROOT": str(local_root), "REEF_DEFAULT_PROFILE": "local"},
        "versCredentials": {"apiKey": API_KEY},
        "bootProfiles": {"install": False},
        # The apiserver cannot reach a Service here (no pods, no proxy): fail open fast.
        "webhook": {"timeoutSeconds": 2},
    }
    name, namespace = f"rh-{suffix}", f"helm-{suffix}"
    env = {**os.environ, "KUBECONFIG": str(control_plane.kubeconfig),
           "HELM_CACHE_HOME": str(directory / "cache"),
           "HELM_CONFIG_HOME": str(directory / "config"),
           "HELM_DATA_HOME": str(directory / "data")}
    rel = Release(name, namespace, f"{name}-reef-operator", values, local_root,
                  directory / "sa.kubeconfig", env)
    _helm_live(rel, "install", name, str(REPO_ROOT / helm.CHART), "--create-namespace",
               "--values", str(_values_file(directory, values)))
    _service_account_kubeconfig(admin, control_plane, namespace, rel.fullname, rel.kubeconfig)
    try:
        yield rel
    finally:
        _helm_live(rel, "uninstall", name)
        admin.core.delete_namespace(namespace)
        kill_every_vm(local_root)
        shutil.rmtree(local_root, ignore_errors=True)


class ChartOperator:
    """The operator started as the chart's Deployment starts it, on this machine: the
    container's command, arguments and environment; its emptyDirs and the webhook Secret's
    files in a directory of their own; its bind addresses on free loopback ports."""

    def __init__(self, admin: Kube, release: Release, directory: Path) -> None:
        deployment = get(admin, "deployments", release.fullname, release.namespace)
        pod = deployment["spec"]["template"]["spec"]
        container = next(c for c in pod["containers"] if c["name"] == "operator")
        directory.mkdir(parents=True, exist_ok=True)
        self.log_file = directory / "operator.log"
        self.health_port, self.metrics_port = free_port(), free_port()
        self.webhook_port = free_port()
        rebind = {"--metrics-bind-address": f"127.0.0.1:{self.metrics_port}",
                  "--health-probe-bind-address": f"127.0.0.1:{self.health_port}"}
        args = [f"{a.split('=', 1)[0]}={rebind[a.split('=', 1)[0]]}"
                if a.split("=", 1)[0] in rebind else a for a in container["args"]]
        self.argv = [*container["command"], *args]
        mounts = self._volumes(admin, release, pod, container, directory)
        env = {e["name"]: e["value"] for e in container.get("env") or []}
        for name, value in env.items():
            for mount_path, local in mounts.items():
                if value.startswith(mount_path + "/"):
                    env[name] = str(local / value[len(mount_path) + 1:])
        if "REEF_WEBHOOK_PORT" in env:
            env["REEF_WEBHOOK_PORT"] = str(self.webhook_port)
        self.env = {**env, "KUBECONFIG": str(release.kubeconfig),
                    "HOME": str(mounts.get("/home/reef", directory)),
                    "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
                    "PYTHONUNBUFFERED": "1"}
        self._process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def _volumes(admin: Kube, release: Release, pod: Object, container: Object,
                 directory: Path) -> dict[str, Path]:
        volumes = {v["name"]: v for v in pod.get("volumes") or []}
        mounts: dict[str, Path] = {}
        for mount in container.get("volumeMounts") or []:
            local = directory / mount["name"]
            local.mkdir(exist_ok=True)
            secret_name = (volumes[mount["name"]].get("secret") or {}).get("secretName")
            if secret_name:
                secret = admin.core.read_namespaced_secret(secret_name, release.namespace)
                for key, value in (secret.data or {}).items():
                    (local / key).write_bytes(base64.b64decode(value))
            mounts[mount["mountPath"]] = local
        return mounts

    def start(self) -> None:
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, env=self.env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise AssertionError(f"operator exited ({self._process.returncode}):\n"
                                     + self.log_tail())
            if self.probe("health", "/healthz") == 200:
                return
            time.sleep(0.2)
        raise AssertionError("operator not healthy in time:\n" + self.log_tail())

    def probe(self, port: str, path: str) -> int:
        """The HTTP status of `path` on the container port named `port` (0: no answer)."""
        number = {"health": self.health_port, "metrics": self.metrics_port}[port]
        try:
            return httpx.get(f"http://127.0.0.1:{number}{path}", timeout=2).status_code
        except httpx.HTTPError:
            return 0

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


def get(kube: Kube, resource: str, name: str, namespace: str | None = None) -> Object:
    """One object as the apiserver holds it."""
    scope = ["--namespace", namespace] if namespace else []
    return cast(Object, json.loads(kube.kubectl("get", resource, name, *scope,
                                                "-o", "json").stdout))


def wait_for(check: Callable[[], Any], what: str, operator: ChartOperator | None = None,
             within: float = 60) -> Any:
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except client.ApiException as error:
            last = error
        if last and not isinstance(last, client.ApiException):
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}: last {last!r}\n"
                         + (operator.log_tail() if operator else ""))


def _ready(kind_plural: str, kube: Kube, name: str,
           namespace: str | None = None) -> Callable[[], Object | None]:
    def check() -> Object | None:
        obj = kube.get(kind_plural, name, namespace)
        return obj if find_condition(obj, "Ready").get("status") == "True" else None
    return check


def _vmnode(name: str, profile: str) -> Object:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VMNode", "metadata": {"name": name},
            "spec": {"profileRef": {"name": profile}}}


def _vmnode_names(kube: Kube, namespace: str) -> list[str]:
    listed = cast(Object, kube.custom.list_namespaced_custom_object(GROUP, VERSION, namespace,
                                                                     "vmnodes"))
    return [item["metadata"]["name"] for item in listed["items"]]


@pytest.fixture
def probe_profile(admin: Kube, release: Release) -> Iterator[str]:
    """A Local BootProfile of this release's own, with a boot script that leaves a mark."""
    name = f"{release.name}-probe"
    admin.custom.create_cluster_custom_object(GROUP, VERSION, "bootprofiles", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "BootProfile", "metadata": {"name": name},
        "spec": {"provider": "Local", "category": "Agent", "modules": ["store"],
                 "agent": {"install": False}, "bootScript": "echo chart > $HOME/booted"}})
    yield name
    admin.custom.delete_cluster_custom_object(GROUP, VERSION, "bootprofiles", name)


@pytest.mark.controlplane
def test_helm_install_and_upgrade(admin: Kube, release: Release) -> None:
    status = json.loads(_helm_live(release, "status", release.name, "-o", "json"))
    assert status["info"]["status"] == "deployed"
    assert get(admin, "clusterroles", release.fullname)["rules"] == RULES
    configmap = get(admin, "configmaps", f"{release.fullname}-config", release.namespace)
    assert configmap["data"] == release.values["config"]
    deployment = get(admin, "deployments", release.fullname, release.namespace)
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    credentials = get(admin, "secrets", config.DEFAULT_SECRET, release.namespace)
    assert base64.b64decode(credentials["data"]["VERS_API_KEY"]).decode() == API_KEY
    webhook_tls = f"{release.fullname}-webhook-tls"
    secret = get(admin, "secrets", webhook_tls, release.namespace)
    configuration = get(admin, "validatingwebhookconfigurations", release.fullname)
    assert {w["clientConfig"]["caBundle"] for w in configuration["webhooks"]} == {
        secret["data"]["ca.crt"]}
    assert get(admin, "clusterkopfpeerings", release.fullname)

    # An upgrade keeps the generated certificate (read back from the cluster) and rolls the
    # operator when its configuration changes.
    checksum = deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    _helm_live(release, "upgrade", release.name, str(REPO_ROOT / helm.CHART), "--reuse-values",
               "--set", "config.REEF_PLATFORM_BURST=50")
    assert get(admin, "secrets", webhook_tls, release.namespace)["data"] == secret["data"]
    configuration = get(admin, "validatingwebhookconfigurations", release.fullname)
    assert {w["clientConfig"]["caBundle"] for w in configuration["webhooks"]} == {
        secret["data"]["ca.crt"]}
    deployment = get(admin, "deployments", release.fullname, release.namespace)
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["checksum/config"] != checksum
    configmap = get(admin, "configmaps", f"{release.fullname}-config", release.namespace)
    assert configmap["data"]["REEF_PLATFORM_BURST"] == "50"


@pytest.mark.controlplane
def test_the_apiserver_accepts_everything_the_chart_renders(kubectl: Path,
                                                            control_plane: LocalControlPlane
                                                            ) -> None:
    """Including what the live release leaves out (the BootProfiles), extra replicas, and
    the plain manifests; a server-side dry run stores nothing."""
    objects = render({"replicaCount": 2}, release="dry-run", namespace="default")
    text = "\n---\n".join(yaml.safe_dump(o) for o in objects)
    out = _run([kubectl, "--kubeconfig", control_plane.kubeconfig, "apply", "--dry-run=server",
                "-f", "-"], input=text)
    assert out.count("(server dry run)") == len(objects)
    out = _run([kubectl, "--kubeconfig", control_plane.kubeconfig, "apply", "--dry-run=server",
                "-k", REPO_ROOT / "manifests"])
    built = list(yaml.safe_load_all(_run([kubectl, "kustomize", REPO_ROOT / "manifests"])))
    assert out.count("(server dry run)") == len(built)


@pytest.mark.controlplane
def test_the_service_account_runs_the_operator(admin: Kube, release: Release, namespace: str,
                                               probe_profile: str, tmp_path: Path) -> None:
    operator = ChartOperator(admin, release, tmp_path)
    operator.start()
    try:
        # Ready for the chart's readiness probe (the Services route only to ready pods), and
        # metrics where the chart's Service and ServiceMonitor scrape.
        wait_for(lambda: operator.probe("health", "/readyz") == 200, "/readyz 200", operator)
        assert operator.probe("metrics", "/metrics") == 200

        # Configuration from the chart's ConfigMap and Secret, read with the account's RBAC.
        log = operator.log()
        configmap = f"configmap {release.namespace}/{release.fullname}-config"
        assert f"REEF_LOCAL_ROOT={release.local_root} (from {configmap})" in log
        assert f"(from secret {release.namespace}/{config.DEFAULT_SECRET})" in log
        assert API_KEY not in log

        # A BootProfile gets its status.
        profile = wait_for(_ready("bootprofiles", admin, probe_profile), "BootProfile Ready",
                           operator)
        assert profile["status"]["hash"].startswith("sha256:")

        # A VMNode on a Local profile becomes Ready, in the root the ConfigMap names, and is
        # deleted cleanly: finalizer removed, VM gone.
        admin.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "vmnodes",
                                                     _vmnode("chart", probe_profile))
        node = wait_for(_ready("vmnodes", admin, "chart", namespace), "VMNode Ready", operator)
        vm_dir = release.local_root / node["status"]["vmId"]
        assert (vm_dir / "root" / "booted").read_text() == "chart\n"
        admin.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "vmnodes",
                                                     "chart")
        wait_for(lambda: _vmnode_names(admin, namespace) == [], "VMNode deleted", operator)
        assert not vm_dir.exists()

        # It announced itself in the chart's ClusterKopfPeering, and wrote no webhook
        # configuration of its own (the chart's is the one).
        peering = get(admin, "clusterkopfpeerings", release.fullname)
        assert len(peering.get("status") or {}) == 1
        assert "Reconfiguring the validating webhook" not in operator.log()
    finally:
        operator.stop()


@pytest.mark.controlplane
def test_the_service_account_may_do_nothing_else(kubectl: Path, release: Release,
                                                 control_plane: LocalControlPlane) -> None:
    def can(*args: str) -> bool:
        result = subprocess.run([str(kubectl), "--kubeconfig", str(release.kubeconfig), "auth",
                                 "can-i", *args], capture_output=True, text=True, timeout=30)
        return result.stdout.strip() == "yes"

    assert can("watch", "vmnodes.reef.vers.sh", "--all-namespaces")
    assert can("patch", "lieutenants.reef.vers.sh", "--subresource=status", "-n", "default")
    assert can("get", f"secrets/{config.DEFAULT_SECRET}", "-n", release.namespace)
    assert can("patch", f"clusterkopfpeerings.kopf.dev/{release.fullname}")
    for refused in (["list", "secrets", "--all-namespaces"],
                    ["list", "secrets", "-n", release.namespace],
                    ["update", "configmaps", "-n", release.namespace],
                    ["delete", "namespaces"],
                    ["create", "pods", "-n", "default"],
                    ["create", "deployments.apps", "-n", release.namespace],
                    ["delete", "customresourcedefinitions.apiextensions.k8s.io"],
                    ["create", "clusterrolebindings.rbac.authorization.k8s.io"],
                    ["delete", "validatingwebhookconfigurations.admissionregistration.k8s.io"],
                    # The chart keeps the webhook configuration; the operator may not edit it.
                    ["patch", "validatingwebhookconfigurations.admissionregistration.k8s.io"],
                    ["create", "mutatingwebhookconfigurations.admissionregistration.k8s.io"]):
        assert not can(*refused), refused
    # And the apiserver refuses the real request.
    denied = subprocess.run([str(kubectl), "--kubeconfig", str(release.kubeconfig), "get",
                             "secrets", "--all-namespaces"], capture_output=True, text=True,
                            timeout=30)
    assert denied.returncode != 0 and "Forbidden" in denied.stderr


def _admission_review(kind: str, plural: str, old: Object | None, new: Object,
                      user: str = "someone") -> Object:
    operation = "UPDATE" if old is not None else "CREATE"
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": str(uuid.uuid4()),
        "kind": {"group": GROUP, "version": VERSION, "kind": kind},
        "resource": {"group": GROUP, "version": VERSION, "resource": plural},
        "requestKind": {"group": GROUP, "version": VERSION, "kind": kind},
        "requestResource": {"group": GROUP, "version": VERSION, "resource": plural},
        "name": new["metadata"]["name"], "namespace": "default", "operation": operation,
        "userInfo": {"username": user, "groups": ["system:authenticated"]},
        "object": new, "oldObject": old, "dryRun": False,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": f"{operation.title()}Options"}}}


@pytest.mark.controlplane
def test_the_webhook_answers_where_the_chart_points_the_apiserver(
    admin: Kube, release: Release, tmp_path: Path
) -> None:
    """The apiserver's side of the chart's webhook, done by hand (it cannot reach a Service
    here): verify the operator's certificate with the configuration's caBundle for the
    Service's name, POST the review to the configured path, read the verdict."""
    # A ReefPolicy in the namespace of the reviews, read by the operator as it starts.
    admin.custom.create_namespaced_custom_object(GROUP, VERSION, "default", "reefpolicies", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ReefPolicy",
        "metadata": {"name": "x-policy"},
        "spec": {"limits": {"allowedProfiles": [], "allowedModelProviders": ["anthropic"]}}})
    operator = ChartOperator(admin, release, tmp_path)
    operator.start()
    try:
        # The kubelet puts the pod behind the webhook Service once it is ready.
        wait_for(lambda: operator.probe("health", "/readyz") == 200, "/readyz 200", operator)
        configuration = get(admin, "validatingwebhookconfigurations", release.fullname)
        meta = {"name": "x", "namespace": "default"}
        # A Secret in the lieutenant's namespace that is not labelled for agents.
        admin.core.create_namespaced_secret("default", client.V1Secret(
            metadata=client.V1ObjectMeta(name="x-unlabelled"), string_data={"K": "v"}))
        delegate = "system:serviceaccount:default:reef-delegate-lead"
        profile_env = [{"name": "K", "valueFrom": {"secretKeyRef": {
            "namespace": "default", "name": "x-unlabelled", "key": "K"}}}]
        reviews = {
            "/lieutenant-tasks-are-kept": _admission_review(
                "Lieutenant", "lieutenants",
                {"metadata": meta, "spec": {"tasks": [{"name": "a", "message": "hello"}]},
                 "status": {"tasks": [{"name": "a", "phase": "Sent"}]}},
                {"metadata": meta, "spec": {"tasks": []},
                 "status": {"tasks": [{"name": "a", "phase": "Sent"}]}}),
            "/vmnode-vm-id-is-immutable": _admission_review(
                "VMNode", "vmnodes", {"metadata": meta, "spec": {"vmId": "vm-1"}},
                {"metadata": meta, "spec": {"vmId": "vm-2"}}),
            "/lieutenant-credentials-are-labelled": _admission_review(
                "Lieutenant", "lieutenants", {"metadata": meta, "spec": {}},
                {"metadata": meta, "spec": {"credentialsSecretRef": {"name": "x-unlabelled"}}}),
            "/bootprofile-secrets-in-operator-namespace": _admission_review(
                "BootProfile", "bootprofiles", {"metadata": {"name": "x"}, "spec": {}},
                {"metadata": {"name": "x"}, "spec": {"env": profile_env}}),
            "/lieutenant-fits-the-policy": _admission_review(
                "Lieutenant", "lieutenants", {"metadata": meta, "spec": {}},
                {"metadata": meta, "spec": {"model": {"provider": "openai", "id": "m"}}}),
            "/vmnode-fits-the-policy": _admission_review(
                "VMNode", "vmnodes", {"metadata": meta, "spec": {}},
                {"metadata": meta, "spec": {"profileRef": {"name": "x"}}}),
            "/reefpolicy-is-the-only-one": _admission_review(
                "ReefPolicy", "reefpolicies", None, {"metadata": meta, "spec": {}}),
            # A delegated identity whose lieutenant does not exist may create nothing.
            "/delegated-lieutenant-writes": _admission_review(
                "Lieutenant", "lieutenants", None,
                {"metadata": meta, "spec": {"parentRef": {"name": "lead"}}}, delegate),
            "/delegated-vmnode-writes": _admission_review(
                "VMNode", "vmnodes", None,
                {"metadata": meta, "spec": {"parentRef": {"name": "lead"}}}, delegate),
        }
        expected = {"/lieutenant-tasks-are-kept": "cannot be removed from spec.tasks",
                    "/vmnode-vm-id-is-immutable": "cannot change",
                    "/lieutenant-credentials-are-labelled": "does not carry the label",
                    "/bootprofile-secrets-in-operator-namespace":
                        "reads Secrets only from the operator's namespace",
                    "/lieutenant-fits-the-policy": "model provider 'openai' is not allowed",
                    "/vmnode-fits-the-policy": "BootProfile 'x' is not allowed",
                    "/reefpolicy-is-the-only-one": "already has ReefPolicy 'x-policy'",
                    "/delegated-lieutenant-writes": "the agent of lieutenant lead has no "
                                                    "delegation",
                    "/delegated-vmnode-writes": "the agent of lieutenant lead has no "
                                                "delegation"}
        for webhook in configuration["webhooks"]:
            service = webhook["clientConfig"]["service"]
            target = get(admin, "services", service["name"], service["namespace"])
            assert [p["targetPort"] for p in target["spec"]["ports"]
                    if p["port"] == service["port"]] == ["webhook"]
            context = ssl.create_default_context(
                cadata=base64.b64decode(webhook["clientConfig"]["caBundle"]).decode())
            with httpx.Client(verify=context, timeout=10) as https:
                answer = https.post(
                    f"https://127.0.0.1:{operator.webhook_port}{service['path']}?timeout=2s",
                    json=reviews[service["path"]],
                    extensions={"sni_hostname": f"{service['name']}.{service['namespace']}.svc"})
            assert answer.status_code == 200, answer.text
            response = answer.json()["response"]
            assert response["uid"] == reviews[service["path"]]["request"]["uid"]
            assert response["allowed"] is False
            assert expected[service["path"]] in response["status"]["message"]
    finally:
        operator.stop()
        admin.core.delete_namespaced_secret("x-unlabelled", "default")
        admin.custom.delete_namespaced_custom_object(GROUP, VERSION, "default",
                                                     "reefpolicies", "x-policy")


@pytest.mark.controlplane
def test_a_second_replica_stands_by_then_takes_over(admin: Kube, release: Release,
                                                    namespace: str, probe_profile: str,
                                                    tmp_path: Path) -> None:
    first = ChartOperator(admin, release, tmp_path / "first")
    second = ChartOperator(admin, release, tmp_path / "second")
    first.start()
    try:
        second.start()
        # Both announce themselves; the one started first has the higher priority.
        peers = wait_for(lambda: (lambda status: status if len(status) == 2 else None)(
            get(admin, "clusterkopfpeerings", release.fullname).get("status") or {}),
            "two peers", second)
        priorities = sorted(peer["priority"] for peer in peers.values())
        assert priorities[0] < priorities[1] < 0
        admin.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "vmnodes",
                                                     _vmnode("one", probe_profile))
        wait_for(_ready("vmnodes", admin, "one", namespace), "VMNode Ready", first)
        # The second one stands by: it has not started working, nor handled anything.
        assert "Resuming operations" not in second.log()
        assert "Handler" not in second.log()

        first.stop()     # a graceful stop leaves the peering at once
        wait_for(lambda: "Resuming operations" in second.log(), "the standby to take over",
                 second)
        admin.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "vmnodes",
                                                     _vmnode("two", probe_profile))
        wait_for(_ready("vmnodes", admin, "two", namespace), "VMNode Ready", second)
        for name in ("one", "two"):
            admin.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "vmnodes",
                                                         name)
        wait_for(lambda: _vmnode_names(admin, namespace) == [], "VMNodes deleted", second)
    finally:
        first.stop()
        second.stop()
