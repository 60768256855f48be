"""What pi needs for a lieutenant's session (lieutenants/inputs.py), read from the spec
and what it points at; and the lieutenant's VMNode as the spec shapes it
(lieutenants/node.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from reef_operator.constants import LABEL_AGENT_CREDENTIALS, LABEL_LIEUTENANT
from reef_operator.lieutenants import inputs, node
from reef_operator.secret import Secret


@dataclass
class _Defaults:
    default_model_provider: str = "anthropic"
    default_model_id: str = "claude-default"


class _Reader:
    """Secrets labelled for agents unless listed in `unlabelled`; counts value reads."""

    def __init__(self, secrets: dict[str, dict[str, Secret]],
                 configmaps: dict[str, dict[str, str]], unlabelled: tuple[str, ...] = ()) -> None:
        self.secrets, self.configmaps, self.unlabelled = secrets, configmaps, unlabelled
        self.values_read: list[str] = []

    async def read_secret_labels(self, namespace: str, name: str) -> dict[str, str] | None:
        key = f"{namespace}/{name}"
        if key not in self.secrets:
            return None
        return {"team": "a"} if key in self.unlabelled else {LABEL_AGENT_CREDENTIALS: "true"}

    async def read_secret(self, namespace: str, name: str) -> dict[str, Secret] | None:
        self.values_read.append(f"{namespace}/{name}")
        return self.secrets.get(f"{namespace}/{name}")

    async def read_configmap(self, namespace: str, name: str) -> dict[str, str] | None:
        return self.configmaps.get(f"{namespace}/{name}")


SPEC: dict[str, Any] = {
    "role": "builds the API", "instructions": "Use Go.",
    "model": {"provider": "openai", "id": "gpt-x", "thinkingLevel": "high"},
    "credentialsSecretRef": {"name": "keys"}, "providersConfigMapRef": {"name": "models"},
    "env": [{"name": "TEAM", "value": "core"}],
}


async def test_the_session_gets_the_spec_and_what_it_points_at() -> None:
    reader = _Reader({"u1/keys": {"OPENAI_API_KEY": Secret("sk-1")}},
                     {"u1/models": {"models.json": '{"providers": {}}'}})
    spec = await inputs.session_spec(reader, "u1", "api", SPEC, _Defaults())
    assert (spec.name, spec.provider, spec.model, spec.thinking) == ("api", "openai", "gpt-x",
                                                                     "high")
    assert spec.credentials == {"OPENAI_API_KEY": Secret("sk-1")}
    assert isinstance(spec.models_json, Secret)
    assert spec.env["TEAM"] == "core"
    assert "lieutenant 'api'" in spec.system_prompt
    assert "Your role: builds the API" in spec.system_prompt
    assert "\nUse Go.\n" in spec.system_prompt


async def test_the_agent_knows_its_name_namespace_vm_and_parent() -> None:
    spec = {**SPEC, "parentRef": {"kind": "Lieutenant", "name": "lead"},
            "env": [{"name": "REEF_LIEUTENANT", "value": "someone-else"},
                    {"name": "TEAM", "value": "core"}]}
    reader = _Reader({"u1/keys": {}}, {"u1/models": {"models.json": "{}"}})
    session = await inputs.session_spec(reader, "u1", "api", spec, _Defaults(), "vm-7")
    assert session.env == {"TEAM": "core", "REEF_LIEUTENANT": "api", "REEF_NAMESPACE": "u1",
                           "REEF_VM_ID": "vm-7", "REEF_PARENT": "lead", "GIT_EDITOR": "true"}
    orphan = await inputs.session_spec(_Reader({}, {}), "u1", "api", {"role": "r"},
                                       _Defaults(), "vm-7")
    assert orphan.env["REEF_PARENT"] == ""


@pytest.mark.parametrize("spec", [SPEC, {"role": "r"}])
def test_the_system_prompt_ends_with_the_closing_instruction(spec: dict[str, Any]) -> None:
    prompt = inputs.system_prompt("api", spec)
    # With or without the user's own instructions (SPEC has some), the last word is it.
    assert prompt.rstrip().endswith("end with a clear summary of what was done and any open "
                                    "questions or next steps.")


async def test_without_references_the_session_uses_the_operators_default_model() -> None:
    spec = await inputs.session_spec(_Reader({}, {}), "u1", "api", {"role": "r"}, _Defaults())
    assert (spec.provider, spec.model) == ("anthropic", "claude-default")
    assert spec.credentials == {} and spec.models_json is None


@pytest.mark.parametrize(("secrets", "configmaps", "missing"), [
    ({}, {"u1/models": {"models.json": "{}"}}, "Secret keys"),
    ({"u1/keys": {}}, {}, "ConfigMap models"),
    ({"u1/keys": {}}, {"u1/models": {"other": "{}"}}, "has no key models.json"),
])
async def test_a_missing_reference_is_an_input_error(
        secrets: dict[str, dict[str, Secret]], configmaps: dict[str, dict[str, str]],
        missing: str) -> None:
    with pytest.raises(inputs.InputError, match=missing):
        await inputs.session_spec(_Reader(secrets, configmaps), "u1", "api", SPEC, _Defaults())


async def test_an_unlabelled_credentials_secret_is_refused_before_any_value_is_read() -> None:
    reader = _Reader({"u1/keys": {"OPENAI_API_KEY": Secret("sk-1")}},
                     {"u1/models": {"models.json": "{}"}}, unlabelled=("u1/keys",))
    with pytest.raises(inputs.UnlabelledCredentials) as refused:
        await inputs.session_spec(reader, "u1", "api", SPEC, _Defaults())
    assert refused.value.reason == "CredentialsNotLabelled"
    assert str(refused.value) == (
        'Secret u1/keys (spec.credentialsSecretRef) does not carry the label '
        'reef.vers.sh/agent-credentials: "true"; its owner must label it before an agent may '
        'read it (kubectl label secret -n u1 keys reef.vers.sh/agent-credentials=true)')
    assert reader.values_read == []


@pytest.mark.parametrize("value", ["false", "True", "yes", ""])
def test_only_the_exact_label_value_true_is_consent(value: str) -> None:
    assert not inputs.credentials_consented({LABEL_AGENT_CREDENTIALS: value})
    assert inputs.credentials_consented({LABEL_AGENT_CREDENTIALS: "true"})


async def test_a_missing_credentials_secret_is_still_missing_input() -> None:
    with pytest.raises(inputs.InputError) as refused:
        await inputs.session_spec(_Reader({}, {}), "u1", "api", SPEC, _Defaults())
    assert refused.value.reason == "MissingInput"


def test_a_pause_waits_for_the_running_task() -> None:
    assert node.node_state("Paused", task_running=True) == "Running"
    assert node.node_state("Paused", task_running=False) == "Paused"
    assert node.node_state("Destroyed", task_running=True) == "Destroyed"


def test_the_node_spec_follows_the_lieutenants() -> None:
    spec = {"profileRef": {"name": "go"}, "commitId": "c1", "parentRef": {"name": "base"}}
    assert node.node_spec(spec, "Running") == {
        "state": "Running", "category": "Lieutenant", "profileRef": {"name": "go"},
        "source": {"commitId": "c1"}, "parentRef": {"name": "base"}}
    assert node.node_spec({}, "Paused") == {"state": "Paused", "category": "Lieutenant"}


def test_a_new_node_is_owned_by_its_lieutenant() -> None:
    lieutenant = {"metadata": {"name": "api", "namespace": "u1", "uid": "uid-1"}}
    made = node.new_node(lieutenant, {"labels": {"x": "y"}, "finalizers": ["f"]},
                         {"state": "Running"})
    assert made["metadata"]["labels"] == {"x": "y", LABEL_LIEUTENANT: "api"}
    assert made["metadata"]["finalizers"] == ["f"]
    assert (made["metadata"]["name"], made["metadata"]["namespace"]) == ("api", "u1")
    assert node.owned_by(made, lieutenant)
    assert not node.owned_by(made, {"metadata": {"uid": "someone-else"}})


def test_a_nodes_status_speaks_for_its_spec_once_observed() -> None:
    assert node.observed({"metadata": {"generation": 2}, "status": {"observedGeneration": 2}})
    assert not node.observed({"metadata": {"generation": 3},
                              "status": {"observedGeneration": 2}})
