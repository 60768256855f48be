"""The I/O edges of configuration: the file, the ConfigMap and Secret, and `load_config`,
which ties them to `resolve` at startup (and in `kubectl reef config`)."""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from kubernetes.client.exceptions import ApiException

from reef_operator.config.parsers import ConfigError, bad
from reef_operator.config.resolve import SOURCE_ENV, OperatorConfig, read_env, resolve
from reef_operator.config.table import (
    DEFAULT_CONFIG_FILE,
    KEYS,
    REEF_CONFIG_FILE,
    REEF_CONFIGMAP,
    REEF_NAMESPACE,
    REEF_SECRET,
    home,
)


def load_file(path: Path) -> dict[str, Any]:
    """A config file's mapping: JSON for `.json`, YAML otherwise; an empty file is `{}`.

    Parse errors report the position only, never the offending text, since
    the file may hold the API key.
    """
    label = f"config file {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise ConfigError(f"cannot read {label}: {reason}", source=label) from None
    data: Any
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text) if text.strip() else None
        except json.JSONDecodeError as error:
            raise ConfigError(f"{label} is not valid JSON (line {error.lineno}, column "
                              f"{error.colno}: {error.msg})", source=label) from None
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            where = ""
            mark = getattr(error, "problem_mark", None)
            if mark is not None:
                where = f" (line {mark.line + 1}, column {mark.column + 1})"
            raise ConfigError(f"{label} is not valid YAML{where}", source=label) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{label} must hold a mapping of configuration keys, found a "
                          f"{type(data).__name__}", source=label)
    return {str(key): value for key, value in data.items()}


def config_file_path(env: Mapping[str, str]) -> Path | None:
    """REEF_CONFIG_FILE (which must exist), else ~/.vers/config.json if it exists."""
    explicit = read_env(REEF_CONFIG_FILE, env)
    if explicit is not None:
        path = _expand(explicit, env)
        if not path.is_file():
            raise bad(REEF_CONFIG_FILE.key, SOURCE_ENV, explicit, "is not an existing file")
        return path
    path = _expand(DEFAULT_CONFIG_FILE, env)
    return path if path.is_file() else None


def _expand(text: str, env: Mapping[str, str]) -> Path:
    if text == "~" or text.startswith("~/"):
        return home(env) / text[2:]
    return Path(text).expanduser()


def read_cluster_sources(
    core_v1_api: Any, namespace: str, configmap_name: str, secret_name: str,
) -> tuple[dict[str, str] | None, dict[str, str] | None]:
    """The ConfigMap's data and the Secret's decoded data; a missing object is None.

    Both are optional (everything may come from env), so 404 is not an error;
    any other API error is, since it means the operator cannot see its own
    configuration (most often RBAC).
    """
    configmap_obj = _read(core_v1_api.read_namespaced_config_map, "ConfigMap",
                          namespace, configmap_name)
    secret_obj = _read(core_v1_api.read_namespaced_secret, "Secret", namespace, secret_name)
    configmap = None if configmap_obj is None else dict(configmap_obj.data or {})
    secret = None if secret_obj is None else _decode_secret(
        secret_obj.data or {}, f"secret {namespace}/{secret_name}")
    return configmap, secret


def _read(method: Any, kind: str, namespace: str, name: str) -> Any:
    try:
        return method(name, namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise ConfigError(f"cannot read {kind} {namespace}/{name}: {error.status} "
                          f"{error.reason}", source=f"{kind.lower()} {namespace}/{name}"
                          ) from None


def _decode_secret(data: Mapping[str, str], label: str) -> dict[str, str]:
    """Secret data is base64; keys the operator reads must decode to UTF-8 text, others
    (binary certificates, say) are skipped rather than failing the operator."""
    decoded: dict[str, str] = {}
    for key, encoded in data.items():
        try:
            decoded[key] = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            if key in KEYS:
                raise ConfigError(f"{key} from {label}: the value is not base64-encoded UTF-8 "
                                  "text (value not shown)", key=key, source=label) from None
    return decoded


def load_config(
    env: Mapping[str, str] | None = None,
    core_v1_api: Any = None,
    *,
    namespace: str | None = None,
    configmap_name: str | None = None,
    secret_name: str | None = None,
) -> OperatorConfig:
    """The operator's configuration at startup.

    Without `core_v1_api` no cluster is asked (local runs, tests). Names not
    given come from REEF_NAMESPACE, REEF_CONFIGMAP and REEF_SECRET, defaulting
    to reef-system, reef-operator-config and reef-vers-credentials.
    """
    env = os.environ if env is None else env
    namespace = namespace or read_env(REEF_NAMESPACE, env)
    configmap_name = configmap_name or read_env(REEF_CONFIGMAP, env)
    secret_name = secret_name or read_env(REEF_SECRET, env)
    configmap: dict[str, str] | None = None
    secret: dict[str, str] | None = None
    if core_v1_api is not None:
        configmap, secret = read_cluster_sources(core_v1_api, namespace, configmap_name,
                                                 secret_name)
    path = config_file_path(env)
    file_values = load_file(path) if path is not None else None
    return resolve(env, configmap, secret, file_values,
                   configmap_name=f"{namespace}/{configmap_name}",
                   secret_name=f"{namespace}/{secret_name}",
                   file_path=str(path) if path is not None else "")

