"""The boot profiles as the VM node controller sees them, kept current from the watch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reef_operator.constants import OPERATOR_NAMESPACE
from reef_operator.profiles.bootscript import profile_hash, render_boot_script
from reef_operator.profiles.dna import effective_dna
from reef_operator.profiles.validation import secret_namespace_problems, validate_profile

PROVIDER_KEYS = {"Vers": "vers", "Local": "local"}


@dataclass(frozen=True)
class ProfileView:
    name: str
    spec: Mapping[str, Any]
    script: str
    hash: str
    problems: tuple[str, ...]

    @classmethod
    def from_body(cls, body: Mapping[str, Any],
                  secret_namespace: str = OPERATOR_NAMESPACE) -> ProfileView:
        spec = dict(body.get("spec") or {})
        problems = (*validate_profile(spec), *secret_namespace_problems(spec, secret_namespace))
        script = render_boot_script(spec) if not problems else ""
        return cls(str(body.get("metadata", {}).get("name", "")), spec, script,
                   profile_hash(spec) if not problems else "", problems)

    @property
    def provider(self) -> str:
        return PROVIDER_KEYS.get(str(self.spec.get("provider", "Vers")), "vers")

    @property
    def category(self) -> str:
        return str(self.spec.get("category", "Agent"))

    @property
    def source(self) -> Mapping[str, Any]:
        return self.spec.get("source") or {}

    @property
    def resources(self) -> Mapping[str, Any]:
        return self.spec.get("resources") or {}

    @property
    def boot_timeout(self) -> int:
        return int(self.spec.get("bootTimeoutSeconds", 600))

    @property
    def secret_env(self) -> list[Mapping[str, Any]]:
        return [e for e in self.spec.get("env") or [] if e.get("valueFrom")]

    def dna_for(self, node_spec: Mapping[str, Any]) -> dict[str, list[str]]:
        return effective_dna(self.spec.get("modules"), self.spec.get("capabilities"),
                             node_spec.get("modules"), node_spec.get("capabilities")).to_status()


@dataclass
class ProfileBook:
    # The operator's namespace: the only one a profile's secretKeyRef may read from.
    secret_namespace: str = OPERATOR_NAMESPACE
    profiles: dict[str, ProfileView] = field(default_factory=dict)

    def upsert(self, body: Mapping[str, Any]) -> ProfileView:
        view = ProfileView.from_body(body, self.secret_namespace)
        self.profiles[view.name] = view
        return view

    def remove(self, name: str) -> None:
        self.profiles.pop(name, None)

    def commits(self) -> set[str]:
        """The golden images the BootProfiles name: commits any node may boot from."""
        return {str(p.source["commitId"]) for p in self.profiles.values()
                if p.source.get("commitId")}

    def get(self, name: str) -> ProfileView | None:
        return self.profiles.get(name)
