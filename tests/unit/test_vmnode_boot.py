"""The boot command of a VM node: what the script is told, and where secrets go."""

from __future__ import annotations

import shlex

from reef_operator.vmnodes import boot
from reef_operator.vmnodes.profiles import ProfileView

PROFILE = ProfileView.from_body({"metadata": {"name": "agent"},
                                 "spec": {"provider": "Vers", "category": "Agent"}})


def test_the_script_is_told_who_it_is() -> None:
    env = boot.identity_env(
        "team-a", "worker", {"category": "Swarm", "parentRef": {"name": "boss"}},
        {"vmId": "vm-7", "lineage": {"root": "boss", "depth": 1},
         "dna": {"modules": ["git", "node"], "capabilities": ["net"]}}, PROFILE)
    assert env == {
        "REEF_VM_ID": "vm-7", "REEF_NODE": "worker", "REEF_NAMESPACE": "team-a",
        "REEF_CATEGORY": "Swarm", "REEF_PROFILE": "agent", "REEF_PARENT": "boss",
        "REEF_ROOT": "boss", "REEF_MODULES": "git node", "REEF_CAPABILITIES": "net"}


def test_a_root_node_without_lineage_yet_is_its_own_root_and_takes_the_profiles_category(
) -> None:
    env = boot.identity_env("team-a", "solo", {}, {}, PROFILE)
    assert (env["REEF_ROOT"], env["REEF_PARENT"], env["REEF_CATEGORY"]) == ("solo", "", "Agent")
    assert (env["REEF_VM_ID"], env["REEF_MODULES"]) == ("", "")


def test_the_command_exports_the_environment_and_runs_the_script_quoted() -> None:
    script = "echo \"it's $REEF_NODE\"\nexit 3"
    command = boot.boot_command(script, {"REEF_NODE": "a b", "REEF_ROOT": "x'y"},
                                with_secrets=False)
    exports, run = command.split("; ", 1)
    assert shlex.split(exports) == ["export", "REEF_NODE=a b", "REEF_ROOT=x'y"]
    assert shlex.split(run) == ["bash", "-c", script, "2>&1"]
    assert "secret.env" not in command


def test_secret_values_go_to_stdin_never_into_the_command() -> None:
    secrets = boot.secret_env_file([("API_TOKEN", "s3cr3t value"), ("PIN", "1'2")])
    assert [shlex.split(line) for line in secrets.splitlines()] == [
        ["API_TOKEN=s3cr3t value"], ["PIN=1'2"]]
    assert secrets.endswith("\n")
    command = boot.boot_command("true", {"REEF_NODE": "n"}, with_secrets=True)
    assert "s3cr3t" not in command
    assert command.startswith("umask 077; ")  # the file is written 0600
    assert 'cat > "$HOME/.reef/secret.env"' in command
    assert 'export REEF_SECRET_ENV_FILE="$HOME/.reef/secret.env"' in command


def test_no_secrets_is_no_file() -> None:
    assert boot.secret_env_file([]) == ""


def test_a_failure_shows_the_end_of_the_output_and_the_attempt() -> None:
    output = "\n".join(f"line {i}" for i in range(1, 21)) + "\n\n"
    message = boot.failure_message(2, output, attempt=1)
    assert message == "boot script failed (exit 2, attempt 1):\n" + "\n".join(
        f"line {i}" for i in range(13, 21))


def test_the_third_failed_attempt_needs_a_person() -> None:
    assert [boot.needs_a_person(attempt) for attempt in (1, 2, 3, 4)] == [
        False, False, True, True]
