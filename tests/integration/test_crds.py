"""The CRDs as a user meets them through kubectl on a real apiserver."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from reef_operator.constants import GROUP, VERSION
from tests.conftest import REPO_ROOT, Kube, wait_for

pytestmark = pytest.mark.controlplane

EXAMPLES = REPO_ROOT / "manifests" / "examples"


def _lieutenant(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Lieutenant",
        "metadata": {"name": "api"},
        "spec": {"role": "Build the API", **spec},
    }


def _vmnode(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VMNode",
            "metadata": {"name": "worker"}, "spec": spec}


def _bootprofile(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "BootProfile",
            "metadata": {"name": "bad-profile"}, "spec": spec}


def _apply(kube: Kube, namespace: str, document: dict[str, Any] | str,
           check: bool = True, validate: bool = True) -> Any:
    text = document if isinstance(document, str) else yaml.safe_dump(document)
    return kube.kubectl("apply", f"--validate={str(validate).lower()}", "-n", namespace,
                        "-f", "-", stdin=text, check=check)


def test_examples_are_accepted_and_read_back_with_defaults(admin: Kube, namespace: str) -> None:
    for example in sorted(EXAMPLES.glob("*.yaml")):
        _apply(admin, namespace, example.read_text())
    lieutenant = admin.get("lieutenants", "api", namespace)
    spec = lieutenant["spec"]
    assert spec["role"] == "Build and maintain the Node.js API server"
    assert [t["name"] for t in spec["tasks"]] == ["scaffold", "database", "logging"]
    # Defaults filled in by the apiserver from the schema.
    assert [t["mode"] for t in spec["tasks"]] == ["prompt", "prompt", "followUp"]
    assert spec["state"] == "Running"
    assert spec["postTaskDisposition"] == "StayIdle"

    vmnode = admin.get("vmnodes", "api-worker-1", namespace)
    assert vmnode["spec"]["parentRef"] == {"name": "api"}
    assert vmnode["spec"]["state"] == "Running"
    assert vmnode["spec"]["checkpoints"] == {"intervalSeconds": 3600, "retain": 24}

    profile = admin.get("bootprofiles", "example-infra")
    try:
        assert profile["spec"]["modules"] == ["store", "cron", "docs"]
        assert profile["spec"]["agent"] == {"piVersion": "0.73.1", "install": True}
        assert "namespace" not in profile["metadata"]  # cluster-scoped
    finally:
        admin.custom.delete_cluster_custom_object(GROUP, VERSION, "bootprofiles", "example-infra")


INVALID: list[tuple[str, dict[str, Any], list[str]]] = [
    ("wrong state enum", _lieutenant(state="Sleeping"),
     ['spec.state: Unsupported value: "Sleeping"', '"Running", "Paused", "Destroyed"']),
    ("missing role", {**_lieutenant(), "spec": {"tasks": []}},
     ["spec.role: Required value"]),
    ("empty role", _lieutenant(role=""),
     ["spec.role: Invalid value", "at least 1 chars long"]),
    ("bad task mode", _lieutenant(tasks=[{"name": "a", "message": "hi", "mode": "later"}]),
     ['spec.tasks.mode: Unsupported value: "later"', '"prompt", "steer", "followUp"']),
    ("duplicate task name", _lieutenant(tasks=[{"name": "a", "message": "one"},
                                               {"name": "a", "message": "two"}]),
     ["spec.tasks[1]: Duplicate value"]),
    ("empty task message", _lieutenant(tasks=[{"name": "a", "message": ""}]),
     ["spec.tasks.message in body should be at least 1 chars long"]),
    ("task name not a DNS label", _lieutenant(tasks=[{"name": "Step One", "message": "x"}]),
     ['spec.tasks.name: Invalid value: "Step One"', "should match"]),
    ("task without message", _lieutenant(tasks=[{"name": "a"}]),
     ["spec.tasks.message: Required value"]),
    ("historyLimit too large", _lieutenant(historyLimit=500),
     ["spec.historyLimit", "less than or equal to 100"]),
    ("model without id", _lieutenant(model={"provider": "anthropic"}),
     ["spec.model.id: Required value"]),
    ("bad thinking level", _lieutenant(model={"provider": "anthropic", "id": "m",
                                              "thinkingLevel": "max"}),
     ['spec.model.thinkingLevel: Unsupported value: "max"']),
    ("unknown field", _lieutenant(rol="typo"),
     ['unknown field "rol" in sh.vers.reef.v1alpha1.Lieutenant.spec']),
    ("unknown task field", _lieutenant(tasks=[{"name": "a", "message": "x", "prio": 1}]),
     ['unknown field "prio" in sh.vers.reef.v1alpha1.Lieutenant.spec.tasks']),
    ("name too long", {**_lieutenant(), "metadata": {"name": "a" * 64}},
     ["metadata.name", "should be at most 63 chars long"]),
    ("name not a DNS label", {**_lieutenant(), "metadata": {"name": "api.v2"}},
     ["metadata.name", "should match"]),
    ("negative vcpu", _vmnode(resources={"vcpu": -1}),
     ["spec.resources.vcpu", "greater than or equal to 1"]),
    ("negative memory", _vmnode(resources={"memoryMiB": -4096}),
     ["spec.resources.memoryMiB", "greater than or equal to 128"]),
    ("source with two keys", _vmnode(source={"commitId": "abc", "tag": "golden"}),
     ["spec.source in body should have at most 1 properties"]),
    ("empty source", _vmnode(source={}),
     ["spec.source in body should have at least 1 properties"]),
    ("bad ref", _vmnode(source={"ref": "no-tag-here"}),
     ["spec.source.ref", "should match"]),
    ("wrong category", _vmnode(category="Worker"),
     ['spec.category: Unsupported value: "Worker"', '"Lieutenant", "Swarm", "Agent", "Infra"']),
    ("wrong deletion policy", _vmnode(deletionPolicy="Keep"),
     ['spec.deletionPolicy: Unsupported value: "Keep"', '"Delete", "Orphan"']),
    ("checkpoint retain zero", _vmnode(checkpoints={"intervalSeconds": 3600, "retain": 0}),
     ["spec.checkpoints.retain", "greater than or equal to 1"]),
    ("heartbeat interval as text", _vmnode(heartbeat={"intervalSeconds": "60s"}),
     ["heartbeat.intervalSeconds", "integer"]),
    ("unknown provider", _bootprofile(provider="AWS"),
     ['spec.provider: Unsupported value: "AWS"', '"Vers", "Local"']),
    ("bad env name", _bootprofile(env=[{"name": "1BAD", "value": "x"}]),
     ['spec.env.name: Invalid value: "1BAD"', "should match"]),
    ("pi version not semver", _bootprofile(agent={"piVersion": "latest"}),
     ["spec.agent.piVersion", "should match"]),
    ("env with value and valueFrom", _bootprofile(env=[{
        "name": "TOKEN", "value": "x",
        "valueFrom": {"secretKeyRef": {"namespace": "a", "name": "b", "key": "c"}}}]),
     ["spec.env in body should have at most 2 properties"]),
]


@pytest.mark.parametrize(("document", "messages"), [(d, m) for _, d, m in INVALID],
                         ids=[case for case, _, _ in INVALID])
def test_invalid_manifest_is_rejected_with_an_actionable_message(
    admin: Kube, namespace: str, document: dict[str, Any], messages: list[str]
) -> None:
    # The apiserver's own verdict (what GitOps tools and API clients get), except for
    # unknown fields: a 1.20 apiserver prunes those, kubectl's schema check rejects them.
    unknown_field = any("unknown field" in m for m in messages)
    result = _apply(admin, namespace, document, check=False, validate=unknown_field)
    assert result.returncode != 0, f"accepted: {result.stdout}"
    for message in messages:
        assert message in result.stderr, result.stderr
    kind = document["kind"].lower() + "s"
    listed = admin.kubectl("get", kind, "-n", namespace, "-o", "name").stdout
    assert document["metadata"]["name"] not in listed.split("/")


def test_get_lieutenants_prints_the_printer_columns(admin: Kube, namespace: str) -> None:
    _apply(admin, namespace, _lieutenant(model={"provider": "anthropic", "id": "claude-x"}))
    admin.custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "lieutenants", "api",
        {"status": {"phase": "Working", "currentTask": {"name": "scaffold"}, "taskCount": 2,
                    "vmId": "vm-1234", "conditions": [
                        {"type": "Working", "status": "True", "reason": "Working",
                         "lastTransitionTime": "2026-12-01T00:00:00Z"},
                        {"type": "Ready", "status": "True", "reason": "SessionReady",
                         "lastTransitionTime": "2026-12-01T00:00:00Z"}]}},
    )
    table = admin.kubectl("get", "lieutenants", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "PHASE", "REASON", "TASK", "TASKS", "VM", "AGE"]
    assert table[1].split()[:6] == ["api", "Working", "SessionReady", "scaffold", "2",
                                    "vm-1234"]

    wide = admin.kubectl("get", "lt", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "PHASE", "REASON", "TASK", "TASKS", "VM", "AGE", "ROLE",
                               "MODEL"]
    assert "Build the API" in wide[1] and "claude-x" in wide[1]


def test_category_and_short_names(admin: Kube, namespace: str) -> None:
    _apply(admin, namespace, _lieutenant())
    _apply(admin, namespace, _vmnode(category="Swarm"))
    names = admin.kubectl("get", "reef", "-n", namespace, "-o", "name").stdout.split()
    namespaced = [n for n in names if not n.startswith("bootprofile.")]
    assert sorted(namespaced) == [f"lieutenant.{GROUP}/api", f"vmnode.{GROUP}/worker"]
    assert f"bootprofile.{GROUP}/full" in names  # the category spans all three kinds
    vmnodes = admin.kubectl("get", "vmn", "-n", namespace).stdout.splitlines()
    assert vmnodes[0].split() == ["NAME", "CATEGORY", "STATE", "READY", "REASON", "VM", "PARENT",
                                  "AGE"]
    assert vmnodes[1].split()[:2] == ["worker", "Swarm"]
    admin.kubectl("get", "bp")


def test_kubectl_explain_teaches_the_fields(admin: Kube) -> None:
    def explain(field: str) -> str:
        # The apiserver publishes a new CRD's schema to OpenAPI a while after establishing it.
        return str(wait_for(lambda: admin.kubectl("explain", field, check=False).stdout, 60,
                            f"the published schema of {field}"))
    tasks = explain("lieutenant.spec.tasks")
    assert "delivered exactly once each, in order" in tasks
    assert "mode" in tasks and "steer interrupts the current work" in tasks
    assert "exactly one of commitId, tag or ref" in explain("vmnode.spec.source")
    assert "Local" in explain("bootprofile.spec.provider")
    assert "the text the agent streamed during the task" in explain("taskrecord.spec.answer")


def test_status_is_a_subresource(admin: Kube, namespace: str) -> None:
    _apply(admin, namespace, _lieutenant())
    # A spec write cannot change status ...
    admin.custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "lieutenants", "api", {"status": {"phase": "Idle"}})
    got = admin.get("lieutenants", "api", namespace)
    assert "status" not in got
    # ... and a status write does not bump the generation.
    before = got["metadata"]["generation"]
    admin.custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "lieutenants", "api", {"status": {"phase": "Idle"}})
    got = admin.get("lieutenants", "api", namespace)
    assert got["status"]["phase"] == "Idle"
    assert got["metadata"]["generation"] == before
