"""The plain manifests in manifests/, generated from the Helm chart, and helm for tests.

    python -m reef_devkit.helm           # rewrite manifests/ from the chart
    python -m reef_devkit.helm --check   # fail if manifests/ differs from it

The chart (helm/reef-operator) is where the operator's Deployment, ConfigMap, Services
and webhook objects are written; manifests/ holds the same for `kubectl apply -k`:

- `manifests/kustomization.yaml`: the namespace reef-system, the CRDs, the operator's
  RBAC and BootProfiles but `local` (rendered from Python by `reef_operator.render`), and
  `manifests/operator/` (from `helm template` with the release name reef-operator in
  reef-system and the webhook off: a plain manifest cannot generate a certificate);
- `manifests/webhook/`: the admission webhook with a cert-manager certificate (the
  chart's `webhook.certificate.source=certManager`) and the patch that turns it on in the
  operator's Deployment. (Not an overlay of manifests/: kustomize refuses a base that
  contains its overlay.)

Needs the helm binary (`scripts/setup` installs it); the chart tests run the check.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from reef_operator.api import KINDS
from reef_operator.constants import OPERATOR_NAMESPACE
from reef_operator.profiles.defaults import DEFAULT_PROFILES
from reef_operator.render import files as render

CHART = "helm/reef-operator"
RELEASE = "reef-operator"
PLAIN_VALUES: dict[str, Any] = {"webhook": {"enabled": False}}
WEBHOOK_VALUES: dict[str, Any] = {"webhook": {"enabled": True,
                                              "certificate": {"source": "certManager"}}}
HEADER = ("# Generated from helm/reef-operator by `python -m reef_devkit.helm`; "
          "do not edit by hand.\n")
# Chart objects that manifests/ takes from Python-rendered files instead of the chart.
FROM_PYTHON = frozenset({"CustomResourceDefinition", "ServiceAccount", "ClusterRole",
                         "ClusterRoleBinding", "BootProfile", "ClusterKopfPeering"})
OPERATOR_FILES = {"ConfigMap": "configmap.yaml", "Deployment": "deployment.yaml",
                  "Service": "metrics-service.yaml"}
HELM_LABELS = ("helm.sh/chart", "app.kubernetes.io/managed-by")
# Profiles manifests/ ships as files but does not apply (the chart's bootProfiles.local: off):
# a Local agent runs in the operator's pod with the operator's identity.
ON_REQUEST_PROFILES = frozenset({"local"})
Object = dict[str, Any]


class HelmError(RuntimeError):
    pass


def helm_binary() -> str:
    helm = shutil.which("helm")
    if helm is None:
        raise HelmError("helm is not installed (scripts/setup installs it)")
    return helm


def helm(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([helm_binary(), *args], capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise HelmError(f"helm {' '.join(args)} failed ({result.returncode}): "
                        f"{result.stderr.strip()}")
    return result


def template_run(root: Path, values: Mapping[str, Any] | None = None, *,
                 release: str = RELEASE, namespace: str = OPERATOR_NAMESPACE,
                 include_crds: bool = False) -> subprocess.CompletedProcess[str]:
    """`helm template` of the chart with these values; the caller judges the outcome."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as values_file:
        # JSON is YAML: one file carries every value, typed, with no --set escaping.
        json.dump(dict(values or {}), values_file)
        values_file.flush()
        args = ["template", release, str(root / CHART), "--namespace", namespace,
                "--values", values_file.name]
        if include_crds:
            args.append("--include-crds")
        return helm(*args, check=False)


def template(root: Path, values: Mapping[str, Any] | None = None, *, release: str = RELEASE,
             namespace: str = OPERATOR_NAMESPACE, include_crds: bool = False) -> list[Object]:
    """The chart's objects for these values, as `helm template` renders them."""
    result = template_run(root, values, release=release, namespace=namespace,
                          include_crds=include_crds)
    if result.returncode != 0:
        raise HelmError(f"helm template failed: {result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return str(obj.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name"))


def without_helm_labels(obj: Object) -> Object:
    """The object as a plain manifest: no labels saying Helm manages it."""
    obj = copy.deepcopy(obj)
    labels = obj.get("metadata", {}).get("labels") or {}
    for label in HELM_LABELS:
        labels.pop(label, None)
    return obj


def comparable(obj: Object) -> Object:
    """For comparing chart and kustomize output: top-level labels (Helm's, and the
    Python-rendered files carry none) and Helm's own annotations left out."""
    obj = copy.deepcopy(obj)
    meta = obj.setdefault("metadata", {})
    meta.pop("labels", None)
    annotations = {k: v for k, v in (meta.pop("annotations", None) or {}).items()
                   if not k.startswith("helm.sh/")}
    if annotations:
        meta["annotations"] = annotations
    return obj


def _dump(objects: list[Object]) -> str:
    return HEADER + "---\n".join(yaml.safe_dump(o, sort_keys=False, width=100)
                                 for o in objects)


