"""A delegating lieutenant's identity (spec.delegation): made, handed to its agent, revoked.

The operator makes, in the lieutenant's namespace and owned by the lieutenant (so they go
with it): a ServiceAccount `reef-delegate-<name>`, a Role with the rights of
`api/delegation.py` DELEGATE_RULES, a RoleBinding of the two, and a Secret the tokens are
bound to. A token comes from the TokenRequest API, bound to that Secret and valid for
TOKEN_SECONDS; the runner asks for a new one when ROTATE_AFTER of it has passed. The token
travels on a command's stdin into a 0600 file on the VM; the kubeconfig beside it names
that file (`tokenFile:`), so kubectl and the pi package reread it after each rotation.

Revocation deletes the bound Secret (every token bound to it stops working at once) and
the ServiceAccount, Role and RoleBinding: when the lieutenant is destroyed or gives up
spec.delegation. A deleted lieutenant's go with it (garbage collector).

The namespace's admin consents to delegation with the label reef.vers.sh/delegation:
enabled; without it no identity is made (DelegationNotEnabled). The label also selects
the webhook that checks every write of a delegate (controllers/delegation_admission.py).
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml
from kubernetes.client.exceptions import ApiException

from reef_operator.agent import extensions
from reef_operator.agent.session import SessionError
from reef_operator.api.delegation import DELEGATE_RULES, service_account
from reef_operator.constants import (
    API_VERSION,
    DELEGATION_ENABLED,
    LABEL_DELEGATE_OF,
    LABEL_DELEGATION,
)
from reef_operator.kube.api import KubeApi
from reef_operator.lieutenants.inputs import InputError
from reef_operator.providers.base import Shell
from reef_operator.providers.errors import ShellError
from reef_operator.secret import Secret

TOKEN_SECONDS = 600          # the shortest lifetime the TokenRequest API grants
ROTATE_AFTER = 0.5           # of TOKEN_SECONDS: a new token long before the old one ends
KUBE_DIR = "$HOME/.reef/kube"


class DelegationNotEnabled(InputError):
    """spec.delegation in a namespace whose admin has not enabled it."""

    reason = "DelegationNotEnabled"


def wants_delegation(spec: Mapping[str, Any]) -> bool:
    return spec.get("delegation") is not None


def kubeconfig(server: str, ca: bytes | None, namespace: str, token_file: str) -> str:
    """The kubeconfig the agent's tools use: one context in the lieutenant's namespace,
    its user reading the token from `token_file` on every request (rotation)."""
    cluster: dict[str, Any] = {"server": server}
    if ca is None:
        cluster["insecure-skip-tls-verify"] = True
    else:
        cluster["certificate-authority-data"] = base64.b64encode(ca).decode()
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "reef",
        "clusters": [{"name": "reef", "cluster": cluster}],
        "users": [{"name": "delegate", "user": {"tokenFile": token_file}}],
        "contexts": [{"name": "reef", "context": {"cluster": "reef", "user": "delegate",
                                                  "namespace": namespace}}],
    }, sort_keys=False)


def _owned(lieutenant: Mapping[str, Any]) -> dict[str, Any]:
    meta = lieutenant.get("metadata") or {}
    name, namespace = str(meta.get("name")), str(meta.get("namespace"))
    return {"name": service_account(name), "namespace": namespace,
            "labels": {LABEL_DELEGATE_OF: name},
            "ownerReferences": [{"apiVersion": API_VERSION, "kind": "Lieutenant",
                                 "name": name, "uid": meta.get("uid")}]}


async def _create(call: Any, *args: Any) -> None:
    try:
        await asyncio.to_thread(call, *args)
    except ApiException as error:
        if error.status != 409:     # made by an earlier pass
            raise


async def _delete(call: Any, name: str, namespace: str) -> None:
    try:
        await asyncio.to_thread(call, name, namespace)
    except ApiException as error:
        if error.status != 404:
            raise


class DelegateIdentity:
    """One delegating lieutenant's identity, as the runner holds it while attached."""

    def __init__(self, kube: KubeApi, lieutenant: Mapping[str, Any], server: str | None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        meta = lieutenant.get("metadata") or {}
        self.kube = kube
        self.lieutenant = lieutenant
        self.namespace, self.name = str(meta.get("namespace")), str(meta.get("name"))
        self.account = service_account(self.name)
        self.server = server
        self.clock = clock
        self.issued_at: float | None = None
        self.home = ""

    async def ensure(self) -> None:
        """The namespace allows it; the ServiceAccount, Role, RoleBinding and Secret exist."""
        labels = await self.kube.read_namespace_labels(self.namespace)
        if labels.get(LABEL_DELEGATION) != DELEGATION_ENABLED:
            raise DelegationNotEnabled(
                f"spec.delegation is set but namespace {self.namespace} does not carry the "
                f"label {LABEL_DELEGATION}: {DELEGATION_ENABLED}; its admin must set it "
                f"(kubectl label namespace {self.namespace} "
                f"{LABEL_DELEGATION}={DELEGATION_ENABLED}) or remove spec.delegation")
        meta = _owned(self.lieutenant)
        core, rbac, ns = self.kube.core, self.kube.rbac, self.namespace
        await _create(core.create_namespaced_service_account, ns,
                      {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta})
        await _create(rbac.create_namespaced_role, ns, {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta,
            "rules": DELEGATE_RULES})
        await _create(rbac.create_namespaced_role_binding, ns, {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                        "name": self.account},
            "subjects": [{"kind": "ServiceAccount", "name": self.account, "namespace": ns}]})
        # An Opaque Secret with no data: only the object the tokens are bound to.
        await _create(core.create_namespaced_secret, ns, {
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": meta})

    async def token(self) -> Secret:
        """A new token of the ServiceAccount, bound to the Secret, valid TOKEN_SECONDS."""
        core = self.kube.core
        bound: Any = await asyncio.to_thread(core.read_namespaced_secret, self.account,
                                             self.namespace)
        request: Any = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {
            "audiences": [], "expirationSeconds": TOKEN_SECONDS,
            "boundObjectRef": {"apiVersion": "v1", "kind": "Secret", "name": self.account,
                               "uid": bound.metadata.uid}}}
        answer: Any = await asyncio.to_thread(core.create_namespaced_service_account_token,
                                              self.account, self.namespace, request)
        return Secret(str(answer.status.token))

    def due(self) -> bool:
        return self.issued_at is None or \
            self.clock() - self.issued_at > TOKEN_SECONDS * ROTATE_AFTER

    async def hand_over(self, shell: Shell) -> dict[str, str]:
        """Write a fresh token (and the kubeconfig, the first time) on the VM; the
        environment pi needs to use them."""
        if not self.home:
            self.home = (await _run(shell, 'printf %s "$HOME"', None)).strip()
            server, ca = self.kube.apiserver()
            config = kubeconfig(self.server or server, ca, self.namespace,
                                f"{self.home}/.reef/kube/token")
            await _write(shell, "config", config)
        await self.rotate(shell)
        return {"KUBECONFIG": f"{self.home}/.reef/kube/config"}

    async def rotate(self, shell: Shell) -> None:
        token = await self.token()
        await _write(shell, "token", token.reveal())
        self.issued_at = self.clock()


async def _write(shell: Shell, name: str, content: str) -> None:
    """A 0600 file under KUBE_DIR, replaced whole (a reader never sees half a token)."""
    path = f"{KUBE_DIR}/{name}"
    await _run(shell, f'umask 077 && mkdir -p "{KUBE_DIR}" && cat > "{path}.new" && '
                      f'mv "{path}.new" "{path}"', content)


async def _run(shell: Shell, command: str, stdin: str | None) -> str:
    try:
        result = await shell.run(command, stdin=stdin, within=30)
    except ShellError as error:
        raise SessionError(f"write the delegate's kubeconfig: {error}") from None
    if result.exit_status != 0:
        raise SessionError(f"write the delegate's kubeconfig failed (exit "
                           f"{result.exit_status}): {result.stderr.strip()[-300:]}")
    return result.stdout


async def install_tools(shell: Shell, package: Path | None) -> None:
    """The pi package (REEF_PI_PACKAGE) under pi's extensions on the VM, so the agent has
    the lieutenant tools; before pi starts, which loads it."""
    if package is None:
        return
    try:
        packed = await asyncio.to_thread(extensions.archive, package)
    except (OSError, ValueError) as error:
        raise SessionError(f"REEF_PI_PACKAGE: {error}") from None
    await extensions.install(shell, package.name, packed)


async def revoke(kube: KubeApi, namespace: str, name: str) -> None:
    """Every token of the lieutenant's agent stops working; its identity is gone."""
    account = service_account(name)
    await _delete(kube.core.delete_namespaced_secret, account, namespace)
    await _delete(kube.core.delete_namespaced_service_account, account, namespace)
    await _delete(kube.rbac.delete_namespaced_role_binding, account, namespace)
    await _delete(kube.rbac.delete_namespaced_role, account, namespace)
