"""The few Kubernetes API calls the controllers make, as coroutines.

The official client is synchronous; its calls run in worker threads, whose
small pool also bounds how many requests the operator has in flight.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from pathlib import Path
from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from reef_operator.config import KUBERNETES_SERVICE_HOST, read_env
from reef_operator.constants import GROUP, LABEL_LIEUTENANT, LABEL_TASK, VERSION
from reef_operator.secret import Secret


def api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """In-cluster credentials when running in a pod, else the kubeconfig."""
    configuration = client.Configuration()
    if kubeconfig is None and read_env(KUBERNETES_SERVICE_HOST, os.environ) and Path(
            "/var/run/secrets/kubernetes.io/serviceaccount/token").exists():
        config.load_incluster_config(client_configuration=configuration)
    else:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    return client.ApiClient(configuration)


class KubeApi:
    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.rbac = client.RbacAuthorizationV1Api(api)

    async def patch_status(self, plural: str, namespace: str | None, name: str,
                           status: dict[str, Any]) -> None:
        body = {"status": _without_empty_strings(status)}
        if namespace is None:
            await asyncio.to_thread(self.custom.patch_cluster_custom_object_status,
                                    GROUP, VERSION, plural, name, body)
        else:
            await asyncio.to_thread(self.custom.patch_namespaced_custom_object_status,
                                    GROUP, VERSION, namespace, plural, name, body)

    async def patch_metadata(self, plural: str, namespace: str, name: str,
                             metadata: dict[str, Any]) -> None:
        await asyncio.to_thread(self.custom.patch_namespaced_custom_object,
                                GROUP, VERSION, namespace, plural, name, {"metadata": metadata})

    async def patch_guarded(self, plural: str, namespace: str, name: str,
                            patch: dict[str, Any]) -> bool:
        """A merge patch carrying metadata.resourceVersion: False when the object changed
        since that version was read (409) or is gone (404), so the write did not land."""
        try:
            await asyncio.to_thread(self.custom.patch_namespaced_custom_object,
                                    GROUP, VERSION, namespace, plural, name, patch)
        except ApiException as error:
            if error.status in (404, 409):
                return False
            raise
        return True

    async def create_object(self, plural: str, namespace: str, body: dict[str, Any]) -> bool:
        """Create a namespaced object; False when one of that name already exists."""
        try:
            await asyncio.to_thread(self.custom.create_namespaced_custom_object,
                                    GROUP, VERSION, namespace, plural, body)
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        return True

    async def list_objects(self, plural: str, namespace: str, label_selector: str
                           ) -> list[dict[str, Any]]:
        answer = await asyncio.to_thread(
            self.custom.list_namespaced_custom_object, GROUP, VERSION, namespace, plural,
            label_selector=label_selector)
        items: list[dict[str, Any]] = cast(dict[str, Any], answer).get("items", [])
        return items

    async def delete_object(self, plural: str, namespace: str, name: str) -> None:
        """Delete a namespaced object; nothing when it is already gone."""
        try:
            await asyncio.to_thread(self.custom.delete_namespaced_custom_object,
                                    GROUP, VERSION, namespace, plural, name)
        except ApiException as error:
            if error.status != 404:
                raise

    async def list_all(self, plural: str) -> list[dict[str, Any]]:
        answer = await asyncio.to_thread(
            self.custom.list_cluster_custom_object, GROUP, VERSION, plural)
        items: list[dict[str, Any]] = cast(dict[str, Any], answer).get("items", [])
        return items

    async def list_in(self, plural: str, namespace: str,
                      label_selector: str = "") -> list[dict[str, Any]]:
        answer = await asyncio.to_thread(
            self.custom.list_namespaced_custom_object, GROUP, VERSION, namespace, plural,
            label_selector=label_selector)
        items: list[dict[str, Any]] = cast(dict[str, Any], answer).get("items", [])
        return items

    async def list_task_records(self, namespace: str, lieutenant: str,
                                tasks: list[str]) -> list[dict[str, Any]]:
        """The TaskRecords of these tasks of a lieutenant (selected by label, so a lieutenant
        with a thousand records sends back only the few asked for)."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(tasks), TASKS_PER_SELECTOR):
            chunk = tasks[start:start + TASKS_PER_SELECTOR]
            answer = await asyncio.to_thread(
                self.custom.list_namespaced_custom_object, GROUP, VERSION, namespace,
                "taskrecords", label_selector=f"{LABEL_LIEUTENANT}={lieutenant},"
                f"{LABEL_TASK} in ({','.join(chunk)})")
            found += cast(dict[str, Any], answer).get("items", [])
        return found

    async def read_secret(self, namespace: str, name: str) -> dict[str, Secret] | None:
        """A Secret's data as `Secret` values; None if it does not exist."""
        try:
            found = await asyncio.to_thread(self.core.read_namespaced_secret, name, namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return {key: Secret(base64.b64decode(value).decode())
                for key, value in (found.data or {}).items()}

    async def read_secret_labels(self, namespace: str, name: str) -> dict[str, str] | None:
        """A Secret's labels, read as metadata only (its values stay in the apiserver);
        None if it does not exist."""
        try:
            answer = await asyncio.to_thread(
                self.core.read_namespaced_secret, name, namespace,
                _headers={"Accept": METADATA_ONLY}, _preload_content=False)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        metadata = json.loads(cast(bytes, answer.data)).get("metadata") or {}
        return {str(key): str(value) for key, value in (metadata.get("labels") or {}).items()}

    async def read_namespace_labels(self, namespace: str) -> dict[str, str]:
        found: Any = await asyncio.to_thread(self.core.read_namespace, namespace)
        return dict(found.metadata.labels or {})

    def apiserver(self) -> tuple[str, bytes | None]:
        """The apiserver's URL as this client reaches it, and the CA that signs its
        certificate (None when the client does not verify it)."""
        configuration = self.api.configuration
        ca = configuration.ssl_ca_cert if configuration.verify_ssl else None
        return str(configuration.host), Path(ca).read_bytes() if ca else None

    async def read_configmap(self, namespace: str, name: str) -> dict[str, str] | None:
        try:
            found = await asyncio.to_thread(self.core.read_namespaced_config_map, name,
                                            namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return dict(found.data or {})


# Task names in one label selector (a URL holds a few kilobytes; a name is up to 63 bytes).
TASKS_PER_SELECTOR = 50

# Asks the apiserver for an object's metadata without its body (PartialObjectMetadata).
METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"


def _without_empty_strings(value: Any) -> Any:
    """Drop "" values: the client sends them as null, which a structural schema refuses."""
    if isinstance(value, dict):
        return {k: _without_empty_strings(v) for k, v in value.items() if v != ""}
    if isinstance(value, list):
        return [_without_empty_strings(v) for v in value]
    return value


def is_too_large(error: BaseException) -> bool:
    """The apiserver (413, "Request entity too large") or etcd behind it ("request is too
    large") refused a write for its size."""
    if not isinstance(error, ApiException):
        return False
    text = f"{error.reason or ''} {error.body or ''}".lower()
    return error.status == 413 or "request entity too large" in text or \
        "request is too large" in text


def is_not_found(error: BaseException) -> bool:
    return isinstance(error, ApiException) and error.status == 404
