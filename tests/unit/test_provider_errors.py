"""Provider errors: what the Vers platform's answers and the Local provider's refusals
become at their boundaries, by family (needs a person, transient, not found, conflict,
outcome unknown), with the message, where and status kept.

The Vers provider is driven through its real client over an in-memory transport
(httpx.MockTransport): no server, no processes, no sleeps (no retries).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from reef_operator.providers import errors
from reef_operator.providers.base import VmRequest
from reef_operator.providers.local import LocalProvider
from reef_operator.providers.ratelimit import RateLimiter
from reef_operator.providers.vers import errors as vers_errors
from reef_operator.providers.vers.client import RetryPolicy, VersClient
from reef_operator.providers.vers.provider import VersProvider
from reef_operator.providers.vers.ssh import SshSettings, VersConnector
from reef_operator.secret import Secret

VM = "11111111-2222-4333-8444-555555555555"


@pytest.mark.parametrize(("status", "kind", "family"), [
    (400, errors.BadRequest, errors.NeedsAttention),
    (422, errors.BadRequest, errors.NeedsAttention),
    (401, errors.Unauthorized, errors.NeedsAttention),
    (403, errors.Forbidden, errors.NeedsAttention),
    (429, errors.RateLimited, errors.Transient),
    (500, errors.ServerError, errors.Transient),
    (503, errors.ServerError, errors.Transient),
    (404, errors.NotFound, errors.NotFound),
    (409, errors.Conflict, errors.Conflict),
])
def test_each_platform_status_has_its_family(status: int, kind: type[errors.ProviderError],
                                             family: type[errors.ProviderError]) -> None:
    vers = vers_errors.error_for_status(status, "the server's words", "GET /vm/{id}/status")
    seen = vers_errors.as_provider_error(vers)
    assert type(seen) is kind and isinstance(seen, family)
    assert (seen.message, seen.endpoint, seen.status) == (
        "the server's words", "GET /vm/{id}/status", status)
    assert str(seen) == str(vers) == f"GET /vm/{{id}}/status: the server's words (HTTP {status})"


def test_an_unknown_status_is_a_provider_error_of_no_family() -> None:
    seen = vers_errors.as_provider_error(vers_errors.error_for_status(418, "teapot", "GET /x"))
    assert type(seen) is errors.ProviderError


@pytest.mark.parametrize(("vers", "kind"), [
    (vers_errors.Timeout("no answer in time"), errors.Timeout),
    (vers_errors.ConnectionFailed("cannot reach the platform"), errors.ConnectionFailed),
])
def test_client_failures_without_an_answer_are_transient(
        vers: vers_errors.VersError, kind: type[errors.ProviderError]) -> None:
    seen = vers_errors.as_provider_error(vers)
    assert type(seen) is kind and isinstance(seen, errors.Transient) and seen.status is None


def test_a_lost_create_is_outcome_unknown_and_never_transient() -> None:
    """The caller looks the VM up before creating again: no family retries it blindly."""
    seen = vers_errors.as_provider_error(
        vers_errors.OutcomeUnknown("a VM may or may not exist", endpoint="POST /vm/new_root"))
    assert type(seen) is errors.OutcomeUnknown
    assert not isinstance(seen, errors.Transient | errors.NeedsAttention)


def test_the_boundary_converts_vers_errors_only() -> None:
    with pytest.raises(errors.Forbidden) as raised, vers_errors.as_provider_errors():
        raise vers_errors.Forbidden("quota reached", status=403, endpoint="POST /vm/new_root")
    assert isinstance(raised.value.__cause__, vers_errors.Forbidden)
    with pytest.raises(KeyError), vers_errors.as_provider_errors():
        raise KeyError("not the platform's")


# -- the Vers provider, over an in-memory transport ---------------------------------------


class Platform:
    """The platform's next answer to every request, whatever it asks."""

    def __init__(self) -> None:
        self.status, self.error = 200, ""

    def answers(self, status: int, error: str) -> None:
        self.status, self.error = status, error

    def __call__(self, _request: httpx.Request) -> httpx.Response:
        return httpx.Response(self.status, json={"error": self.error})


@pytest.fixture
def platform() -> Platform:
    return Platform()


@pytest.fixture
async def vers(platform: Platform) -> AsyncIterator[VersProvider]:
    client = VersClient("http://vers.test", Secret("key"), retry=RetryPolicy(retries=0),
                        transport=httpx.MockTransport(platform))

    async def key(vm_id: str) -> Secret:
        return (await client.ssh_key(vm_id)).private_key

    provider = VersProvider(client, VersConnector(SshSettings(), key), RateLimiter(1000, 1000))
    yield provider
    await provider.aclose()


async def test_vers_provider_raises_provider_errors(vers: VersProvider,
                                                    platform: Platform) -> None:
    platform.answers(403, "VM limit reached")
    with pytest.raises(errors.Forbidden, match=r"VM limit reached \(HTTP 403\)"):
        await vers.pause(VM)
    platform.answers(503, "down")
    with pytest.raises(errors.ServerError):
        await vers.resume(VM)
    with pytest.raises(errors.ServerError):
        await vers.find(VmRequest(owner_uid="u", name="n", namespace="ns"))
    # A create that met a server failure may have made the VM.
    with pytest.raises(errors.OutcomeUnknown, match="may or may not exist"):
        await vers.create(VmRequest(owner_uid="u", name="n", namespace="ns"))


async def test_vers_observe_reads_gone_and_sleeping_and_converts_other_conflicts(
        vers: VersProvider, platform: Platform) -> None:
    platform.answers(404, "no VM")
    assert (await vers.observe(VM)).state == "gone"
    platform.answers(409, "VM is sleeping")
    assert (await vers.observe(VM)).state == "sleeping"
    platform.answers(409, "VM is being committed")
    with pytest.raises(errors.Conflict, match="being committed"):
        await vers.observe(VM)


async def test_vers_shell_converts_the_key_lookup(vers: VersProvider,
                                                  platform: Platform) -> None:
    """The shell's key comes from the API before any connection: its failure converts too."""
    platform.answers(404, "VM not found")
    with pytest.raises(errors.NotFound, match="VM not found"):
        await vers.shell(VM)


# -- the Local provider --------------------------------------------------------------------


async def test_local_provider_raises_provider_errors(tmp_path: Path) -> None:
    local = LocalProvider(tmp_path)
    with pytest.raises(errors.BadRequest, match="commitId"):
        await local.create(VmRequest(owner_uid="u", name="n", namespace="ns", tag="t"))
    with pytest.raises(errors.NotFound, match="no Local snapshot"):
        await local.create(VmRequest(owner_uid="u", name="n", namespace="ns", commit_id=VM))
    for call in (local.pause, local.resume, local.snapshot, local.shell):
        with pytest.raises(errors.NotFound, match=f"no Local VM {VM}"):
            await call(VM)
    await local.delete(VM)  # gone already: not an error

    vm_id = await local.create(VmRequest(owner_uid="u", name="n", namespace="ns"))
    shell = await local.shell(vm_id)
    await local.pause(vm_id)
    with pytest.raises(errors.ShellError, match="is paused") as refused:
        await shell.run("true")
    assert isinstance(refused.value, errors.Transient)
    await local.delete(vm_id)
    with pytest.raises(errors.NotFound):
        await shell.run("true")
