"""A delegating lieutenant's token on its VM (lieutenants/delegation.py): written through
stdin into a 0600 file beside a kubeconfig that names it, and replaced before it ends."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

from reef_operator.kube.api import KubeApi
from reef_operator.lieutenants import delegation
from reef_operator.providers.base import CommandResult, Shell


@dataclass
class _Core:
    issued: list[dict[str, Any]] = field(default_factory=list)

    def read_namespaced_secret(self, name: str, namespace: str) -> Any:
        return SimpleNamespace(metadata=SimpleNamespace(uid="secret-uid"))

    def create_namespaced_service_account_token(self, name: str, namespace: str,
                                                body: dict[str, Any]) -> Any:
        self.issued.append({"account": name, **body["spec"]})
        return SimpleNamespace(status=SimpleNamespace(token=f"tok-{len(self.issued)}-" + "x" * 40))


class _Kube:
    def __init__(self) -> None:
        self.core = _Core()

    def apiserver(self) -> tuple[str, bytes | None]:
        return "https://127.0.0.1:6443", b"CA"


class _Shell:
    def __init__(self) -> None:
        self.commands: list[tuple[str, str | None]] = []

    async def run(self, command: str, *, stdin: str | None = None,
                  within: float = 30) -> CommandResult:
        self.commands.append((command, stdin))
        return CommandResult(0, "/home/vm" if "HOME" in command else "", "")


LEAD = {"metadata": {"name": "lead", "namespace": "team-a", "uid": "u1"},
        "spec": {"delegation": {"maxChildren": 1}}}


async def test_the_token_travels_on_stdin_and_a_new_one_replaces_it_when_due() -> None:
    kube, shell = _Kube(), _Shell()
    now = [1000.0]
    identity = delegation.DelegateIdentity(cast(KubeApi, kube), LEAD, None, lambda: now[0])
    env = await identity.hand_over(cast(Shell, shell))
    assert env == {"KUBECONFIG": "/home/vm/.reef/kube/config"}
    [request] = kube.core.issued
    assert request == {"account": "reef-delegate-lead", "audiences": [],
                       "expirationSeconds": delegation.TOKEN_SECONDS,
                       "boundObjectRef": {"apiVersion": "v1", "kind": "Secret",
                                          "name": "reef-delegate-lead", "uid": "secret-uid"}}
    writes = [(command, stdin) for command, stdin in shell.commands if stdin]
    assert "tokenFile: /home/vm/.reef/kube/token" in writes[0][1]
    assert writes[1][1] == "tok-1-" + "x" * 40
    for command, _ in writes:
        assert "umask 077" in command and "tok-" not in command
    assert not identity.due()
    now[0] += delegation.TOKEN_SECONDS * delegation.ROTATE_AFTER + 1
    assert identity.due()
    await identity.rotate(cast(Shell, shell))
    assert shell.commands[-1][1] == "tok-2-" + "x" * 40
    assert shell.commands[-1][0].endswith('mv "$HOME/.reef/kube/token.new" '
                                          '"$HOME/.reef/kube/token"')
    assert not identity.due()
