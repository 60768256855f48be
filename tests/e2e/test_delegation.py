"""A lieutenant that leads: its agent creates its own workers with the identity the operator
gives it (spec.delegation), within what admission allows that identity.

Real apiserver with the operator's admission webhook, the operator as its own process,
Local VMs, the real pi and the scripted model. The agent acts with the identity the
operator wrote on its VM (its kubeconfig): through the pi package's `vers_lt_create`, which
the operator installed there, and through its bash tool with `kubectl`.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from reef_devkit.controlplane import LocalControlPlane
from reef_devkit.controlplane.processes import free_port
from reef_devkit.operator_process import OperatorProcess, simulator_env
from reef_devkit.scripted_model.harness import ScriptedModel
from reef_devkit.versim.harness import VersSimulator
from reef_operator.constants import API_VERSION, GROUP, LABEL_DELEGATION, VERSION
from tests.conftest import REPO_ROOT, Kube
from tests.e2e.conftest import apply_lieutenant, wait_for
from tests.e2e.plugin import ok, reef

pytestmark = pytest.mark.controlplane
PI_PACKAGE = REPO_ROOT / "extensions" / "pi-reef"



def _kubectl(body: dict[str, Any], verb: str = "create") -> str:
    """The bash command the agent runs: kubectl with the kubeconfig in its environment."""
    return f"echo '{json.dumps(body)}' | kubectl {verb} -f - 2>&1; echo exit=$?"


def _node(name: str, parent: str, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": API_VERSION, "kind": "VMNode", "metadata": meta,
            "spec": {"category": "Swarm", "profileRef": {"name": "local"},
                     "parentRef": {"name": parent}}}


# The second child comes from the pi package's tool, as a leading agent would make it.
CREATE_SUB = {"name": "vers_lt_create", "arguments": {
    "name": "sub", "role": "Write the tests", "profile": "local",
    "model": "scripted/scripted-1", "providers": "scripted-models"}}
STEPS = [
    _kubectl(_node("w1", "lead")),                       # 1st child: admitted
    _kubectl(_node("w2", "lead")),                       # 3rd: over maxChildren
    _kubectl(_node("stray", "someone-else")),            # another parent
    _kubectl(_node("far", "lead", namespace="default")),  # another namespace
    "kubectl delete vmnode theirs 2>&1; echo exit=$?",   # a sibling's object
    "env | grep -E '^(REEF_|GIT_EDITOR|KUBECONFIG)' | sort",
]
SCRIPT = yaml.safe_dump({"tasks": [{
    "match": "Lead the team",
    "steps": [{"tool_calls": [{"name": "bash", "arguments": {"command": STEPS[0]}}]},
              {"tool_calls": [CREATE_SUB]},
              *({"tool_calls": [{"name": "bash", "arguments": {"command": command}}]}
                for command in STEPS[1:]),
              {"text": "Two workers started; the rest was refused."}]}]})

@pytest.fixture(autouse=True)
def label_removed_after(admin: Kube, namespace: str) -> Iterator[None]:
    """The namespace leaves delegation before it is deleted: the delegates' webhook (which
    stays when the operator stops) then no longer holds up the deletion of its objects."""
    yield
    admin.core.patch_namespace(namespace, {"metadata": {"labels": {LABEL_DELEGATION: None}}})


@pytest.fixture(scope="module")
def operator(control_plane: LocalControlPlane, local_root: Path, versim: VersSimulator,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """The operator serving its webhook, holding a platform API key (which no VM may see),
    putting the repository's pi package on delegating lieutenants' VMs."""
    process = OperatorProcess(
        control_plane.operator_kubeconfig,
        tmp_path_factory.mktemp("operator") / "operator.log",
        {**simulator_env(versim), "REEF_LOCAL_ROOT": str(local_root),
         "REEF_PI_PACKAGE": str(PI_PACKAGE),
         "REEF_WEBHOOK_PORT": str(free_port()), "REEF_WEBHOOK_ADDR": "127.0.0.1"})
    process.start()
    yield process
    process.stop()


def _enable(admin: Kube, namespace: str) -> None:
    admin.core.patch_namespace(namespace, {"metadata": {"labels": {LABEL_DELEGATION: "enabled"}}})


def _webhook_ready(admin: Kube, operator: OperatorProcess) -> None:
    admission = client.AdmissionregistrationV1Api(admin.api)

    def configured() -> bool:
        found = json.dumps([admin.api.sanitize_for_serialization(c)
                            for c in admission.list_validating_webhook_configuration().items])
        return "delegated-vmnode-writes" in found and LABEL_DELEGATION in found

    wait_for(configured, 60, "the delegates' webhook, selecting enabled namespaces", operator)


def _status(admin: Kube, namespace: str, name: str) -> dict[str, Any]:
    return admin.get("lieutenants", name, namespace).get("status") or {}


def _task_phase(admin: Kube, namespace: str, name: str) -> str | None:
    tasks = _status(admin, namespace, name).get("tasks") or []
    return next((t["phase"] for t in tasks if t["name"] == "lead"), None)


def _vm_dir(local_root: Path, vm_id: str) -> Path:
    [found] = [p for p in local_root.rglob(vm_id) if p.is_dir()]
    return found


def _environments(vm_id: str) -> list[str]:
    """The environment of every process of a Local VM (its marker is in each)."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if f"REEF_LOCAL_VM={vm_id}" in environ.split("\0"):
            out.append(environ)
    return out


