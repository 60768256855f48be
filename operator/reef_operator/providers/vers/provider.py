"""The Vers platform as a `Provider`: the API client for lifecycle, the connector for shells.

The boundary of providers/vers: every method raises provider errors
(providers/errors.py), never the client's own (`errors.as_provider_errors`); the
shells it hands out raise them too (see `ssh`).
"""

from __future__ import annotations

import asyncio
import datetime
import logging

from reef_operator.constants import GROUP
from reef_operator.providers.base import VmObservation, VmOwner, VmRequest
from reef_operator.providers.ratelimit import RateLimiter
from reef_operator.providers.vers import errors
from reef_operator.providers.vers.client import VersClient
from reef_operator.providers.vers.models import Commit
from reef_operator.providers.vers.ssh import VersConnector, VmShell

logger = logging.getLogger(__name__)

LABEL_UID = f"{GROUP}/uid"
LABEL_NAME = f"{GROUP}/name"
LABEL_NAMESPACE = f"{GROUP}/namespace"
# How far a VM's creation time may precede the vm-requested-at mark and still be ours.
CLOCK_SKEW = datetime.timedelta(seconds=60)
_EPOCH = datetime.datetime.fromtimestamp(0, datetime.UTC)
COMMIT_PAGE = 100


def owner_record(owner: VmOwner) -> str:
    """How a commit's description records the node whose VM it was taken of."""
    return f"{LABEL_NAMESPACE}={owner.namespace} {LABEL_UID}={owner.uid}"


def owner_in_record(description: str) -> VmOwner | None:
    fields = dict(part.partition("=")[::2] for part in description.split())
    if LABEL_NAMESPACE not in fields or LABEL_UID not in fields:
        return None
    return VmOwner(fields[LABEL_NAMESPACE], fields[LABEL_UID])


