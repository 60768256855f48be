"""Boot profiles: validation, DNA, the shipped defaults, and the boot script run for real.

The boot script tests run the rendered script with sh (dash) or bash in a
temporary HOME, with a PATH holding only the tools the script may use (and
fake `pi`/`npm` where the agent step is under test), so nothing is installed.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from reef_operator.profiles import (
    DEFAULT_PROFILES,
    DONE_LINE,
    Dna,
    ProfileError,
    SecretEnvRef,
    boot_environment,
    dna_diff,
    effective_dna,
    profile_hash,
    render_boot_script,
    render_secret_env_file,
    secret_env_refs,
    validate_profile,
)
from reef_operator.profiles.validation import secret_namespace_problems
from reef_operator.vmnodes.profiles import ProfileBook
from tests.conftest import REPO_ROOT

TOOLS = ("sh", "mkdir", "rm", "mv", "cat", "tail", "date", "sed", "grep", "chmod")
SECRET = "s3cret-value-do-not-print"
SPEC: dict[str, Any] = {
    "provider": "Vers",
    "category": "Agent",
    "modules": ["store", "cron"],
    "capabilities": ["vers-vm", "ssh"],
    "env": [
        {"name": "LOG_LEVEL", "value": "info"},
        {"name": "GREETING", "value": "it's a \"test\" $HOME `x`"},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"namespace": "reef-system",
                                                         "name": "tokens", "key": "token"}}},
    ],
    "agent": {"piVersion": "0.73.1", "install": False},
    "bootScript": "echo user-script-ran\n",
}


# --- running the script -------------------------------------------------------------------


@pytest.fixture
def tools(tmp_path: Path) -> Path:
    """A bin directory with only the tools the boot script needs (no npm, no pi)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    return bin_dir


