"""Checks on a BootProfile spec that its CRD schema cannot express.

The API server already enforces types, patterns, enums and sizes. What is left
are rules across fields (an env entry needs a value *or* a source; the Local
provider has no Vers images), things a shell script cannot carry (NUL
bytes) and where a Secret-backed env variable may be read: only from the
operator's own namespace, because a BootProfile (cluster-scoped, used by every
tenant's nodes) must not carry a Secret out of another team's namespace. The
controller reports these problems in the profile's `Valid` condition, so each
message names the field and says what to change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Prefix of the variables the boot script sets from the VM's identity; a
#: profile env var with this prefix would silently override them.
RESERVED_ENV_PREFIX = "REEF_"
_SECRET_REF_KEYS = ("namespace", "name", "key")


def validate_profile(spec: Mapping[str, Any]) -> list[str]:
    """Human-readable problems with a BootProfile spec; an empty list means valid."""
    return [*_source_problems(spec), *_env_problems(spec.get("env")),
            *_boot_script_problems(spec.get("bootScript"))]


def secret_namespace_problems(spec: Mapping[str, Any], operator_namespace: str) -> list[str]:
    """Secret-backed env variables that would read outside the operator's namespace."""
    problems = []
    for index, entry in enumerate(spec.get("env") or ()):
        value_from = entry.get("valueFrom") if isinstance(entry, Mapping) else None
        ref = value_from.get("secretKeyRef") if isinstance(value_from, Mapping) else None
        if not isinstance(ref, Mapping) or not ref.get("namespace"):
            continue
        if ref["namespace"] != operator_namespace:
            problems.append(
                f"env[{index}] ({entry.get('name')}): valueFrom.secretKeyRef.namespace is "
                f"{ref['namespace']!r}, but a BootProfile reads Secrets only from the "
                f"operator's namespace {operator_namespace!r}: copy the Secret there and "
                f"set namespace: {operator_namespace}")
    return problems


def _source_problems(spec: Mapping[str, Any]) -> list[str]:
    source = spec.get("source") or {}
    if spec.get("provider") != "Local" or not isinstance(source, Mapping):
        return []
    return [
        f"source.{field}: the Local provider boots from its own snapshots, not Vers images: "
        "use source.commitId (a Local snapshot id) or remove source"
        for field in ("tag", "ref")
        if source.get(field) is not None
    ]


def _env_problems(env: Any) -> list[str]:
    if env is None:
        return []
    if not isinstance(env, list):
        return ["env: must be a list of {name, value} or {name, valueFrom} entries"]
    problems: list[str] = []
    seen: set[str] = set()
    for index, entry in enumerate(env):
        if not isinstance(entry, Mapping):
            problems.append(f"env[{index}]: must be an object with name and value or valueFrom")
            continue
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            problems.append(f"env[{index}]: set name to the variable's name")
            continue
        where = f"env[{index}] ({name})"
        if name in seen:
            problems.append(f"{where}: {name} is listed more than once: keep one entry")
        seen.add(name)
        if name.startswith(RESERVED_ENV_PREFIX):
            problems.append(f"{where}: names starting with {RESERVED_ENV_PREFIX} are reserved for "
                            "the VM's identity (REEF_VM_ID, REEF_NODE, ...): rename it")
        problems.extend(_env_value_problems(where, entry))
    return problems


def _env_value_problems(where: str, entry: Mapping[str, Any]) -> list[str]:
    value, value_from = entry.get("value"), entry.get("valueFrom")
    if value is None and value_from is None:
        return [f"{where}: set value (a literal) or valueFrom.secretKeyRef "
                "{namespace, name, key} (a key of a Secret)"]
    if value is not None and value_from is not None:
        return [f"{where}: set only one of value and valueFrom, not both"]
    if value is not None:
        if "\x00" in str(value):
            return [f"{where}: value contains a NUL byte, which a shell cannot carry: remove it"]
        return []
    ref = value_from.get("secretKeyRef") if isinstance(value_from, Mapping) else None
    missing = [key for key in _SECRET_REF_KEYS
               if not isinstance(ref, Mapping) or not ref.get(key)]
    if missing:
        return [f"{where}: valueFrom.secretKeyRef needs {', '.join(missing)} "
                "(the Secret's namespace and name, and the key to read)"]
    return []


def _boot_script_problems(script: Any) -> list[str]:
    if isinstance(script, str) and "\x00" in script:
        return ["bootScript: contains a NUL byte, which a shell script cannot carry: remove it"]
    return []
