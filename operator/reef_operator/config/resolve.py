"""Resolution: plain mappings in, typed frozen values out, with the source of every value.

No cluster and no file reading here (the CA bundle check aside), so every rule is
testable without I/O. Rules that hold for every setting and source:

- Values are stripped; an empty value counts as unset, so a blank
  `VERS_SSH_CONNECT_HOST=` in a manifest falls through to the next source
  instead of becoming an empty host name.
- A bad value raises `ConfigError` naming the key, the source and what is
  allowed, and stops the operator: a half-understood configuration is worse
  than none.
- A secret is a `Secret` from the moment it is read; no message, log line or
  `repr` carries more of it than `Secret.masked()`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

from reef_operator.config.parsers import ConfigError
from reef_operator.config.table import (
    KEYS,
    OPERATOR_SETTINGS,
    REEF_WEBHOOK_PORT,
    SECRET_KEYS,
    VERS_API_KEY,
    WEBHOOK_SETTINGS,
    Setting,
    shown,
)
from reef_operator.secret import Secret

logger = logging.getLogger("reef_operator.config")

T = TypeVar("T")

SOURCE_ENV: Final = "env"
SOURCE_DEFAULT: Final = "default"


@dataclass(frozen=True)
class OperatorConfig:
    """The resolved operator settings (`OPERATOR_SETTINGS`, one field each); `sources` maps
    each key to where its value came from."""

    vers_api_key: Secret | None
    vers_base_url: str
    vm_domain: str
    ssh_port: int
    ssh_connect_host: str | None
    tls_verify: bool | Path
    default_profile: str
    local_root: Path
    local_provider: str
    platform_rate: float
    platform_burst: int
    max_agent_starts: int
    default_model_provider: str
    default_model_id: str
    adoption_namespaces: tuple[str, ...]
    delegate_apiserver: str | None
    pi_package: Path | None
    # Not hashed: a dict cannot be, and two configs with equal values are the same config.
    sources: dict[str, str] = field(default_factory=dict, hash=False)

    def require_api_key(self) -> Secret:
        """The API key, for the one provider that needs it; its absence is a clear error."""
        if self.vers_api_key is None:
            raise ConfigError(
                f"{VERS_API_KEY.key} is not set: put it in the environment, in the Secret's "
                "data, or in the config file", key=VERS_API_KEY.key, source=SOURCE_DEFAULT)
        return self.vers_api_key

    def source_of(self, key: str) -> str:
        return self.sources.get(key, SOURCE_DEFAULT)

    def describe(self) -> list[tuple[str, str, str]]:
        """(key, value as shown, source) for every setting; secrets shown masked."""
        return [(setting.key, shown(getattr(self, setting.field)), self.source_of(setting.key))
                for setting in OPERATOR_SETTINGS]

    def log_lines(self) -> list[str]:
        """One line per key for the startup log, so an operator's logs answer
        "which API, which key, from where" without a shell in the pod."""
        return [f"config {key}={value} (from {source})" for key, value, source in self.describe()]


@dataclass(frozen=True)
class WebhookConfig:
    """The admission webhook server's settings (`WEBHOOK_SETTINGS`, one field each)."""

    port: int
    addr: str
    host: str
    cert: str | None
    key: str | None
    ca: str | None
    managed: bool


def resolve(
    env: Mapping[str, str],
    configmap: Mapping[str, str] | None = None,
    secret: Mapping[str, str] | None = None,
    file_values: Mapping[str, Any] | None = None,
    *,
    configmap_name: str = "",
    secret_name: str = "",
    file_path: str = "",
) -> OperatorConfig:
    """Resolve every operator setting from its sources, first found wins: env →
    ConfigMap/Secret → file → default.

    `configmap_name` and `secret_name` are shown as `namespace/name` in sources
    and messages; `file_path` likewise. Only secrets are taken from the Secret,
    and they are refused in a ConfigMap, whose contents anyone with read access
    to the namespace's config can see.
    """
    configmap_label = _label("configmap", configmap_name)
    secret_label = _label("secret", secret_name)
    file_label = _label("file", file_path)

    leaked = sorted(SECRET_KEYS & set(configmap or {}))
    if leaked:
        key = leaked[0]
        raise ConfigError(
            f"{key} found in {configmap_label}: put {key} in a Secret, not a ConfigMap "
            "(and rotate the key: the ConfigMap exposed it)", key=key, source=configmap_label)
    if configmap:
        unknown = sorted(set(configmap) - set(KEYS))
        if unknown:
            logger.warning("%s has keys the operator does not know, ignored: %s",
                           configmap_label, ", ".join(unknown))

    layers: list[tuple[str, Mapping[str, str]]] = [(SOURCE_ENV, env)]
    if configmap is not None:
        layers.append((configmap_label, configmap))
    if secret is not None:
        layers.append((secret_label, {k: v for k, v in secret.items() if k in SECRET_KEYS}))
    if file_values is not None:
        layers.append((file_label, _file_texts(file_values, file_label)))

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in OPERATOR_SETTINGS:
        values[setting.field], sources[setting.key] = _pick(setting, layers, env, values)
    return OperatorConfig(**values, sources=sources)


def read_env(setting: Setting[T], env: Mapping[str, str]) -> T:
    """One setting from the environment alone (stripped, empty is unset), else its default."""
    value, _source = _pick(setting, [(SOURCE_ENV, env)], env, {})
    return value


def is_given(setting: Setting[Any], env: Mapping[str, str]) -> bool:
    """Whether the environment sets this setting (a blank value does not)."""
    return bool(env.get(setting.key, "").strip())


def webhook_config(env: Mapping[str, str]) -> WebhookConfig | None:
    """The webhook server's settings from the environment; None without a port (no webhook),
    whatever else is set."""
    if not is_given(REEF_WEBHOOK_PORT, env):
        return None
    return WebhookConfig(**{setting.field: read_env(setting, env)
                            for setting in WEBHOOK_SETTINGS})


def _pick(setting: Setting[T], layers: list[tuple[str, Mapping[str, str]]],
          env: Mapping[str, str], values: Mapping[str, Any]) -> tuple[T, str]:
    for label, texts in layers:
        raw = texts.get(setting.key)
        if raw is not None and raw.strip():
            return setting.parse(raw.strip(), setting.key, label), label
    return setting.default_for(env, values), SOURCE_DEFAULT


def _label(kind: str, name: str) -> str:
    return f"{kind} {name}" if name else kind


def _file_texts(values: Mapping[str, Any], label: str) -> dict[str, str]:
    """A YAML/JSON file's scalars as the text the other sources would hold.

    Keys the operator does not know are ignored without a warning: the default
    file is the Vers CLI's, which holds settings of its own.
    """
    texts: dict[str, str] = {}
    for key in KEYS:
        value = values.get(key)
        if value is None:
            continue
        if isinstance(value, bool):
            texts[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            texts[key] = str(value)
        else:
            raise ConfigError(
                f"{key} from {label}: expected a single value, found a "
                f"{type(value).__name__}", key=key, source=label)
    return texts