def _fake(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def boot(tmp_path: Path, tools: Path, spec: dict[str, Any], *, modules: str = "store cron",
         capabilities: str = "vers-vm ssh", secret_file: Path | None = None,
         shell: str = "sh", parent: str = "", drop: str = "") -> subprocess.CompletedProcess[str]:
    """Run the rendered script as the operator would, with HOME/TMPDIR in tmp_path."""
    script = tmp_path / "boot.sh"
    script.write_text(render_boot_script(spec))
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = boot_environment(
        vm_id="vm-123", node="api", namespace="team", category="Agent", profile="full",
        parent=parent, root="api", dna=Dna(tuple(modules.split()), tuple(capabilities.split())),
        secret_env_file=str(secret_file) if secret_file else None,
    )
    env.pop(drop, None)
    env.update({"PATH": str(tools), "HOME": str(home), "TMPDIR": str(home)})
    shell_path = shutil.which(shell)
    assert shell_path
    return subprocess.run([shell_path, str(script)], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def state(tmp_path: Path) -> Path:
    return tmp_path / "home" / ".reef"


def write_secret_file(tmp_path: Path, text: str | None = None) -> Path:
    path = tmp_path / "secret.env"
    path.write_text(render_secret_env_file({"TOKEN": SECRET}) if text is None else text)
    path.chmod(0o600)
    return path


def source_identity(tmp_path: Path, *names: str) -> list[str]:
    """Values of variables after sourcing identity.env with sh, one per line."""
    printed = " ".join(f'"${name}"' for name in names)
    result = subprocess.run(
        ["sh", "-c", f'. "$1"; printf "%s\\n" {printed}', "sh",
         str(state(tmp_path) / "identity.env")],
        capture_output=True, text=True, check=True, env={"PATH": os.environ["PATH"]})
    return result.stdout.splitlines()


@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_a_boot_writes_identity_dna_and_the_done_marker(
        tmp_path: Path, tools: Path, shell: str) -> None:
    secret_file = write_secret_file(tmp_path)
    result = boot(tmp_path, tools, SPEC, secret_file=secret_file, shell=shell, parent="o'hara")
    assert result.returncode == 0, result.stderr
    lines = (state(tmp_path) / "identity.env").read_text().splitlines()
    assert [line.split("=", 1)[0] for line in lines if not line.startswith("#")] == [
        "REEF_VM_ID", "REEF_NODE", "REEF_NAMESPACE", "REEF_CATEGORY", "REEF_PROFILE",
        "REEF_PARENT", "REEF_ROOT", "REEF_MODULES", "REEF_CAPABILITIES",
        "LOG_LEVEL", "GREETING", "TOKEN",
    ]
    assert source_identity(tmp_path, "REEF_VM_ID", "REEF_NODE", "REEF_PARENT", "REEF_MODULES",
                           "GREETING", "TOKEN") == [
        "vm-123", "api", "o'hara", "store cron", "it's a \"test\" $HOME `x`", SECRET]
    assert sorted(p.name for p in (state(tmp_path) / "modules").iterdir()) == [
        "cron.enabled", "store.enabled"]
    assert (state(tmp_path) / "capabilities").read_text() == "vers-vm\nssh\n"
    assert (state(tmp_path) / "boot.done").read_text().strip()
    assert result.stdout.splitlines()[-1] == DONE_LINE
    for path in [state(tmp_path), *state(tmp_path).rglob("*")]:
        assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"


def test_every_step_reports_progress(tmp_path: Path, tools: Path) -> None:
    result = boot(tmp_path, tools, SPEC, secret_file=write_secret_file(tmp_path))
    steps = [line.split(":")[1].strip() for line in result.stdout.splitlines()
             if line.startswith("reef-boot: ") and line != DONE_LINE]
    assert list(dict.fromkeys(steps)) == [
        "start", "identity", "modules", "capabilities", "services", "agent", "bootScript"]


def test_a_second_boot_with_fewer_modules_disables_the_rest(tmp_path: Path, tools: Path) -> None:
    secret_file = write_secret_file(tmp_path)
    assert boot(tmp_path, tools, SPEC, modules="store cron docs",
                secret_file=secret_file).returncode == 0
    (state(tmp_path) / "boot.done").write_text("stale")
    result = boot(tmp_path, tools, SPEC, modules="store", capabilities="",
                  secret_file=secret_file)
    assert result.returncode == 0, result.stderr
    assert [p.name for p in (state(tmp_path) / "modules").iterdir()] == ["store.enabled"]
    assert "reef-boot: modules: disabled cron (no longer in the DNA)" in result.stdout
    assert (state(tmp_path) / "capabilities").read_text() == ""
    assert (state(tmp_path) / "boot.done").read_text() != "stale"


def test_secret_values_reach_identity_env_but_never_the_script_or_output(
        tmp_path: Path, tools: Path) -> None:
    spec = {**SPEC, "bootScript": '[ "${#TOKEN}" = ' + str(len(SECRET)) + " ] && echo token-ok\n"}
    secret_file = write_secret_file(tmp_path, f"TOKEN={SECRET}")  # no final newline
    result = boot(tmp_path, tools, spec, secret_file=secret_file)
    assert result.returncode == 0, result.stderr
    assert SECRET not in render_boot_script(spec)
    assert SECRET not in result.stdout + result.stderr
    assert "token-ok" in result.stdout, "the bootScript sees the secret as a variable"
    assert (state(tmp_path) / "identity.env").read_text().endswith(f"TOKEN={SECRET}\n")


def test_a_declared_secret_that_was_not_provided_fails_the_boot(
        tmp_path: Path, tools: Path) -> None:
    result = boot(tmp_path, tools, SPEC)
    assert result.returncode != 0
    assert "secret env TOKEN (key token of Secret reef-system/tokens) was not provided" in (
        result.stderr)
    assert "reef-boot: failed in step identity" in result.stderr
    assert not (state(tmp_path) / "boot.done").exists()


def test_the_user_script_runs_last_and_an_exit_in_it_cannot_skip_the_marker(
        tmp_path: Path, tools: Path) -> None:
    spec = {**SPEC, "bootScript": "echo user-script-ran\nexit 0\necho never\n"}
    result = boot(tmp_path, tools, spec, secret_file=write_secret_file(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-2:] == ["user-script-ran", DONE_LINE]
    assert lines[-3].startswith("reef-boot: bootScript:")
    assert "never" not in result.stdout
    assert (state(tmp_path) / "boot.done").exists()


def test_a_failing_user_script_fails_the_boot_with_its_output_last(
        tmp_path: Path, tools: Path) -> None:
    spec = {**SPEC, "bootScript": "echo cloning repo\nfalse\necho unreachable\n"}
    result = boot(tmp_path, tools, spec, secret_file=write_secret_file(tmp_path))
    assert result.returncode != 0
    assert result.stdout.splitlines()[-1] == "cloning repo"
    assert "unreachable" not in result.stdout
    assert "reef-boot: failed in step bootScript" in result.stderr
    assert not (state(tmp_path) / "boot.done").exists()

    spec = {**SPEC, "bootScript": "exit 3"}
    assert boot(tmp_path, tools, spec, secret_file=write_secret_file(tmp_path)).returncode == 3


def test_the_user_script_is_verbatim_and_may_choose_its_interpreter(
        tmp_path: Path, tools: Path) -> None:
    script = ("#!/bin/bash\n[[ -n $REEF_VM_ID ]] && echo \"bash sees $REEF_VM_ID in $PWD\"\n"
              "cat <<'EOF'\nREEF_BOOT_SCRIPT_END\n$HOME 'quoted' \\ back\nEOF")
    result = boot(tmp_path, tools, {**SPEC, "bootScript": script},
                  secret_file=write_secret_file(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (state(tmp_path) / "boot-script.sh").read_text() == script + "\n"
    assert f"bash sees vm-123 in {tmp_path / 'home'}" in result.stdout
    assert "REEF_BOOT_SCRIPT_END\n$HOME 'quoted' \\ back\n" in result.stdout


def test_missing_identity_fails_with_the_variable_named(tmp_path: Path, tools: Path) -> None:
    result = boot(tmp_path, tools, SPEC, drop="REEF_VM_ID")
    assert result.returncode != 0
    assert "REEF_VM_ID is not set" in result.stderr
    assert not state(tmp_path).exists()


def test_a_module_name_that_is_not_a_label_is_refused(tmp_path: Path, tools: Path) -> None:
    result = boot(tmp_path, tools, SPEC, modules="store ../../etc",
                  secret_file=write_secret_file(tmp_path))
    assert result.returncode != 0
    assert "module name '../../etc' is not a DNS label" in result.stderr


# --- the agent step, with fake pi and npm ---------------------------------------------------


def _agent_spec(version: str = "0.73.1") -> dict[str, Any]:
    return {**SPEC, "agent": {"piVersion": version, "install": True}, "env": [],
            "bootScript": ""}


@pytest.mark.parametrize("installed", ["0.73.1", "pi v0.73.1"])
def test_the_pinned_pi_already_installed_is_kept(
        tmp_path: Path, tools: Path, installed: str) -> None:
    _fake(tools, "pi", f"echo '{installed}'")
    _fake(tools, "npm", f"echo npm-called >> {tmp_path}/npm.log")
    result = boot(tmp_path, tools, _agent_spec())
    assert result.returncode == 0, result.stderr
    assert "reef-boot: agent: pi 0.73.1 is already installed" in result.stdout
    assert not (tmp_path / "npm.log").exists()


@pytest.mark.parametrize("installed", ["", "0.73.10", "0.72.0"])
def test_another_pi_is_replaced_by_the_pinned_one(
        tmp_path: Path, tools: Path, installed: str) -> None:
    if installed:
        _fake(tools, "pi", f"echo '{installed}'")
    _fake(tools, "npm", f'echo "$* umask=$(umask)" >> {tmp_path}/npm.log')
    result = boot(tmp_path, tools, _agent_spec())
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "npm.log").read_text() == (
        "install -g @mariozechner/pi-coding-agent@0.73.1 umask=0022\n")


def test_no_npm_fails_and_says_what_to_change(tmp_path: Path, tools: Path) -> None:
    result = boot(tmp_path, tools, _agent_spec())
    assert result.returncode != 0
    assert "npm is not installed" in result.stderr
    assert "agent.install: false" in result.stderr
    assert "reef-boot: failed in step agent" in result.stderr


# --- rendering and hashing ------------------------------------------------------------------


def _reordered(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _reordered(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reordered(item) for item in value]
    return value


def test_rendering_is_deterministic_and_ignores_key_order() -> None:
    assert render_boot_script(SPEC) == render_boot_script(copy.deepcopy(SPEC))
    assert render_boot_script(_reordered(SPEC)) == render_boot_script(SPEC)
    digest = profile_hash(SPEC)
    assert digest.startswith("sha256:") and len(digest) == len("sha256:") + 64
    assert profile_hash(_reordered(SPEC)) == digest


def test_defaults_hash_the_same_written_or_omitted() -> None:
    explicit = {"provider": "Vers", "category": "Agent",
                "agent": {"piVersion": "0.73.1", "install": True}}
    assert profile_hash({}) == profile_hash(explicit)
    assert profile_hash({}) == profile_hash({**explicit, "bootTimeoutSeconds": 1200})


@pytest.mark.parametrize("change", [
    {"provider": "Local"},
    {"category": "Swarm"},
    {"source": {"tag": "golden"}},
    {"resources": {"vcpu": 4}},
    {"modules": ["store"]},
    {"modules": ["cron", "store"]},
    {"capabilities": ["ssh"]},
    {"env": [{"name": "LOG_LEVEL", "value": "debug"}]},
    {"env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {
        "namespace": "reef-system", "name": "tokens", "key": "other"}}}]},
    {"agent": {"piVersion": "0.74.0", "install": False}},
    {"agent": {"piVersion": "0.73.1", "install": True}},
    {"bootScript": "echo changed\n"},
])
def test_the_hash_changes_when_the_spec_does(change: dict[str, Any]) -> None:
    assert profile_hash({**SPEC, **change}) != profile_hash(SPEC)


def test_the_script_quotes_every_spec_value() -> None:
    script = render_boot_script({"env": [{"name": "X", "value": "a'b; rm -rf /"}]})
    assert "X='a'\"'\"'b; rm -rf /'" in script


def test_invalid_specs_are_not_rendered() -> None:
    with pytest.raises(ProfileError) as error:
        render_boot_script({"bootScript": "echo\x00"})
    assert error.value.problems == validate_profile({"bootScript": "echo\x00"})


def test_secret_helpers() -> None:
    assert secret_env_refs(SPEC) == [SecretEnvRef("TOKEN", "reef-system", "tokens", "token")]
    assert render_secret_env_file({"A": "plain", "B": "it's"}) == "A=plain\nB='it'\"'\"'s'\n"
    with pytest.raises(ValueError, match="not a valid variable name"):
        render_secret_env_file({"1A": "x"})


def test_boot_environment_carries_the_effective_dna() -> None:
    env = boot_environment(vm_id="v", node="n", namespace="ns", category="Swarm",
                           profile="swarm", parent="p", root="r",
                           dna=Dna(("store", "cron"), ()), secret_env_file="/run/s",
                           state_dir="/srv/reef")
    assert env["REEF_MODULES"] == "store cron"
    assert env["REEF_CAPABILITIES"] == ""
    assert env["REEF_SECRET_ENV_FILE"] == "/run/s"
    assert env["REEF_STATE_DIR"] == "/srv/reef"
    assert "REEF_SECRET_ENV_FILE" not in boot_environment(
        vm_id="v", node="n", namespace="ns", category="Swarm", profile="swarm", parent="",
        root="r", dna=Dna())


# --- validation -----------------------------------------------------------------------------


def test_a_valid_spec_has_no_problems() -> None:
    assert validate_profile(SPEC) == []
    assert validate_profile({}) == []
    assert validate_profile({"provider": "Local", "source": {"commitId": "snap-1"}}) == []


@pytest.mark.parametrize(("spec", "expected"), [
    ({"env": [{"name": "A"}]},
     "env[0] (A): set value (a literal) or valueFrom.secretKeyRef {namespace, name, key}"),
    ({"env": [{"name": "A", "value": "x", "valueFrom": {"secretKeyRef": {
        "namespace": "n", "name": "s", "key": "k"}}}]},
     "env[0] (A): set only one of value and valueFrom, not both"),
    ({"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s"}}}]},
     "env[0] (A): valueFrom.secretKeyRef needs namespace, key"),
    ({"env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]},
     "env[1] (A): A is listed more than once: keep one entry"),
    ({"env": [{"name": "REEF_VM_ID", "value": "x"}]},
     "env[0] (REEF_VM_ID): names starting with REEF_ are reserved"),
    ({"env": [{"name": "A", "value": "a\x00b"}]},
     "env[0] (A): value contains a NUL byte"),
    ({"provider": "Local", "source": {"tag": "golden"}},
     "source.tag: the Local provider boots from its own snapshots, not Vers images: "
     "use source.commitId"),
    ({"provider": "Local", "source": {"ref": "repo:tag"}},
     "source.ref: the Local provider boots from its own snapshots"),
    ({"bootScript": "echo hi\x00"}, "bootScript: contains a NUL byte"),
])
def test_problems_name_the_field_and_what_to_change(spec: dict[str, Any], expected: str) -> None:
    problems = validate_profile(spec)
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems[0]