def _as_token(admin: Kube, token: str) -> client.CustomObjectsApi:
    configuration = client.Configuration()
    configuration.host = admin.api.configuration.host
    configuration.ssl_ca_cert = admin.api.configuration.ssl_ca_cert
    configuration.api_key = {"authorization": f"Bearer {token}"}
    return client.CustomObjectsApi(client.ApiClient(configuration))


def _names(admin: Kube, namespace: str, plural: str) -> set[str]:
    found = cast(dict[str, Any], admin.custom.list_namespaced_custom_object(
        GROUP, VERSION, namespace, plural))
    return {str(item["metadata"]["name"]) for item in found["items"]}


def _answer_status(api: client.CustomObjectsApi, namespace: str) -> int:
    try:
        api.list_namespaced_custom_object(GROUP, VERSION, namespace, "vmnodes")
    except ApiException as error:
        return int(error.status)
    return 200


def test_a_lieutenant_leads_its_own_workers_within_its_delegation(
        admin: Kube, scripted: str, operator: OperatorProcess, model: ScriptedModel,
        local_root: Path, versim: VersSimulator) -> None:
    namespace = scripted
    platform_key = versim.api_key.reveal()
    _enable(admin, namespace)
    _webhook_ready(admin, operator)
    # Someone else's node in the namespace (Destroyed: it never needs a VM).
    admin.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "vmnodes", {
        **_node("theirs", "other"), "spec": {**_node("theirs", "other")["spec"],
                                             "state": "Destroyed"}})
    apply_lieutenant(admin, namespace, "lead", [{"name": "lead", "message": "Lead the team"}],
                     delegation={"maxChildren": 2, "profiles": ["local"]})
    wait_for(lambda: _task_phase(admin, namespace, "lead") == "Succeeded", 180,
             "the lead's task", operator)

    # What the agent saw: each refusal in its tool results, sent with its next request.
    seen = json.dumps(model.requests())
    assert "lieutenant lead already has 2 children alive, its spec.delegation.maxChildren " \
           "is 2; destroy or delete one first" in seen
    assert "VMNode stray: the agent of lieutenant lead may only touch objects whose " \
           "spec.parentRef.name is lead (its own children); this one's is someone-else" in seen
    assert (f'User \\"system:serviceaccount:{namespace}:reef-delegate-lead\\" cannot create '
            'resource \\"vmnodes\\" in API group \\"reef.vers.sh\\" in the namespace '
            '\\"default\\"') in seen
    assert "VMNode theirs: the agent of lieutenant lead may only touch objects whose " \
           "spec.parentRef.name is lead (its own children); this one's is other" in seen
    vm_id = _status(admin, namespace, "lead")["vmId"]
    assert f"REEF_VM_ID={vm_id}" in seen and "REEF_LIEUTENANT=lead" in seen
    # The pi package was on the VM before pi started: its vers_lt_create made the child.
    assert 'Lieutenant \\"sub\\" created in namespace' in seen
    [installed] = [p for p in _vm_dir(local_root, vm_id).rglob("pi-reef")
                   if p.parent.name == "extensions"]
    assert (installed / "index.ts").is_file() and (installed / "node_modules/yaml").is_dir()
    assert not (installed / "node_modules/typescript").exists()

    nodes = _names(admin, namespace, "vmnodes")
    assert {"w1", "theirs", "lead"} <= nodes and not {"w2", "stray"} & nodes
    assert "far" not in _names(admin, "default", "vmnodes")

    # The children sit under the lead in the tree; the child lieutenant is owned by it.
    def tree() -> list[str]:
        lines = ok(reef(admin, "-n", namespace, "tree")).splitlines()
        return lines if any(line.lstrip("│├└─ ").startswith("sub ") for line in lines) \
            else []
    lines = wait_for(tree, 120, "the child lieutenant's VMNode in the tree", operator)
    top = next(i for i, line in enumerate(lines) if line.startswith("lead "))
    below = lines[top + 1:]
    assert any(line.startswith(("├── w1 ", "└── w1 ")) for line in below), lines
    assert any(line.startswith(("├── sub ", "└── sub ")) for line in below), lines
    wait_for(lambda: any(o.get("name") == "lead" and o.get("kind") == "Lieutenant"
                         for o in admin.get("lieutenants", "sub", namespace)["metadata"].get(
                             "ownerReferences") or []),
             60, "the child lieutenant owned by its parent", operator)

    # The token: on the VM in a 0600 file, nowhere else.
    [token_file] = [p for p in _vm_dir(local_root, vm_id).rglob("token")
                    if p.parent.name == "kube"]
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = token_file.read_text().strip()
    assert len(token) > 100 and _answer_status(_as_token(admin, token), namespace) == 200
    events = admin.core.list_namespaced_event(namespace)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    for where, text in (("status", json.dumps(_status(admin, namespace, "lead"))),
                        ("Events", json.dumps(admin.api.sanitize_for_serialization(events))),
                        ("the operator's log", operator.log_file.read_text()),
                        ("ps", ps)):
        assert token not in text, f"the delegated token appears in {where}"
    assert _status(admin, namespace, "lead")["delegation"] == "reef-delegate-lead"

    # What the agent knows about itself; no platform key anywhere on the VM.
    environments = _environments(vm_id)
    pi_env = next(e for e in environments if "REEF_LIEUTENANT=lead" in e).split("\0")
    assert {"REEF_NAMESPACE=" + namespace, "REEF_PARENT=", "GIT_EDITOR=true",
            f"REEF_VM_ID={vm_id}"} <= set(pi_env)
    sub_vm = wait_for(lambda: _status(admin, namespace, "sub").get("vmId"), 120,
                      "the child lieutenant's VM", operator)
    wait_for(lambda: any("REEF_PARENT=lead" in e.split("\0") for e in _environments(sub_vm)),
             120, "the child lieutenant's agent, knowing its parent", operator)
    for vm in (vm_id, sub_vm):
        assert not any(platform_key in e for e in _environments(vm))
        key = platform_key.encode()
        assert not [p for p in _vm_dir(local_root, vm).rglob("*")
                    if p.is_file() and not p.is_symlink() and key in p.read_bytes()]

    # Destroyed: the token stops working at once; deleted: its children go with it.
    admin.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "lieutenants", "lead",
                                                {"spec": {"state": "Destroyed"}})
    api = _as_token(admin, token)
    wait_for(lambda: _answer_status(api, namespace) == 401, 60,
             "the delegated token refused after the lieutenant was destroyed", operator)
    assert "delegation" not in _status(admin, namespace, "lead")
    admin.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "lieutenants",
                                                 "lead")

    wait_for(lambda: _names(admin, namespace, "vmnodes") | _names(
        admin, namespace, "lieutenants") == {"theirs"}, 120, "the lead's children gone with it",
             operator)


