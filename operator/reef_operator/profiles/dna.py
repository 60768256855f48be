"""A VM's DNA: the modules (the seed's organs) and capabilities it is booted with.

A VM's effective DNA is its boot profile's plus the extras its VMNode asks for.
The seed merged them "without duplicates"; we also keep the order (profile
first, then the node's additions in their order) so the DNA written to status
and passed to the boot script is stable, and a reconcile that changes nothing
writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict


@dataclass(frozen=True)
class Dna:
    """Modules and capabilities, each unique and in a meaningful order."""

    modules: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ()

    def to_status(self) -> dict[str, list[str]]:
        """The shape of VMNode `status.dna`."""
        return {"modules": list(self.modules), "capabilities": list(self.capabilities)}

    @classmethod
    def from_status(cls, dna: Mapping[str, Any] | None) -> Dna:
        """Read back `status.dna` (absent or partial → empty parts)."""
        dna = dna or {}
        return cls(
            modules=_unique(dna.get("modules") or ()),
            capabilities=_unique(dna.get("capabilities") or ()),
        )


class SetDiff(TypedDict):
    """What one side gained and lost."""

    added: list[str]
    removed: list[str]


class DnaDiff(TypedDict):
    """Per-part difference between two DNAs (the seed's `vm-tree diff`)."""

    modules: SetDiff
    capabilities: SetDiff


def _unique(*parts: Iterable[str] | None) -> tuple[str, ...]:
    """Concatenate, dropping repeats but keeping the first occurrence's position."""
    return tuple(dict.fromkeys(name for part in parts if part for name in part))


def effective_dna(
    profile_modules: Iterable[str] | None,
    profile_capabilities: Iterable[str] | None,
    node_modules: Iterable[str] | None,
    node_capabilities: Iterable[str] | None,
) -> Dna:
    """The DNA a VM boots with: the profile's, then the node's extras not already there.

    Parts may be None because absent list fields in a spec read as None.
    """
    return Dna(
        modules=_unique(profile_modules, node_modules),
        capabilities=_unique(profile_capabilities, node_capabilities),
    )


def _diff(a: tuple[str, ...], b: tuple[str, ...]) -> SetDiff:
    return {
        "added": [name for name in b if name not in a],
        "removed": [name for name in a if name not in b],
    }


def dna_diff(a: Dna, b: Dna) -> DnaDiff:
    """How `b` differs from `a`: added = in b but not in a, removed = in a but not in b.

    These are the seed's semantics (diff from a towards b); added keeps b's
    order and removed keeps a's, so the output is stable for display.
    """
    return {
        "modules": _diff(a.modules, b.modules),
        "capabilities": _diff(a.capabilities, b.capabilities),
    }
