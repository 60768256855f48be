"""The BootProfiles shipped with the operator, as Python data.

They live here rather than being read from manifests/profiles/*.yaml because
the installed package has no repository next to it; the YAML files (what users
`kubectl apply`) are kept equal to this data by a unit test.

full, swarm, lightweight and infra are the seed's bootloader profiles (its
organs become modules); none names a source, because the golden image is the
cluster admin's choice. local runs on the operator's host, where pi already is.
"""

from __future__ import annotations

from typing import Any

from reef_operator.constants import API_VERSION


def _profile(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "BootProfile", "metadata": {"name": name},
            "spec": spec}


DEFAULT_PROFILES: dict[str, dict[str, Any]] = {
    "full": _profile("full", {
        "provider": "Vers",
        "category": "Agent",
        "modules": ["store", "cron", "lieutenant", "registry", "vm-tree", "vers-config", "docs",
                    "installer"],
        "capabilities": ["vers-vm", "vers-vm-copy", "vers-swarm", "ssh"],
    }),
    "swarm": _profile("swarm", {
        "provider": "Vers",
        "category": "Swarm",
        "modules": ["store", "cron"],
        "capabilities": ["vers-vm", "vers-vm-copy", "vers-swarm"],
    }),
    "lightweight": _profile("lightweight", {
        "provider": "Vers",
        "category": "Swarm",
        "modules": ["store"],
        "capabilities": [],
    }),
    "infra": _profile("infra", {
        "provider": "Vers",
        "category": "Infra",
        "modules": ["store", "cron", "docs"],
        "capabilities": [],
    }),
    "local": _profile("local", {
        "provider": "Local",
        "category": "Agent",
        "modules": ["store"],
        "capabilities": [],
        "agent": {"install": False},
    }),
}