def test_delegation_outside_an_enabled_namespace_is_stalled_with_no_identity(
        admin: Kube, scripted: str, operator: OperatorProcess) -> None:
    namespace = scripted
    apply_lieutenant(admin, namespace, "lone", [], delegation={"maxChildren": 1})

    def stalled() -> dict[str, Any]:
        conditions = _status(admin, namespace, "lone").get("conditions") or []
        return next((c for c in conditions if c["type"] == "Stalled"
                     and c["status"] == "True"), {})
    condition = wait_for(stalled, 120, "the lieutenant Stalled", operator)
    assert condition["reason"] == "DelegationNotEnabled"
    assert f"kubectl label namespace {namespace} reef.vers.sh/delegation=enabled" in \
        condition["message"]
    accounts = admin.core.list_namespaced_service_account(namespace).items
    assert not [a for a in accounts if "reef-delegate-" in str(a.metadata)]
    # The admin consents; on its next look (any change to it, or within 10 minutes) the
    # same lieutenant gets its identity and runs.
    _enable(admin, namespace)
    admin.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "lieutenants", "lone",
                                                {"metadata": {"annotations": {"poke": "1"}}})
    wait_for(lambda: _status(admin, namespace, "lone").get("phase") == "Idle", 120,
             "the lieutenant running once its namespace enables delegation", operator)
    admin.core.read_namespaced_service_account("reef-delegate-lone", namespace)
