"""The boot script a BootProfile renders to, and the hash that names its version.

The script is a pure function of the profile's spec: the VM's identity is not
baked in but passed in environment variables (`boot_environment`), so every VM
of a profile runs byte-identical text and `profile_hash` (the script's sha256)
tells which version of the profile a VM booted with (VMNode `UpToDate`).

The script fixes two of the seed's flaws: module markers are rewritten on each
boot, so a module dropped from the DNA really is disabled, and secret values
reach the VM only through a file the operator uploads, never through the
script's text or its output. It is POSIX sh (a Vers VM runs it as root, the
Local provider as an ordinary user) and keeps all of its files under
`${REEF_STATE_DIR:-$HOME/.reef}`. Each step prints `reef-boot: <step>: ...`, so
the last lines of a failed boot say where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Mapping
from typing import Any, NamedTuple

from reef_operator.api.bootprofile import SPEC
from reef_operator.api.schema import ENV_NAME
from reef_operator.profiles.dna import Dna
from reef_operator.profiles.validation import validate_profile

#: Identity variables, in the order they are written to identity.env.
IDENTITY_VARS = ("REEF_VM_ID", "REEF_NODE", "REEF_NAMESPACE", "REEF_CATEGORY", "REEF_PROFILE",
                 "REEF_PARENT", "REEF_ROOT", "REEF_MODULES", "REEF_CAPABILITIES")
#: Identity variables that must be set and not empty (a root VM has no parent;
#: a VM may have no modules or capabilities, but the operator must still say so).
_REQUIRED_VARS = ("REEF_VM_ID", "REEF_NODE", "REEF_NAMESPACE", "REEF_CATEGORY", "REEF_PROFILE",
                  "REEF_ROOT")
_MAY_BE_EMPTY_VARS = ("REEF_MODULES", "REEF_CAPABILITIES")
SECRET_ENV_FILE_VAR = "REEF_SECRET_ENV_FILE"
STATE_DIR_VAR = "REEF_STATE_DIR"
PI_PACKAGE = "@mariozechner/pi-coding-agent"
DONE_LINE = "reef-boot: done"

_SCHEMA = SPEC["properties"]
_DEFAULT_AGENT: dict[str, Any] = {
    name: field["default"] for name, field in _SCHEMA["agent"]["properties"].items()
}


class ProfileError(ValueError):
    """The spec has problems (see `validate_profile`), so no script can be made from it."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class SecretEnvRef(NamedTuple):
    """An env variable whose value the operator reads from a Secret at boot."""

    name: str
    namespace: str
    secret: str
    key: str


def render_boot_script(spec: Mapping[str, Any]) -> str:
    """The boot script for a profile spec; raises ProfileError for an invalid spec."""
    problems = validate_profile(spec)
    if problems:
        raise ProfileError(problems)
    sections = [
        _header(spec),
        _PRELUDE,
        _start(),
        _identity(spec),
        _MODULES,
        _CAPABILITIES,
        _SERVICES,
        _agent(spec),
        _user_script(spec.get("bootScript") or ""),
        _FINISH,
    ]
    return "\n".join(sections)


def profile_hash(spec: Mapping[str, Any]) -> str:
    """`sha256:<hex>` of the rendered script: equal hashes mean identical boots."""
    return "sha256:" + hashlib.sha256(render_boot_script(spec).encode()).hexdigest()


