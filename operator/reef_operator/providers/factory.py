"""The providers the operator's configuration describes, built in one place.

The operator's startup and `kubectl reef exec/cp` both build their providers
here, so both reach a VM the same way: for Vers the same API client, SSH
settings, rate limit and host-key pinning; for Local the same per-VM locks,
which hold across processes, so the plugin waits for the operator's pause,
resume, snapshot or delete of the same VM.

This is the one module outside providers/vers and providers/local that knows
both; everything else sees `Provider` and the errors of providers/errors.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from reef_operator.config import OperatorConfig
from reef_operator.providers.base import Provider
from reef_operator.providers.local.provider import LocalProvider
from reef_operator.providers.ratelimit import RateLimiter
from reef_operator.providers.vers.client import VersClient
from reef_operator.providers.vers.provider import VersProvider
from reef_operator.providers.vers.ssh import SshSettings, VersConnector
from reef_operator.secret import Secret


@dataclass(frozen=True)
class Providers:
    """Providers by name (a VMNode's provider label), and what to close when done."""

    by_name: Mapping[str, Provider]
    closers: tuple[Callable[[], Awaitable[None]], ...] = ()

    async def aclose(self) -> None:
        """Close the providers' connections and clients; they are not used after."""
        for close in self.closers:
            await close()


def build(config: OperatorConfig, *, local_root: Path | None = None) -> Providers:
    """Local always; Vers when the configuration holds an API key.

    `local_root` stands in for the configured root where the caller knows
    better: `kubectl reef exec` takes it from the VM's recorded address, since
    the operator's environment may set a root that the plugin's does not.
    """
    providers: dict[str, Provider] = {"local": LocalProvider(local_root or config.local_root)}
    closers: list[Callable[[], Awaitable[None]]] = []
    if config.vers_api_key is not None:
        vers = _vers(config, config.vers_api_key)
        providers[vers.name] = vers
        closers.append(vers.aclose)
    return Providers(providers, tuple(closers))


def _vers(config: OperatorConfig, api_key: Secret) -> VersProvider:
    # One limiter for the API calls of lifecycle and of SSH keys alike.
    limiter = RateLimiter(config.platform_rate, config.platform_burst)
    client = VersClient(config.vers_base_url, api_key)

    async def ssh_key(vm_id: str) -> Secret:
        async with limiter:
            return (await client.ssh_key(vm_id)).private_key

    return VersProvider(client, VersConnector(ssh_settings(config), ssh_key), limiter)


def ssh_settings(config: OperatorConfig) -> SshSettings:
    """How the Vers provider reaches VMs; the remaining knobs keep SshSettings' defaults."""
    return SshSettings(vm_domain=config.vm_domain, port=config.ssh_port,
                       connect_host=config.ssh_connect_host, tls_verify=config.tls_verify)
