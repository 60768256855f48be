"""A kind's definition and its CustomResourceDefinition."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reef_operator.api.schema import DNS_LABEL, Schema
from reef_operator.constants import CATEGORY, GROUP, VERSION


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    json_path: str
    description: str
    priority: int = 0

    def render(self) -> dict[str, Any]:
        column: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "jsonPath": self.json_path,
            "description": self.description,
        }
        if self.priority:
            column["priority"] = self.priority
        return column


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    short_names: tuple[str, ...]
    namespaced: bool
    description: str
    spec: Schema
    status: Schema | None            # None: no status (a record written once, whole)
    columns: tuple[Column, ...]
    spec_required: bool = True

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"

    def crd(self) -> dict[str, Any]:
        root: Schema = {
            "type": "object",
            "description": self.description,
            "properties": {
                "apiVersion": {"type": "string", "description": "API version of this object."},
                "kind": {"type": "string", "description": "Kind of this object."},
                "metadata": {
                    "type": "object",
                    "properties": {
                        # Names become VM labels, tmux sessions and child object names.
                        "name": {"type": "string", "pattern": DNS_LABEL, "maxLength": 63},
                    },
                },
                "spec": self.spec,
                **({"status": self.status} if self.status is not None else {}),
            },
        }
        if self.spec_required:
            root["required"] = ["spec"]
        return {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": self.crd_name},
            "spec": {
                "group": GROUP,
                "names": {
                    "kind": self.kind,
                    "listKind": f"{self.kind}List",
                    "plural": self.plural,
                    "singular": self.kind.lower(),
                    "shortNames": list(self.short_names),
                    "categories": [CATEGORY],
                },
                "scope": "Namespaced" if self.namespaced else "Cluster",
                "versions": [
                    {
                        "name": VERSION,
                        "served": True,
                        "storage": True,
                        **({"subresources": {"status": {}}} if self.status is not None
                           else {}),
                        "additionalPrinterColumns": [c.render() for c in self.columns],
                        "schema": {"openAPIV3Schema": root},
                    }
                ],
            },
        }
