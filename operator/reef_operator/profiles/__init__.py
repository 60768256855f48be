"""Boot profiles without Kubernetes: validation, DNA, the boot script and its hash.

Everything here is pure (no I/O, no API calls) so controllers, the CLI and
tests share one definition of what a profile means.
"""

from reef_operator.profiles.bootscript import (
    DONE_LINE,
    IDENTITY_VARS,
    ProfileError,
    SecretEnvRef,
    boot_environment,
    profile_hash,
    render_boot_script,
    render_secret_env_file,
    secret_env_refs,
)
from reef_operator.profiles.defaults import DEFAULT_PROFILES
from reef_operator.profiles.dna import Dna, DnaDiff, SetDiff, dna_diff, effective_dna
from reef_operator.profiles.validation import validate_profile

__all__ = [
    "DEFAULT_PROFILES",
    "DONE_LINE",
    "IDENTITY_VARS",
    "Dna",
    "DnaDiff",
    "ProfileError",
    "SecretEnvRef",
    "SetDiff",
    "boot_environment",
    "dna_diff",
    "effective_dna",
    "profile_hash",
    "render_boot_script",
    "render_secret_env_file",
    "secret_env_refs",
    "validate_profile",
]