class VersProvider:
    name = "vers"

    def __init__(self, client: VersClient, connector: VersConnector,
                 limiter: RateLimiter) -> None:
        self.client = client
        self.connector = connector
        self._limit = limiter
        self._claim_lock = asyncio.Lock()

    @staticmethod
    def labels_for(request: VmRequest) -> dict[str, str]:
        return {**request.labels, LABEL_UID: request.owner_uid, LABEL_NAME: request.name,
                LABEL_NAMESPACE: request.namespace}

    @staticmethod
    def owner_of(labels: dict[str, str]) -> VmOwner | None:
        """The node the labels name; a VM with only one of the two keys names no valid node
        and so belongs to nobody who may touch it (never adoptable)."""
        if LABEL_NAMESPACE not in labels and LABEL_UID not in labels:
            return None
        return VmOwner(labels.get(LABEL_NAMESPACE, ""), labels.get(LABEL_UID, ""))

    async def create(self, request: VmRequest) -> str:
        with errors.as_provider_errors():
            return await self._create(request)

    async def _create(self, request: VmRequest) -> str:
        labels = self.labels_for(request)
        async with self._limit:
            if request.commit_id or request.tag or request.ref:
                # from_commit takes no labels: label right after. A crash in between
                # leaves an unlabelled VM that `find` claims by its parent commit.
                vm_id = await self.client.from_commit(
                    commit_id=request.commit_id, tag_name=request.tag, ref=request.ref)
            else:
                return await self.client.new_root(
                    vcpu=request.vcpu, memory_mib=request.memory_mib,
                    disk_mib=request.disk_mib, labels=labels)
        async with self._limit:
            await self.client.set_labels(vm_id, labels)
        return vm_id

    async def find(self, request: VmRequest) -> str | None:
        with errors.as_provider_errors():
            return await self._find(request)

    async def _find(self, request: VmRequest) -> str | None:
        async with self._limit:
            vms = await self.client.list_vms()
        mine = sorted((vm for vm in vms if vm.labels.get(LABEL_UID) == request.owner_uid),
                      key=lambda vm: vm.created_at or _EPOCH)
        if mine:
            return mine[0].vm_id
        pending_since = request.pending_since
        if pending_since is None or not (request.commit_id or request.tag or request.ref):
            return None
        async with self._claim_lock:
            for vm in vms:
                if vm.labels or vm.created_at is None or vm.created_at < pending_since - CLOCK_SKEW:
                    continue
                async with self._limit:
                    meta = await self.client.metadata(vm.vm_id)
                if request.commit_id and meta.parent_commit_id != request.commit_id:
                    continue
                async with self._limit:
                    await self.client.set_labels(vm.vm_id, self.labels_for(request))
                logger.info("claimed unlabelled VM %s for %s/%s", vm.vm_id, request.namespace,
                            request.name)
                return vm.vm_id
        return None

    async def observe(self, vm_id: str) -> VmObservation:
        with errors.as_provider_errors():
            try:
                async with self._limit:
                    vm = await self.client.status(vm_id)
            except errors.NotFound:
                return VmObservation(vm_id, "gone")
            except errors.Conflict as error:
                if "sleep" in error.message.lower():
                    return VmObservation(vm_id, "sleeping")
                raise
        return VmObservation(vm_id, vm.state, self.connector.settings.host_name(vm_id),
                             self.owner_of(vm.labels))

    async def claim(self, vm_id: str, request: VmRequest) -> None:
        with errors.as_provider_errors():
            async with self._limit:
                vm = await self.client.status(vm_id)
            async with self._limit:
                await self.client.set_labels(vm_id, {**vm.labels, **self.labels_for(request)})

    async def pause(self, vm_id: str) -> None:
        with errors.as_provider_errors():
            async with self._limit:
                await self.client.pause(vm_id)
        self.connector.forget(vm_id)

    async def resume(self, vm_id: str) -> None:
        with errors.as_provider_errors():
            async with self._limit:
                await self.client.resume(vm_id)

    async def delete(self, vm_id: str) -> None:
        with errors.as_provider_errors():
            async with self._limit:
                await self.client.delete(vm_id)
        self.connector.forget(vm_id)

    async def snapshot(self, vm_id: str) -> str:
        with errors.as_provider_errors():
            async with self._limit:
                owner = self.owner_of((await self.client.status(vm_id)).labels)
            async with self._limit:
                return await self.client.commit(
                    vm_id, description=owner_record(owner) if owner else None)

    async def snapshot_owner(self, snapshot_id: str) -> VmOwner | None:
        """The owner the commit's description records (only the operator's API key makes
        commits), else the labels of the VM it was taken of, if that VM still exists."""
        with errors.as_provider_errors():
            commit = await self._commit(snapshot_id)
            if commit is None:
                return None
            recorded = owner_in_record(commit.description)
            if recorded is not None or not commit.parent_vm_id:
                return recorded
            try:
                async with self._limit:
                    parent = await self.client.status(commit.parent_vm_id)
            except (errors.NotFound, errors.Conflict):
                return None
            return self.owner_of(parent.labels)

    async def _commit(self, commit_id: str) -> Commit | None:
        """The commit from `GET /commits`, the only route that describes one."""
        offset = 0
        while True:
            async with self._limit:
                page = await self.client.list_commits(limit=COMMIT_PAGE, offset=offset)
            for commit in page.commits:
                if commit.commit_id == commit_id:
                    return commit
            offset += len(page.commits)
            if not page.commits or offset >= page.total:
                return None

    async def delete_snapshot(self, snapshot_id: str) -> None:
        with errors.as_provider_errors():
            async with self._limit:
                await self.client.delete_commit(snapshot_id)

    async def shell(self, vm_id: str, pinned_fingerprint: str | None = None) -> VmShell:
        """The connector's shell; its key source asks the API, whose errors convert here."""
        with errors.as_provider_errors():
            return await self.connector.shell(vm_id, pinned_fingerprint)

    def forget(self, vm_id: str) -> None:
        self.connector.forget(vm_id)

    async def aclose(self) -> None:
        """Close every SSH connection and the API client (the provider is not used after)."""
        await self.connector.close()
        await self.client.aclose()
