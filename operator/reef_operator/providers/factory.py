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

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from reef_operator.config.resolve import OperatorConfig
from reef_operator.config.table import LOCAL_ENABLED, REEF_LOCAL_PROVIDER
from reef_operator.providers.base import Provider
from reef_operator.providers.local.provider import LocalProvider
from reef_operator.providers.ratelimit import RateLimiter
from reef_operator.providers.vers.client import VersClient
from reef_operator.providers.vers.provider import VersProvider
from reef_operator.providers.vers.ssh import SshSettings, VersConnector
from reef_operator.secret import Secret

# Every provider there is, by the name a VMNode's provider label carries.
NAMES = ("local", "vers")

Close = Callable[[], Awaitable[None]]


def build(config: OperatorConfig) -> dict[str, Provider]:
    """The operator's providers, for its lifetime: Local when enabled, Vers with an API key."""
    names = [name for name in NAMES if name not in disabled(config)
             and (name != "vers" or config.vers_api_key is not None)]
    return {name: _make(name, config, None)[0] for name in names}


def disabled(config: OperatorConfig) -> dict[str, str]:
    """Providers the configuration turns off, each with why, for the nodes that ask for one."""
    if config.local_provider == LOCAL_ENABLED:
        return {}
    return {"local": (
        f"the Local provider is disabled in this operator ({REEF_LOCAL_PROVIDER.key}="
        f"{config.local_provider}, from {config.source_of(REEF_LOCAL_PROVIDER.key)}; the "
        "default in a pod): a Local VM is a process in the operator's container, whose agent "
        "would run with the operator's identity. Use a Vers profile, or set "
        f"{REEF_LOCAL_PROVIDER.key}=enabled only where that identity may be shared "
        "(development)")}


@contextlib.asynccontextmanager
async def opened(name: str, config: OperatorConfig, *,
                 local_root: Path | None = None) -> AsyncIterator[Provider]:
    """One provider for the block, its connections closed after (`kubectl reef exec/cp`).

    `local_root` stands in for the configured root where the caller knows
    better: the plugin takes it from the VM's recorded address, since the
    operator's environment may set a root that the plugin's does not.
    ConfigError when the configuration cannot serve `name` (Vers without a key).
    """
    provider, close = _make(name, config, local_root)
    try:
        yield provider
    finally:
        await close()


def _make(name: str, config: OperatorConfig, local_root: Path | None) -> tuple[Provider, Close]:
    if name == "local":
        return LocalProvider(local_root or config.local_root), _nothing
    if name == "vers":
        vers = _vers(config, config.require_api_key())
        return vers, vers.aclose
    raise ValueError(f"no provider {name!r}; there are {', '.join(NAMES)}")


async def _nothing() -> None:
    """Closing a Local provider: it keeps no connections."""


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