def _secret_env(namespace: str) -> dict[str, Any]:
    return {"env": [{"name": "LITERAL", "value": "x"}, {"name": "KEY", "valueFrom": {
        "secretKeyRef": {"namespace": namespace, "name": "keys", "key": "k"}}}]}


def test_a_profile_reads_secrets_only_from_the_operators_namespace() -> None:
    assert secret_namespace_problems(_secret_env("reef-system"), "reef-system") == []
    assert secret_namespace_problems(_secret_env("team-a"), "reef-system") == [
        "env[1] (KEY): valueFrom.secretKeyRef.namespace is 'team-a', but a BootProfile reads "
        "Secrets only from the operator's namespace 'reef-system': copy the Secret there and "
        "set namespace: reef-system"]
    assert secret_namespace_problems(_secret_env("ops"), "ops") == []


def test_the_operator_sees_a_profile_reading_elsewhere_as_invalid() -> None:
    body = {"metadata": {"name": "p"}, "spec": _secret_env("team-a")}
    view = ProfileBook(secret_namespace="reef-system").upsert(body)
    assert view.problems and "'team-a'" in view.problems[0]
    assert view.script == ""
    assert ProfileBook(secret_namespace="team-a").upsert(body).problems == ()


def test_a_vers_profile_may_use_tags() -> None:
    assert validate_profile({"provider": "Vers", "source": {"tag": "golden"}}) == []


