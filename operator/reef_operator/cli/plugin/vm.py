"""`exec` and `cp` on a lieutenant's VM, through the provider path the operator uses.

The VM is found from the lieutenant's VMNode (its id, the provider label and
the pinned host key); the shell comes from a provider built by the operator's
own factory from the operator's configuration, so the host key is checked
against the one the operator pinned, and a Local VM's lock is the operator's
too (a command waits for the operator's pause, resume, snapshot or delete).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shlex
import tarfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from reef_operator.cli.plugin.cluster import Cluster, Obj, PluginError
from reef_operator.constants import LABEL_PROVIDER
from reef_operator.kube.conditions import find_condition
from reef_operator.providers.base import CommandResult, Provider, Shell
from reef_operator.providers.errors import ProviderError


class NoProviderAccess(PluginError):
    """This machine cannot reach the VM as the operator does: no Vers API key, or a Local
    VM whose directory is elsewhere (the message says which)."""


def target(cluster: Cluster, name: str) -> tuple[str, Obj]:
    """(what to call it, the VMNode) for `NAME` (a lieutenant) or `vmnode/NAME`."""
    if name.startswith(("vmnode/", "vmnodes/", "vmn/")):
        node_name = name.split("/", 1)[1]
        return f"vmnode {node_name}", cluster.get("vmnodes", node_name)
    lieutenant = cluster.get("lieutenants", name)
    status = lieutenant.get("status") or {}
    desired = (lieutenant.get("spec") or {}).get("state", "Running")
    if desired != "Running" or status.get("phase") in ("Paused", "Destroyed"):
        shown = status.get("phase") or desired
        raise PluginError(f"lieutenant {name} is not running ({shown}): "
                          + how_to_wake(shown, find_condition(lieutenant, "Ready")))
    node_name = str(status.get("vmNodeName") or "")
    if not node_name:
        raise PluginError(f"lieutenant {name} has no VM yet (phase "
                          f"{status.get('phase') or 'Starting'}): wait for it with "
                          f"`kubectl reef wait {name} --for=condition=Ready`")
    return f"lieutenant {name}", cluster.get("vmnodes", node_name)


def how_to_wake(phase: str, ready: Mapping[str, Any]) -> str:
    """What brings a lieutenant that is not running back, by why it is not."""
    reason = ready.get("reason")
    if reason == "IdlePaused":
        return "it is paused for idleness; send it a task (kubectl reef send) to wake it"
    if reason == "BudgetExhausted":
        return f"{ready.get('message') or 'its budget is spent'}"
    return "resume it first" if phase == "Paused" else "its VM is gone"


@contextlib.asynccontextmanager
async def shell_on(cluster: Cluster, what: str, node: Obj) -> AsyncIterator[Shell]:
    """A shell on the node's VM, for the block."""
    running_vm(what, node)
    async with provider_for(cluster, what, node) as provider:
        yield await shell_of(provider, what, node)


@contextlib.asynccontextmanager
async def provider_for(cluster: Cluster, what: str, node: Obj) -> AsyncIterator[Provider]:
    """The provider of the node's VM as the operator's configuration builds it, for the
    block; NoProviderAccess when this machine cannot reach the VM."""
    from reef_operator.config import ConfigError, load_config
    from reef_operator.providers import factory

    status = node.get("status") or {}
    provider_name = (node["metadata"].get("labels") or {}).get(LABEL_PROVIDER, "vers")
    if provider_name not in factory.NAMES:
        raise PluginError(f"{what} runs on provider {provider_name!r}, which this plugin "
                          "does not know")
    local_root = None
    if provider_name == "local":
        address = status.get("address")
        if not address or not await asyncio.to_thread(Path(address).is_dir):
            raise NoProviderAccess(f"{what} runs on the Local provider at {address or '?'}, "
                                   "which is not on this machine: run the plugin where the "
                                   "operator runs")
        # The VM's directory, as the operator recorded it, is under the operator's root.
        local_root = Path(address).parent
    async with contextlib.AsyncExitStack() as stack:
        try:
            provider = await stack.enter_async_context(factory.opened(
                provider_name, load_config(None, _readable_core(cluster)),
                local_root=local_root))
        except ConfigError as error:
            if provider_name == "vers":
                raise NoProviderAccess(f"cannot reach Vers VMs: {error}") from None
            raise PluginError(f"cannot read the operator's configuration: {error}") from None
        yield provider


