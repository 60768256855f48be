"""Async client for the Vers platform API (`/api/v1`).

Retries follow the official clients (connection errors, timeouts, 408, 409,
429 and 5xx, exponential backoff with jitter, honouring Retry-After) with one
deliberate difference: a request that creates something (a VM, a commit) is
never retried once it may have reached the server. Its lost answer becomes
`OutcomeUnknown`, so the caller looks the VM up by label before creating again.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from reef_operator import metrics
from reef_operator.providers.vers import errors
from reef_operator.providers.vers.models import (
    Commit,
    CommitId,
    CommitPage,
    DesiredVmState,
    SshKey,
    Vm,
    VmId,
    VmMetadata,
)
from reef_operator.secret import Secret

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
DEFAULT_BASE_URL = "https://api.vers.sh"
RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
# Answers that prove a create was not carried out, so trying again is safe.
CREATE_SAFE_STATUS = frozenset({408, 429})


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None and 0 <= retry_after <= self.max_retry_after:
            return retry_after
        ceiling = min(self.max_delay, self.base_delay * 2**attempt)
        return random.uniform(ceiling / 2, ceiling)


_EPOCH = datetime.datetime.fromtimestamp(0, datetime.UTC)
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=10.0)


class VersClient:
    """The Vers API. Use as `async with VersClient(base_url, api_key) as vers:`."""

    def __init__(
        self,
        base_url: str,
        api_key: Secret,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy = RetryPolicy(),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/").removesuffix(API_PREFIX) + API_PREFIX
        self._api_key = api_key
        self._retry = retry
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport,
                                       headers={"Accept": "application/json"})

    def __repr__(self) -> str:
        return f"VersClient({self.base_url!r}, api_key={self._api_key!r})"

    async def __aenter__(self) -> VersClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- VMs ------------------------------------------------------------------------------
    async def new_root(
        self,
        *,
        vcpu: int | None = None,
        memory_mib: int | None = None,
        disk_mib: int | None = None,
        image_name: str | None = None,
        kernel_name: str | None = None,
        labels: Mapping[str, str] | None = None,
        wait_boot: bool = False,
    ) -> VmId:
        config: dict[str, Any] = {
            key: value for key, value in (
                ("vcpu_count", vcpu), ("mem_size_mib", memory_mib), ("fs_size_mib", disk_mib),
                ("image_name", image_name), ("kernel_name", kernel_name),
                ("labels", dict(labels) if labels else None),
            ) if value is not None
        }
        data = await self._request(
            "POST", "/vm/new_root", json={"vm_config": config},
            params={"wait_boot": _flag(wait_boot)}, creates=True,
            read_timeout=300.0 if wait_boot else None,
        )
        return VmId(data["vm_id"])

    async def new_root_once(self, labels: Mapping[str, str], **config: Any) -> VmId:
        """Create a root VM carrying `labels`, or return the one an earlier attempt made.

        A create whose answer was lost is never followed by a blind second
        create: the VM is looked up by its labels before each attempt.
        """
        attempt = 0
        while True:
            existing = await self.find_by_labels(labels)
            if existing:
                return existing[0].vm_id
            try:
                return await self.new_root(labels=labels, **config)
            except errors.OutcomeUnknown:
                if attempt >= self._retry.retries:
                    raise
            await asyncio.sleep(self._retry.delay(attempt, None))
            attempt += 1

    async def find_by_labels(self, labels: Mapping[str, str]) -> list[Vm]:
        """VMs whose labels include all of `labels`, oldest first."""
        wanted = dict(labels)
        found = [vm for vm in await self.list_vms()
                 if wanted.items() <= vm.labels.items()]
        return sorted(found, key=lambda vm: vm.created_at or _EPOCH)

    async def from_commit(self, *, commit_id: str | None = None, tag_name: str | None = None,
                          ref: str | None = None) -> VmId:
        given = {k: v for k, v in (("commit_id", commit_id), ("tag_name", tag_name),
                                   ("ref", ref)) if v}
        if len(given) != 1:
            raise errors.BadRequest("from_commit needs exactly one of commit_id, tag_name, ref",
                                    endpoint="POST /vm/from_commit")
        data = await self._request("POST", "/vm/from_commit", json=given, creates=True)
        return VmId(data["vm_id"])

    async def branch(self, vm_or_commit_id: str, count: int = 1) -> list[VmId]:
        data = await self._request("POST", "/vm/{id}/branch", id=vm_or_commit_id,
                                   params={"count": str(count)}, creates=True)
        return [VmId(vm["vm_id"]) for vm in data.get("vms", [])]

    async def list_vms(self) -> list[Vm]:
        data = await self._request("GET", "/vms")
        return [Vm.parse(item) for item in data]

    async def status(self, vm_id: str) -> Vm:
        return Vm.parse(await self._request("GET", "/vm/{id}/status", id=vm_id))

    async def metadata(self, vm_id: str) -> VmMetadata:
        return VmMetadata.parse(await self._request("GET", "/vm/{id}/metadata", id=vm_id))

    async def set_state(self, vm_id: str, state: DesiredVmState,
                        skip_wait_boot: bool = False) -> None:
        await self._request("PATCH", "/vm/{id}/state", id=vm_id, json={"state": state},
                            params={"skip_wait_boot": _flag(skip_wait_boot)})

    async def pause(self, vm_id: str) -> None:
        await self.set_state(vm_id, "Paused")

    async def resume(self, vm_id: str) -> None:
        await self.set_state(vm_id, "Running")

    async def commit(self, vm_id: str, *, name: str | None = None,
                     description: str | None = None, keep_paused: bool = False) -> CommitId:
        body = {k: v for k, v in (("name", name), ("description", description)) if v}
        data = await self._request("POST", "/vm/{id}/commit", id=vm_id, json=body,
                                   params={"keep_paused": _flag(keep_paused)}, creates=True)
        return CommitId(data["commit_id"])

    async def delete(self, vm_id: str) -> bool:
        """Delete a VM. True if this call deleted it, False if it was already gone.

        The platform answers 403 (not 404) for an unknown id, which also means
        "forbidden"; a status lookup tells the two apart.
        """
        try:
            await self._request("DELETE", "/vm/{id}", id=vm_id)
        except errors.NotFound:
            return False
        except errors.Forbidden:
            try:
                await self.status(vm_id)
            except errors.NotFound:
                return False
            raise
        return True

    async def ssh_key(self, vm_id: str) -> SshKey:
        data = await self._request("GET", "/vm/{id}/ssh_key", id=vm_id)
        return SshKey(Secret(data["ssh_private_key"]), int(data.get("ssh_port") or 443))

    async def set_labels(self, vm_id: str, labels: Mapping[str, str] | None) -> None:
        await self._request("PATCH", "/vm/{id}/label", id=vm_id,
                            json={"labels": dict(labels) if labels is not None else None})

    async def grow_disk(self, vm_id: str, disk_mib: int) -> None:
        await self._request("PATCH", "/vm/{id}/disk", id=vm_id, json={"fs_size_mib": disk_mib})

    # -- commits --------------------------------------------------------------------------
    async def list_commits(self, limit: int = 100, offset: int = 0) -> CommitPage:
        data = await self._request("GET", "/commits",
                                   params={"limit": str(limit), "offset": str(offset)})
        return CommitPage([Commit.parse(c) for c in data.get("commits", [])],
                          int(data.get("total", 0)), int(data.get("limit", limit)),
                          int(data.get("offset", offset)))

    async def delete_commit(self, commit_id: str) -> bool:
        """Delete a commit. True if deleted now, False if it did not exist."""
        try:
            await self._request("DELETE", "/commits/{id}", id=commit_id)
        except errors.NotFound:
            return False
        return True

    # -- transport ------------------------------------------------------------------------
    async def _request(
        self,
        method: str,
        template: str,
        *,
        id: str | None = None,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        creates: bool = False,
        read_timeout: float | None = None,
    ) -> Any:
        endpoint = f"{method} {template}"
        path = template.replace("{id}", quote(id, safe="")) if id is not None else template
        url = self.base_url + path
        attempt = 0
        while True:
            started = time.monotonic()
            try:
                response = await self._http.request(
                    method, url, json=json, params=params,
                    headers={"Authorization": f"Bearer {self._api_key.reveal()}"},
                    timeout=(self._http.timeout if read_timeout is None else httpx.Timeout(
                        connect=5.0, read=read_timeout, write=10.0, pool=10.0)),
                )
            except httpx.TransportError as error:
                metrics.platform_request(
                    endpoint, "timeout" if isinstance(error, httpx.TimeoutException)
                    else "connection_error", time.monotonic() - started)
                failure = self._transport_failure(error, endpoint, creates)
                if attempt >= self._retry.retries or isinstance(failure, errors.OutcomeUnknown):
                    raise failure from None
                delay = self._retry.delay(attempt, None)
                logger.info("%s: %s; retrying in %.2fs", endpoint, failure.message, delay)
            else:
                elapsed = time.monotonic() - started
                metrics.platform_request(endpoint, metrics.status_outcome(response.status_code),
                                         elapsed)
                logger.debug("%s -> %d in %.0f ms", endpoint, response.status_code,
                             elapsed * 1000)
                if response.is_success:
                    return _body(response)
                failure = errors.error_for_status(response.status_code, _message(response),
                                                  endpoint)
                retryable = response.status_code in (
                    CREATE_SAFE_STATUS if creates else RETRYABLE_STATUS)
                if creates and response.status_code >= 500:
                    raise errors.OutcomeUnknown(
                        f"the platform failed while creating ({failure.message}); "
                        "a VM may or may not exist", status=response.status_code,
                        endpoint=endpoint) from None
                if not retryable or attempt >= self._retry.retries:
                    raise failure
                delay = self._retry.delay(attempt, _retry_after(response))
                logger.info("%s: %s; retrying in %.2fs", endpoint, failure, delay)
            attempt += 1
            await asyncio.sleep(delay)

    @staticmethod
    def _transport_failure(error: httpx.TransportError, endpoint: str,
                           creates: bool) -> errors.VersError:
        never_sent = isinstance(error, httpx.ConnectError | httpx.ConnectTimeout |
                                httpx.PoolTimeout)
        if creates and not never_sent:
            return errors.OutcomeUnknown(
                f"the answer to a create was lost ({type(error).__name__}); "
                "a VM may or may not exist", endpoint=endpoint)
        if isinstance(error, httpx.TimeoutException):
            return errors.Timeout(f"no answer in time ({type(error).__name__})",
                                  endpoint=endpoint)
        return errors.ConnectionFailed(f"cannot reach the platform ({type(error).__name__})",
                                       endpoint=endpoint)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _body(response: httpx.Response) -> Any:
    if not response.content:
        return {}
    try:
        return response.json()
    except ValueError:
        return {}


def _message(response: httpx.Response) -> str:
    """The server's own reason, from `{"error": …}` (or the branch routes' shape)."""
    try:
        data = response.json()
    except ValueError:
        text = response.text.strip()
        return text[:500] if text else response.reason_phrase
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])[:2000]
    return response.reason_phrase


def _retry_after(response: httpx.Response) -> float | None:
    milliseconds = response.headers.get("retry-after-ms")
    if milliseconds:
        try:
            return float(milliseconds) / 1000
        except ValueError:
            pass
    seconds = response.headers.get("retry-after")
    if seconds:
        try:
            return float(seconds)
        except ValueError:
            return None
    return None
