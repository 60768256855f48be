"""The apiserver as a lieutenant's status writer sees it: status patches and TaskRecords,
kept in memory with every call in order, and told to fail in the ways a test needs."""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException


class FakeStatusKube:
    """`records` by name; `patches` (every status sent, refused or not); `calls` in order.
    `refuse_records`: creates fail (unreachable); `unreachable`: status writes fail;
    `too_large`: how many status writes are refused as too large; `deleted`: the object
    is gone (status writes answer 404)."""

    def __init__(self, existing: list[dict[str, Any]] | None = None, too_large: int = 0
                 ) -> None:
        self.records = {r["metadata"]["name"]: r for r in existing or []}
        self.calls: list[str] = []
        self.patches: list[dict[str, Any]] = []
        self.refuse_records = False
        self.unreachable = False
        self.too_large = too_large
        self.deleted = False

    async def create_object(self, plural: str, namespace: str, body: dict[str, Any]) -> bool:
        self.calls.append(f"create {body['metadata']['name']}")
        if self.refuse_records:
            raise OSError("apiserver unreachable")
        if body["metadata"]["name"] in self.records:
            return False
        self.records[body["metadata"]["name"]] = body
        return True

    async def list_objects(self, plural: str, namespace: str, label_selector: str
                           ) -> list[dict[str, Any]]:
        self.calls.append("list")
        return list(self.records.values())

    async def delete_object(self, plural: str, namespace: str, name: str) -> None:
        self.calls.append(f"delete {name}")
        self.records.pop(name, None)

    async def patch_status(self, plural: str, namespace: str, name: str,
                           status: dict[str, Any]) -> None:
        self.calls.append("patch_status")
        if self.unreachable:
            raise OSError("apiserver unreachable")
        if self.deleted:
            raise ApiException(status=404, reason="Not Found")
        self.patches.append(status)
        if self.too_large:
            self.too_large -= 1
            raise ApiException(status=413, reason="Request Entity Too Large")


class FakeStatusHost:
    """What a StatusWriter writes through: the fake apiserver, the lieutenant's VMNode
    (none) and the Events it posts, in order."""

    def __init__(self, kube: FakeStatusKube | None = None) -> None:
        self.kube = kube or FakeStatusKube()
        self.vmnode_bodies: dict[Any, Any] = {}
        self.events: list[tuple[str, str, str]] = []

    def post_event(self, body: Any, kind: str, reason: str, message: str) -> None:
        self.events.append((kind, reason, message))
