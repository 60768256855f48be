"""What pi needs to start a lieutenant's session, from its spec and what the spec points at.

The credentials Secret and the providers ConfigMap (its models.json may hold API keys)
travel as `Secret` values: never in logs, Events, status or process arguments. A
reference to something missing is an InputError, for a person to fix.

A credentials Secret reaches an agent only when its owner says so: it must carry the
label `reef.vers.sh/agent-credentials: "true"` (whoever can label a Secret can read it).
Its labels are read first, as metadata alone; its values are read only when it is
labelled, so a tenant naming another's Secret gets nothing out of the apiserver.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from reef_operator.agent.session import SessionSpec
from reef_operator.constants import LABEL_AGENT_CREDENTIALS
from reef_operator.lieutenants.runtime import ModelDefaults
from reef_operator.secret import Secret


class InputError(RuntimeError):
    """Something the spec points at (Secret, ConfigMap) is missing."""

    reason = "MissingInput"


class ModelProviderNotAllowed(InputError):
    """The namespace's ReefPolicy does not allow the spec's model provider."""

    reason = "ModelProviderNotAllowed"


class UnlabelledCredentials(InputError):
    """The credentials Secret exists but its owner has not labelled it for agents."""

    reason = "CredentialsNotLabelled"


def credentials_consented(labels: Mapping[str, str]) -> bool:
    return labels.get(LABEL_AGENT_CREDENTIALS) == "true"


def unlabelled_credentials_message(namespace: str, name: str) -> str:
    return (f"Secret {namespace}/{name} (spec.credentialsSecretRef) does not carry the label "
            f'{LABEL_AGENT_CREDENTIALS}: "true"; its owner must label it before an agent may '
            f"read it (kubectl label secret -n {namespace} {name} "
            f"{LABEL_AGENT_CREDENTIALS}=true)")


class InputReader(Protocol):
    async def read_secret_labels(self, namespace: str, name: str) -> dict[str, str] | None: ...

    async def read_secret(self, namespace: str, name: str) -> dict[str, Secret] | None: ...

    async def read_configmap(self, namespace: str, name: str) -> dict[str, str] | None: ...


def model(spec: Mapping[str, Any], defaults: ModelDefaults) -> tuple[str, str]:
    """(provider, id) of the spec's model, else the operator's default."""
    chosen = spec.get("model") or {}
    return (str(chosen.get("provider") or defaults.default_model_provider),
            str(chosen.get("id") or defaults.default_model_id))


# The seed's closing instruction: whoever reads a lieutenant's answer (a person, a
# coordinator, `history`) gets the task's outcome without the run's narration. It comes
# last, after the user's own instructions, so it is the prompt's final word.
CLOSING_INSTRUCTION = ("When you complete a task, end with a clear summary of what was done "
                       "and any open questions or next steps.")


def system_prompt(name: str, spec: Mapping[str, Any]) -> str:
    prompt = (f"You are the lieutenant '{name}', a persistent, long-lived coding agent: you "
              "keep the memory of your previous tasks.\n"
              f"Your role: {spec.get('role', '')}\n")
    if spec.get("instructions"):
        prompt += f"\n{spec['instructions']}\n"
    return f"{prompt}\n{CLOSING_INSTRUCTION}\n"


def identity_env(namespace: str, name: str, spec: Mapping[str, Any],
                 vm_id: str) -> dict[str, str]:
    """What the agent knows about itself, as the seed's lieutenants knew it: its name,
    namespace, VM and parent (empty when none), and GIT_EDITOR=true so a `git commit` or
    `git rebase` the agent runs never waits for an editor nobody will close. It wins over
    spec.env: the agent's identity is the operator's to say."""
    return {"REEF_LIEUTENANT": name, "REEF_NAMESPACE": namespace, "REEF_VM_ID": vm_id,
            "REEF_PARENT": str((spec.get("parentRef") or {}).get("name") or ""),
            "GIT_EDITOR": "true"}


async def session_spec(reader: InputReader, namespace: str, name: str,
                       spec: Mapping[str, Any], defaults: ModelDefaults,
                       vm_id: str = "") -> SessionSpec:
    provider, model_id = model(spec, defaults)
    credentials: dict[str, Secret] = {}
    secret_ref = (spec.get("credentialsSecretRef") or {}).get("name")
    if secret_ref:
        labels = await reader.read_secret_labels(namespace, secret_ref)
        if labels is not None and not credentials_consented(labels):
            raise UnlabelledCredentials(unlabelled_credentials_message(namespace, secret_ref))
        found = None if labels is None else await reader.read_secret(namespace, secret_ref)
        if found is None:
            raise InputError(f"Secret {secret_ref} (credentialsSecretRef) not found in "
                             f"namespace {namespace}")
        credentials = dict(found)
    models_json: Secret | None = None
    config_ref = (spec.get("providersConfigMapRef") or {}).get("name")
    if config_ref:
        data = await reader.read_configmap(namespace, config_ref)
        if data is None or "models.json" not in data:
            raise InputError(f"ConfigMap {config_ref} (providersConfigMapRef) not found or "
                             "has no key models.json")
        models_json = Secret(data["models.json"])
    env = {e["name"]: e["value"] for e in spec.get("env") or []}
    env |= identity_env(namespace, name, spec, vm_id)
    return SessionSpec(name=name, provider=provider, model=model_id,
                       thinking=(spec.get("model") or {}).get("thinkingLevel"),
                       system_prompt=system_prompt(name, spec), credentials=credentials,
                       models_json=models_json, env=env)
