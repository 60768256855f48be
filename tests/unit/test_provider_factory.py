"""The provider factory: which providers a configuration gives, and how they reach VMs."""

from __future__ import annotations

from pathlib import Path

import pytest

from reef_operator.config import ConfigError, OperatorConfig, resolve
from reef_operator.providers import factory
from reef_operator.providers.local import LocalProvider
from reef_operator.providers.vers.provider import VersProvider
from reef_operator.providers.vers.ssh import SshSettings

KEY = "vers_sk_live_0123456789abcdefSECRETTAIL"


def config(**env: str) -> OperatorConfig:
    return resolve({"HOME": "/home/op", "REEF_LOCAL_ROOT": "/srv/vms", **env})


def test_without_an_api_key_only_local_vms_are_served() -> None:
    providers = factory.build(config())
    assert list(providers) == ["local"]
    local = providers["local"]
    assert isinstance(local, LocalProvider) and local.root == Path("/srv/vms")


def test_in_a_pod_local_is_not_built_and_says_why() -> None:
    in_pod = config(VERS_API_KEY=KEY, KUBERNETES_SERVICE_HOST="10.96.0.1")
    assert list(factory.build(in_pod)) == ["vers"]
    why = factory.disabled(in_pod)["local"]
    assert "Local provider is disabled in this operator" in why
    assert "REEF_LOCAL_PROVIDER=disabled, from default" in why
    assert "operator's identity" in why
    assert factory.disabled(config()) == {}
    assert list(factory.build(config(KUBERNETES_SERVICE_HOST="10.96.0.1",
                                     REEF_LOCAL_PROVIDER="enabled"))) == ["local"]


async def test_with_an_api_key_vers_is_served_as_configured() -> None:
    providers = factory.build(config(VERS_API_KEY=KEY, VERS_BASE_URL="https://vers.test",
                                     VERS_VM_DOMAIN="vm.test"))
    assert sorted(providers) == ["local", "vers"]
    vers = providers["vers"]
    assert isinstance(vers, VersProvider)
    assert vers.client.base_url == "https://vers.test/api/v1"
    assert vers.connector.settings.host_name("abc") == "abc.vm.test"
    await vers.aclose()


async def test_one_provider_opened_is_closed_after() -> None:
    async with factory.opened("vers", config(VERS_API_KEY=KEY)) as vers:
        assert isinstance(vers, VersProvider) and not vers.client._http.is_closed
    assert vers.client._http.is_closed


async def test_opening_vers_without_an_api_key_says_what_is_missing() -> None:
    with pytest.raises(ConfigError, match="VERS_API_KEY is not set"):
        async with factory.opened("vers", config()):
            pass
    with pytest.raises(ValueError, match="no provider 'cloud'"):
        async with factory.opened("cloud", config()):
            pass


async def test_a_local_root_given_stands_in_for_the_configured_one() -> None:
    """`kubectl reef exec` knows the root from the VM's address, not from its environment."""
    async with factory.opened("local", config(), local_root=Path("/run/operator/vms")) as local:
        assert isinstance(local, LocalProvider) and local.root == Path("/run/operator/vms")


def test_ssh_settings() -> None:
    settings = factory.ssh_settings(config(
        VERS_SSH_PORT="2222", VERS_SSH_CONNECT_HOST="127.0.0.1", VERS_VM_DOMAIN="vm.test",
        VERS_TLS_VERIFY="true"))
    assert settings == SshSettings(vm_domain="vm.test", port=2222, connect_host="127.0.0.1",
                                   tls_verify=True)
    assert settings.host_name("abc") == "abc.vm.test"
