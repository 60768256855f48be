"""What pi needs to start a lieutenant's session, from its spec and what the spec points at.

The credentials Secret and the providers ConfigMap (its models.json may hold API keys)
travel as `Secret` values: never in logs, Events, status or process arguments. A
reference to something missing is an InputError, for a person to fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from reef_operator.agent.session import SessionSpec
from reef_operator.lieutenants.runtime import ModelDefaults
from reef_operator.secret import Secret


class InputError(RuntimeError):
    """Something the spec points at (Secret, ConfigMap) is missing."""


class InputReader(Protocol):
    async def read_secret(self, namespace: str, name: str) -> dict[str, Secret] | None: ...

    async def read_configmap(self, namespace: str, name: str) -> dict[str, str] | None: ...


def model(spec: Mapping[str, Any], defaults: ModelDefaults) -> tuple[str, str]:
    """(provider, id) of the spec's model, else the operator's default."""
    chosen = spec.get("model") or {}
    return (str(chosen.get("provider") or defaults.default_model_provider),
            str(chosen.get("id") or defaults.default_model_id))


def model_label(message: Mapping[str, Any], fallback: tuple[str, str]) -> str:
    """provider/id of the model that answered (pi's message says), else the fallback."""
    provider, model_id = message.get("provider"), message.get("model")
    if isinstance(provider, str) and isinstance(model_id, str) and provider and model_id:
        return f"{provider}/{model_id}"
    return "/".join(fallback)


def system_prompt(name: str, spec: Mapping[str, Any]) -> str:
    prompt = (f"You are the lieutenant '{name}', a persistent coding agent.\n"
              f"Your role: {spec.get('role', '')}\n")
    if spec.get("instructions"):
        prompt += f"\n{spec['instructions']}\n"
    return prompt


async def session_spec(reader: InputReader, namespace: str, name: str,
                       spec: Mapping[str, Any], defaults: ModelDefaults) -> SessionSpec:
    provider, model_id = model(spec, defaults)
    credentials: dict[str, Secret] = {}
    secret_ref = (spec.get("credentialsSecretRef") or {}).get("name")
    if secret_ref:
        found = await reader.read_secret(namespace, secret_ref)
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
    return SessionSpec(name=name, provider=provider, model=model_id,
                       thinking=(spec.get("model") or {}).get("thinkingLevel"),
                       system_prompt=system_prompt(name, spec), credentials=credentials,
                       models_json=models_json, env=env)
