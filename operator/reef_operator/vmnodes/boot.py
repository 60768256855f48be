"""The boot of a VM node: the command that runs its profile's script, and how a failure reads.

Pure: the reconciler runs the command on the VM's shell and writes the outcome.

The script sees who it is through REEF_* variables (the node, its lineage, its
DNA). The profile's Secret-backed variables never appear in the command, since a
command line is visible to every process on the VM: they are sent on stdin into a
0600 file whose path the script finds in REEF_SECRET_ENV_FILE.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from typing import Any

from reef_operator.vmnodes.profiles import ProfileView

ATTEMPTS_BEFORE_STALLED = 3  # boot script failures retried before Stalled=True
OUTPUT_LINES = 8             # the end of the script's output kept in a failure message

SECRET_UPLOAD = ('umask 077; mkdir -p "$HOME/.reef" && cat > "$HOME/.reef/secret.env" && '
                 'export REEF_SECRET_ENV_FILE="$HOME/.reef/secret.env"; ')


def identity_env(namespace: str, name: str, spec: Mapping[str, Any], status: Mapping[str, Any],
                 profile: ProfileView) -> dict[str, str]:
    """The REEF_* variables: the node as the pass's status sees it (VM id, lineage, DNA)."""
    dna = status.get("dna") or {}
    lineage = status.get("lineage") or {}
    return {
        "REEF_VM_ID": str(status.get("vmId", "")),
        "REEF_NODE": name,
        "REEF_NAMESPACE": namespace,
        "REEF_CATEGORY": str(spec.get("category") or profile.category),
        "REEF_PROFILE": profile.name,
        "REEF_PARENT": str((spec.get("parentRef") or {}).get("name", "")),
        "REEF_ROOT": str(lineage.get("root", name)),
        "REEF_MODULES": " ".join(dna.get("modules", [])),
        "REEF_CAPABILITIES": " ".join(dna.get("capabilities", [])),
    }


def secret_env_file(values: Iterable[tuple[str, str]]) -> str:
    """The secret env file's text (NAME=value lines, shell-quoted); "" when there are none."""
    lines = [f"{name}={shlex.quote(value)}" for name, value in values]
    return "\n".join(lines) + ("\n" if lines else "")


def boot_command(script: str, env: Mapping[str, str], with_secrets: bool) -> str:
    """The shell command that runs `script` with `env` (and the secret file from stdin)."""
    upload = SECRET_UPLOAD if with_secrets else ""
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    return f"{upload}export {exports}; bash -c {shlex.quote(script)} 2>&1"


def failure_message(exit_status: int, output: str, attempt: int) -> str:
    """What a failed boot says in the Booted condition and the BootFailed Event."""
    tail = "\n".join(output.strip().splitlines()[-OUTPUT_LINES:])
    return f"boot script failed (exit {exit_status}, attempt {attempt}):\n{tail}"


def needs_a_person(attempt: int) -> bool:
    """After a few failed attempts the boot is Stalled (still retried with backoff)."""
    return attempt >= ATTEMPTS_BEFORE_STALLED