# --- DNA ------------------------------------------------------------------------------------


def test_effective_dna_merges_without_duplicates_profile_first() -> None:
    dna = effective_dna(["store", "cron"], ["ssh"], ["docs", "store", "docs"], None)
    assert dna == Dna(("store", "cron", "docs"), ("ssh",))
    assert effective_dna(None, None, None, None) == Dna()
    assert Dna.from_status(dna.to_status()) == dna
    assert dna.to_status() == {"modules": ["store", "cron", "docs"], "capabilities": ["ssh"]}
    assert Dna.from_status(None) == Dna()


def test_dna_diff_is_from_a_towards_b() -> None:
    a = Dna(("store", "cron", "docs"), ("ssh",))
    b = Dna(("store", "registry"), ("ssh", "vers-vm"))
    assert dna_diff(a, b) == {
        "modules": {"added": ["registry"], "removed": ["cron", "docs"]},
        "capabilities": {"added": ["vers-vm"], "removed": []},
    }
    assert dna_diff(a, a) == {"modules": {"added": [], "removed": []},
                              "capabilities": {"added": [], "removed": []}}


# --- shipped defaults -----------------------------------------------------------------------


def test_the_shipped_yaml_equals_the_default_profiles() -> None:
    files = sorted((REPO_ROOT / "manifests" / "profiles").glob("*.yaml"))
    assert {f.stem for f in files} == set(DEFAULT_PROFILES)
    for path in files:
        assert yaml.safe_load(path.read_text()) == DEFAULT_PROFILES[path.stem], path.name
        assert path.read_text().startswith("# "), f"{path.name} needs a header comment"


def test_the_default_profiles_are_the_seeds() -> None:
    spec = {name: profile["spec"] for name, profile in DEFAULT_PROFILES.items()}
    assert spec["full"]["capabilities"] == ["vers-vm", "vers-vm-copy", "vers-swarm", "ssh"]
    assert len(spec["full"]["modules"]) == 8
    assert {name: s["category"] for name, s in spec.items()} == {
        "full": "Agent", "swarm": "Swarm", "lightweight": "Swarm", "infra": "Infra",
        "local": "Agent"}
    assert all("source" not in s for s in spec.values())
    assert spec["local"] == {"provider": "Local", "category": "Agent", "modules": ["store"],
                             "capabilities": [], "agent": {"install": False}}


@pytest.mark.parametrize("name", sorted(DEFAULT_PROFILES))
def test_each_default_profile_is_valid_and_renders(name: str) -> None:
    profile = DEFAULT_PROFILES[name]
    assert profile["metadata"]["name"] == name
    assert validate_profile(profile["spec"]) == []
    assert profile_hash(profile["spec"]).startswith("sha256:")