async def shell_of(provider: Provider, what: str, node: Obj) -> Shell:
    """A shell on the node's running VM, its host key checked against the pinned one."""
    status = node.get("status") or {}
    return await provider.shell(running_vm(what, node),
                                status.get("hostKeyFingerprint") or None)


def running_vm(what: str, node: Obj) -> str:
    """The node's VM id; an error unless the VM runs."""
    status = node.get("status") or {}
    vm_id = status.get("vmId")
    if not vm_id or status.get("vmState") not in ("running", None):
        raise PluginError(f"{what} has no running VM (vm {vm_id or 'not created'}, state "
                          f"{status.get('vmState') or 'unknown'})")
    return str(vm_id)


def _readable_core(cluster: Cluster) -> Any:
    """The cluster's config sources if this user may read them, else none (env and file)."""
    from kubernetes.client.exceptions import ApiException

    from reef_operator.constants import OPERATOR_NAMESPACE

    try:
        cluster.core.read_namespaced_config_map("reef-operator-config", OPERATOR_NAMESPACE)
    except ApiException as error:
        if error.status == 403:
            return None
    return cluster.core


async def run(cluster: Cluster, name: str, command: list[str], within: float) -> CommandResult:
    what, node = target(cluster, name)
    line = command[0] if len(command) == 1 else shlex.join(command)
    try:
        async with shell_on(cluster, what, node) as shell:
            return await shell.run(line, within=within)
    except ProviderError as error:
        raise PluginError(f"exec on {what}: {error}") from None


async def copy(cluster: Cluster, source: str, destination: Path) -> str:
    """`NAME:PATH` → a local file or directory (tar over the shell, as kubectl cp does)."""
    name, _, remote = source.partition(":")
    if not name or not remote:
        raise PluginError(f"cp {source!r}: expected NAME:PATH", exit_code=2)
    what, node = target(cluster, name)
    remote_path = remote.rstrip("/") or "/"
    parent, base = os.path.split(remote_path)
    buffer = io.BytesIO()
    try:
        async with shell_on(cluster, what, node) as shell:
            check = await shell.run(f"test -e {shlex.quote(remote_path)}", within=30)
            if not check.ok:
                raise PluginError(f"{remote_path}: no such file or directory on {what}")
            stream = await shell.stream(
                f"tar -C {shlex.quote(parent or '/')} -cf - -- {shlex.quote(base)} 2>/dev/null")
            try:
                while chunk := await stream.read(1 << 16):
                    buffer.write(chunk)
            finally:
                stream.close()
    except ProviderError as error:
        raise PluginError(f"cp from {what}: {error}") from None
    buffer.seek(0)
    return _extract(buffer, base, destination)


def _extract(archive: io.BytesIO, base: str, destination: Path) -> str:
    with tarfile.open(fileobj=archive, mode="r:") as tar:
        members = tar.getmembers()
        if not members:
            raise PluginError(f"nothing copied from {base} (not readable?)")
        # kubectl cp semantics: into an existing directory keeps the name, else renames.
        into_dir = destination.is_dir()
        target_root = destination if into_dir else destination.parent
        for member in members:
            if not into_dir:
                member.name = destination.name + member.name[len(base):]
        target_root.mkdir(parents=True, exist_ok=True)
        tar.extractall(target_root, members=members, filter="data")
    copied = destination / base if into_dir else destination
    files = sum(1 for m in members if m.isfile())
    return f"copied {files} file(s) to {copied}"
