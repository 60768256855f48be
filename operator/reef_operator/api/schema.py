"""Small builders for structural OpenAPI v3 schemas.

Every builder takes the field's description first, so a field without one
cannot be written; `kubectl explain` then teaches each field to a new user.
"""

from __future__ import annotations

from typing import Any

from reef_operator.constants import DNS_SUBDOMAIN

Schema = dict[str, Any]

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
CAMEL_CASE_REASON = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


def obj(description: str, properties: dict[str, Schema], *, required: tuple[str, ...] = (),
        **validations: Any) -> Schema:
    schema: Schema = {"type": "object", "description": description, "properties": properties}
    if required:
        schema["required"] = list(required)
    schema.update(_camel(validations))
    return schema


def string(description: str, *, enum: tuple[str, ...] = (), **validations: Any) -> Schema:
    schema: Schema = {"type": "string", "description": description}
    if enum:
        schema["enum"] = list(enum)
    schema.update(_camel(validations))
    return schema


def integer(description: str, **validations: Any) -> Schema:
    schema: Schema = {"type": "integer", "description": description}
    schema.update(_camel(validations))
    return schema


def number(description: str, **validations: Any) -> Schema:
    return {"type": "number", "description": description, **_camel(validations)}


def boolean(description: str, **validations: Any) -> Schema:
    return {"type": "boolean", "description": description, **_camel(validations)}


def timestamp(description: str) -> Schema:
    return string(description, format="date-time")


def array(description: str, items: Schema, **validations: Any) -> Schema:
    return {"type": "array", "description": description, "items": items, **_camel(validations)}


def string_set(description: str, item_description: str, **validations: Any) -> Schema:
    """A list of unique names (`x-kubernetes-list-type: set`)."""
    return array(
        description,
        string(item_description, pattern=DNS_LABEL, max_length=63),
        x_kubernetes_list_type="set",
        **validations,
    )


def name_ref(description: str, target: str) -> Schema:
    return obj(
        description,
        {"name": string(f"Name of the {target}.", pattern=DNS_SUBDOMAIN, max_length=253)},
        required=("name",),
    )


def conditions(description: str, types: tuple[str, ...]) -> Schema:
    """Standard Kubernetes conditions, one per type."""
    return array(
        description,
        obj(
            "One aspect of the object's current state.",
            {
                "type": string(f"Condition type: one of {', '.join(types)}.", max_length=64),
                "status": string("True, False or Unknown.", enum=("True", "False", "Unknown")),
                "reason": string(
                    "Why the condition has this status, as a CamelCase word for machines.",
                    pattern=CAMEL_CASE_REASON, max_length=128,
                ),
                "message": string("Human-readable detail of the reason.", max_length=32768),
                "observedGeneration": integer(
                    "The .metadata.generation this condition was computed from.",
                    minimum=0, format="int64",
                ),
                "lastTransitionTime": timestamp("When the status last changed."),
            },
            required=("type", "status", "reason", "lastTransitionTime"),
        ),
        x_kubernetes_list_type="map",
        x_kubernetes_list_map_keys=["type"],
    )


def _camel(validations: dict[str, Any]) -> dict[str, Any]:
    """Python keyword names to OpenAPI names.

    max_length becomes maxLength; x_kubernetes_list_type becomes x-kubernetes-list-type.
    """
    out: dict[str, Any] = {}
    for key, value in validations.items():
        if key.startswith("x_kubernetes_"):
            out[key.replace("_", "-")] = value
        else:
            head, *rest = key.split("_")
            out[head + "".join(part.capitalize() for part in rest)] = value
    return out