def _list_entries(container: Mapping[str, Any], field: str, merge_key: str,
                  base: Mapping[str, Any]) -> list[Any]:
    known = {entry.get(merge_key) for entry in base.get(field) or []}
    return [e for e in container.get(field) or [] if e.get(merge_key) not in known]


def _deployment_patch(plain: Object, webhook: Object) -> Object:
    """A strategic-merge patch that turns the plain Deployment into the webhook one: the
    env entries, ports, mounts and volumes that only the webhook rendering has."""
    plain_pod, webhook_pod = plain["spec"]["template"]["spec"], webhook["spec"]["template"]["spec"]
    base = {c["name"]: c for c in plain_pod["containers"]}
    containers = []
    for container in webhook_pod["containers"]:
        before = base[container["name"]]
        if container.get("args") != before.get("args"):
            raise HelmError("the webhook changes the operator's args: extend the patch")
        containers.append({"name": container["name"],
                           "env": _list_entries(container, "env", "name", before),
                           "ports": _list_entries(container, "ports", "containerPort", before),
                           "volumeMounts": _list_entries(container, "volumeMounts",
                                                         "mountPath", before)})
    return {
        "apiVersion": webhook["apiVersion"], "kind": webhook["kind"],
        "metadata": {"name": webhook["metadata"]["name"],
                     "namespace": webhook["metadata"]["namespace"]},
        "spec": {"template": {"spec": {
            "containers": containers,
            "volumes": _list_entries(webhook_pod, "volumes", "name", plain_pod),
        }}},
    }


def plain_manifests(root: Path) -> dict[str, str]:
    """Every generated file under manifests/ (relative path → text)."""
    plain = template(root, PLAIN_VALUES)
    with_webhook = template(root, WEBHOOK_VALUES)
    files: dict[str, str] = {}

    namespace = {"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": OPERATOR_NAMESPACE}}
    files["manifests/namespace.yaml"] = _dump([namespace])
    operator: dict[str, list[Object]] = {}
    for obj in plain:
        if obj["kind"] in FROM_PYTHON:
            continue
        if obj["kind"] not in OPERATOR_FILES:
            raise HelmError(f"the chart renders a {obj['kind']} that manifests/ does not "
                            "place: extend reef_devkit.helm")
        operator.setdefault(OPERATOR_FILES[obj["kind"]], []).append(without_helm_labels(obj))
    for name, objects in sorted(operator.items()):
        files[f"manifests/operator/{name}"] = _dump(objects)
    crd_files = [f"crds/{kind.crd_name}.yaml" for kind in KINDS] + ["crds/kopf-peering.yaml"]
    files["manifests/kustomization.yaml"] = HEADER + (
        "# Apply the CRDs first, so the kinds exist before objects of them arrive:\n"
        "#   kubectl apply -f manifests/crds/ && kubectl apply -k manifests/\n"
        "# The admission webhook needs a certificate: see manifests/webhook/.\n"
    ) + yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["namespace.yaml", *crd_files, "rbac/operator.yaml",
                      *(f"operator/{name}" for name in sorted(operator)),
                      *(f"profiles/{name}.yaml" for name in DEFAULT_PROFILES
                        if name not in ON_REQUEST_PROFILES)],
    }, sort_keys=False)

    plain_by_key = {key(o): o for o in plain}
    added = [without_helm_labels(o) for o in with_webhook if key(o) not in plain_by_key]
    deployment = next(o for o in with_webhook if o["kind"] == "Deployment")
    certificates = [o for o in added if o["apiVersion"].startswith("cert-manager.io/")]
    webhook = [o for o in added if not o["apiVersion"].startswith("cert-manager.io/")]
    files["manifests/webhook/certificate.yaml"] = _dump(certificates)
    files["manifests/webhook/webhook.yaml"] = _dump(webhook)
    files["manifests/webhook/deployment-patch.yaml"] = _dump(
        [_deployment_patch(plain_by_key[key(deployment)], deployment)])
    files["manifests/webhook/kustomization.yaml"] = HEADER + (
        "# The admission webhook for the plain manifests, with a certificate issued by\n"
        "# cert-manager (which must be installed) and injected into the webhook configuration.\n"
        "# The operator must also be told to serve it: deployment-patch.yaml. Either\n"
        "#   kubectl apply -k manifests/webhook/\n"
        "#   kubectl -n reef-system patch deployment reef-operator \\\n"
        "#     --patch \"$(cat manifests/webhook/deployment-patch.yaml)\"\n"
        "# or, in a kustomization of your own (outside manifests/) with a copy of the patch:\n"
        "#   bases: [<path>/manifests, <path>/manifests/webhook]\n"
        "#   patchesStrategicMerge: [deployment-patch.yaml]\n"
    ) + yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["certificate.yaml", "webhook.yaml"],
    }, sort_keys=False)
    return files


def stale_files(root: Path) -> list[str]:
    return render.stale_files(root, plain_manifests(root))


def main(argv: list[str] | None = None) -> int:
    return render.write_or_check(plain_manifests, argv,
                                 __doc__.splitlines()[0] if __doc__ else None,
                                 "python -m reef_devkit.helm")


if __name__ == "__main__":
    sys.exit(main())