def secret_env_refs(spec: Mapping[str, Any]) -> list[SecretEnvRef]:
    """The env variables the operator must read from Secrets for this profile's boots."""
    refs = []
    for entry in spec.get("env") or ():
        ref = (entry.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            refs.append(SecretEnvRef(entry["name"], ref["namespace"], ref["name"], ref["key"]))
    return refs


def render_secret_env_file(values: Mapping[str, str]) -> str:
    """The content of the file named by REEF_SECRET_ENV_FILE: `NAME=value` lines.

    Values are shell-quoted because identity.env, which these lines are appended
    to, is sourced by sh (the user's bootScript sees them as variables).
    """
    lines = []
    for name, value in values.items():
        if not re.fullmatch(ENV_NAME, name):
            raise ValueError(f"secret env name {name!r} is not a valid variable name")
        if "\x00" in value:
            raise ValueError(f"secret env {name} contains a NUL byte")
        lines.append(_env_line(name, value) + "\n")
    return "".join(lines)


def boot_environment(*, vm_id: str, node: str, namespace: str, category: str, profile: str,
                     parent: str, root: str, dna: Dna, secret_env_file: str | None = None,
                     state_dir: str | None = None) -> dict[str, str]:
    """The environment variables the operator runs the boot script with."""
    env = {
        "REEF_VM_ID": vm_id,
        "REEF_NODE": node,
        "REEF_NAMESPACE": namespace,
        "REEF_CATEGORY": category,
        "REEF_PROFILE": profile,
        "REEF_PARENT": parent,
        "REEF_ROOT": root,
        "REEF_MODULES": " ".join(dna.modules),
        "REEF_CAPABILITIES": " ".join(dna.capabilities),
    }
    if secret_env_file:
        env[SECRET_ENV_FILE_VAR] = secret_env_file
    if state_dir:
        env[STATE_DIR_VAR] = state_dir
    return env


def _agent_settings(spec: Mapping[str, Any]) -> dict[str, Any]:
    """spec.agent with the CRD's defaults filled in (a spec may not have been defaulted)."""
    agent = {**_DEFAULT_AGENT, **{k: v for k, v in (spec.get("agent") or {}).items()
                                  if v is not None}}
    return {"piVersion": str(agent["piVersion"]), "install": bool(agent["install"])}


def _header(spec: Mapping[str, Any]) -> str:
    """Comments, plus the spec fields the body does not fully show.

    Provider, category, source, resources, DNA and agent (whose version is
    unused when install is off) do not all change what the script does (the
    DNA arrives in REEF_MODULES), yet a VM made from an older version of them
    is not up to date, so they are part of the text and hence of the hash.
    Defaults are filled in so a spec hashes the same before and after the API
    server defaults it. bootTimeoutSeconds is left out: it changes nothing on
    the VM. Key order never matters (sorted JSON).
    """
    inputs = {
        "provider": spec.get("provider") or _SCHEMA["provider"]["default"],
        "category": spec.get("category") or _SCHEMA["category"]["default"],
        "source": spec.get("source") or {},
        "resources": spec.get("resources") or {},
        "modules": list(spec.get("modules") or ()),
        "capabilities": list(spec.get("capabilities") or ()),
        "agent": _agent_settings(spec),
    }
    profile = json.dumps(inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return f"""#!/bin/sh
# reef boot script, generated by reef-operator from a BootProfile: do not edit.
# The VM's identity comes from the environment, not from this text, so one
# script serves every VM of the profile and its sha256 is the profile's hash:
# {" ".join(IDENTITY_VARS[:5])}
# {" ".join(IDENTITY_VARS[5:])}
# and optionally {SECRET_ENV_FILE_VAR} and {STATE_DIR_VAR}.
# profile: {profile}
"""


_PRELUDE = """\
set -eu
umask 077
unset IFS
current=start
# step NAME MESSAGE: progress on stdout; NAME is reported if the boot fails.
step() { current=$1; shift; printf 'reef-boot: %s: %s\\n' "$current" "$*"; }
fail() { printf 'reef-boot: error: %s\\n' "$*" >&2; exit 1; }
# quote VALUE: VALUE single-quoted for a file that sh sources later.
quote() { printf "'%s'" "$(printf '%s\\n' "$1" | sed "s/'/'\\\\\\\\''/g")"; }
trap 'status=$?; [ "$status" -eq 0 ] ||
  printf "reef-boot: failed in step %s (exit status %s)\\n" "$current" "$status" >&2' EXIT
"""


def _start() -> str:
    """Check the environment the operator must provide, then set up $STATE."""
    checks = [f'[ -n "${{{var}-}}" ] || fail "{var} is not set: run this script with the '
              f'VM\'s identity in the environment"' for var in _REQUIRED_VARS]
    checks += [f'[ -n "${{{var}+set}}" ] || fail "{var} is not set (it may be empty)"'
               for var in _MAY_BE_EMPTY_VARS]
    return "\n".join([
        *checks,
        f'[ -n "${{{STATE_DIR_VAR}-}}" ] || [ -n "${{HOME-}}" ] || '
        f'fail "set HOME or {STATE_DIR_VAR}: the boot keeps its files there"',
        f'STATE="${{{STATE_DIR_VAR}:-$HOME/.reef}}"',
        'step start "profile $REEF_PROFILE, node $REEF_NAMESPACE/$REEF_NODE, '
        'VM $REEF_VM_ID, state in $STATE"',
        'mkdir -p "$STATE/modules"',
        'chmod 700 "$STATE"',
        "# A boot that fails from here on must not leave the last boot's marker.",
        'rm -f "$STATE/boot.done"',
        "",
    ])


def _identity(spec: Mapping[str, Any]) -> str:
    """identity.env: identity variables, the profile's literal env, then the secret file."""
    writes = [f"  printf '{var}=%s\\n' \"$(quote \"${{{var}-}}\")\"" for var in IDENTITY_VARS]
    literals = "".join(_env_line(entry["name"], entry["value"]) + "\n"
                       for entry in spec.get("env") or () if entry.get("value") is not None)
    secrets = [
        f'grep -q {shlex.quote(f"^{ref.name}=")} "$STATE/identity.env.new" || fail '
        + shlex.quote(f"secret env {ref.name} (key {ref.key} of Secret {ref.namespace}/"
                      f"{ref.secret}) was not provided in ${SECRET_ENV_FILE_VAR}")
        for ref in secret_env_refs(spec)
    ]
    file = f"${SECRET_ENV_FILE_VAR}"
    return "\n".join([
        'step identity "writing $STATE/identity.env"',
        "{",
        "  echo \"# This VM's identity, then its profile's env; written at boot, sh syntax.\"",
        *writes,
        '} > "$STATE/identity.env.new"',
        *([_heredoc('>> "$STATE/identity.env.new"', literals, "REEF_ENV_END")]
          if literals else []),
        "# Secret values are copied file to file: never echoed, never in this script.",
        f'if [ -n "${{{SECRET_ENV_FILE_VAR}-}}" ]; then',
        f'  [ -r "{file}" ] || fail "{SECRET_ENV_FILE_VAR} ({file}) is not readable"',
        f'  step identity "adding secret env from {file} (values not shown)"',
        f'  cat "{file}" >> "$STATE/identity.env.new"',
        f'  if [ -n "$(tail -c 1 "{file}")" ]; then echo >> "$STATE/identity.env.new"; fi',
        "fi",
        *secrets,
        'mv -f "$STATE/identity.env.new" "$STATE/identity.env"',
        "",
    ])


def _env_line(name: str, value: Any) -> str:
    """One `NAME=value` line of identity.env, value quoted for sh."""
    return f"{name}={shlex.quote(str(value))}"


_MODULES = """\
step modules "enabling: ${REEF_MODULES:-(none)}"
# One marker per enabled module, and markers of modules no longer in the DNA
# removed: unlike the seed's never-read "disable" markers, the set of markers
# is exactly the set of enabled modules.
enabled=' '
set -f
for module in $REEF_MODULES; do
  case $module in *[!a-z0-9-]*) fail "module name '$module' is not a DNS label" ;; esac
  enabled="$enabled$module "
  : > "$STATE/modules/$module.enabled"
done
set +f
for marker in "$STATE"/modules/*.enabled; do
  [ -e "$marker" ] || continue
  module=${marker##*/}
  module=${module%.enabled}
  case $enabled in
    *" $module "*) ;;
    *) rm -f "$marker"; step modules "disabled $module (no longer in the DNA)" ;;
  esac
done
"""

_CAPABILITIES = """\
step capabilities "granting: ${REEF_CAPABILITIES:-(none)}"
: > "$STATE/capabilities.new"
set -f
for capability in $REEF_CAPABILITIES; do
  case $capability in *[!a-z0-9-]*) fail "capability name '$capability' is not a DNS label" ;; esac
  printf '%s\\n' "$capability" >> "$STATE/capabilities.new"
done
set +f
mv -f "$STATE/capabilities.new" "$STATE/capabilities"
"""

_SERVICES = """\
# Services: a start step must start exactly the modules that have an .enabled
# marker. reef has no module services of its own yet, so boot only records them.
step services "nothing to start (enabled modules are recorded in $STATE/modules)"
"""


def _agent(spec: Mapping[str, Any]) -> str:
    """Install the pinned pi unless that version is already there (boots repeat)."""
    agent = _agent_settings(spec)
    if not agent["install"]:
        return 'step agent "install is off in the profile: pi comes with the image or host"\n'
    version = shlex.quote(agent["piVersion"])
    package = shlex.quote(f"{PI_PACKAGE}@{agent['piVersion']}")
    return f"""\
want={version}
step agent "want pi $want"
installed=
if command -v pi >/dev/null 2>&1; then installed=$(pi --version 2>&1 || true); fi
# The pinned version as a whole word (0.73.1 must not match 0.73.10), with or without a v.
case " $installed " in
  *[!0-9A-Za-z.-]"$want"[!0-9A-Za-z.-]*|*[!0-9A-Za-z.-]v"$want"[!0-9A-Za-z.-]*)
    step agent "pi $want is already installed" ;;
  *)
    command -v npm >/dev/null 2>&1 ||
      fail "npm is not installed: boot from an image with Node.js, or set agent.install: false"
    step agent "installing {PI_PACKAGE}@$want with npm"
    # umask 022: the boot's 077 would leave pi runnable by the installing user only.
    (umask 022 && npm install -g {package}) ;;
esac
"""


def _user_script(script: str) -> str:
    """Run the profile's bootScript last, as its own process.

    It is written to $STATE/boot-script.sh (kept for debugging) and run in a
    child process rather than inline: an `exit`, a syntax error, `set +e` or a
    trap in it cannot skip or change the generated steps or the final marker,
    and a `#!` line picks its interpreter. Without one it runs under `sh -eu`
    like the generated steps. It sees identity.env exported (identity, profile
    env and secret env) and starts in $HOME. A non-zero exit fails the boot
    with that status; the script's own output is then the last stdout lines.
    """
    if not script:
        return 'rm -f "$STATE/boot-script.sh"\nstep bootScript "none in the profile"\n'
    if not script.endswith("\n"):
        script += "\n"
    run = ('exec "$STATE/boot-script.sh"' if script.startswith("#!")
           else 'exec sh -eu "$STATE/boot-script.sh"')
    return f"""\
step bootScript "running the profile's bootScript"
{_heredoc('> "$STATE/boot-script.sh"', script, "REEF_BOOT_SCRIPT_END")}
chmod 700 "$STATE/boot-script.sh"
set +e
(
  set -a
  . "$STATE/identity.env"
  set +a
  cd "${{HOME:-$STATE}}"
  {run}
)
status=$?
set -e
[ "$status" -eq 0 ] || exit "$status"
"""


def _heredoc(redirect: str, text: str, end: str) -> str:
    """`cat` TEXT (ending in a newline) verbatim: a quoted here-document expands nothing.

    The end word gets underscores until no line of TEXT equals it, so any
    text (short of a NUL byte, which validation rejects) survives unchanged.
    """
    lines = set(text.split("\n"))
    while end in lines:
        end += "_"
    return f"cat {redirect} <<'{end}'\n{text}{end}"


_FINISH = f"""\
# The date, not the profile hash: the script cannot contain its own hash.
date -u +%Y-%m-%dT%H:%M:%SZ > "$STATE/boot.done"
echo {shlex.quote(DONE_LINE)}
"""
