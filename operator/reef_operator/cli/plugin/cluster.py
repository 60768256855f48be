"""The plugin's view of the cluster: one client, the caller's namespace, clear errors.

Every failure a user can cause or meet (no cluster, an unknown lieutenant, a
lieutenant that is not running) becomes a `PluginError` with a message that
says what to do; `main` prints it and exits non-zero.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from typing import Any, cast

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from reef_operator.constants import GROUP, VERSION

Obj = dict[str, Any]

KINDS = {"lieutenants": "Lieutenant", "vmnodes": "VMNode", "bootprofiles": "BootProfile",
         "taskrecords": "TaskRecord"}
USER_AGENT = f"kubectl-reef/{metadata.version('reef-operator')}"


class PluginError(Exception):
    """A failure to report as one line on stderr with a non-zero exit code."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class NotFound(PluginError):
    """The object asked for does not exist (the message names what does)."""


@dataclass
class Cluster:
    api: client.ApiClient
    namespace: str
    server: str
    # Seconds a read may take (None: the client's default, no limit); the dashboard sets one
    # so a hung apiserver shows on the page instead of freezing it.
    read_timeout: float | None = None

    @classmethod
    def connect(cls, kubeconfig: str | None, context: str | None,
                namespace: str | None) -> Cluster:
        configuration = client.Configuration()
        try:
            config.load_kube_config(config_file=kubeconfig, context=context,
                                    client_configuration=configuration)
            contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
            if context:
                active = next((c for c in contexts if c["name"] == context), active)
            default_namespace = (active or {}).get("context", {}).get("namespace") or "default"
        except config.ConfigException as error:
            try:
                config.load_incluster_config(client_configuration=configuration)
            except config.ConfigException:
                raise PluginError(f"no cluster configured: {error} (set KUBECONFIG or pass "
                                  "--kubeconfig)") from None
            default_namespace = "default"
        configuration.retries = 0
        api = client.ApiClient(configuration)
        api.user_agent = USER_AGENT      # the apiserver's audit log names the tool
        return cls(api, namespace or default_namespace, configuration.host)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @contextlib.contextmanager
    def errors(self, what: str) -> Iterator[None]:
        """Turn API and connection failures into messages a user can act on."""
        try:
            yield
        except ApiException as error:
            raise PluginError(f"{what}: {_api_message(error)}") from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise PluginError(f"cannot reach the cluster at {self.server}: "
                              f"{_reason(error)} (is the control plane running?)") from None

    # -- reads ------------------------------------------------------------------------------
    def get(self, plural: str, name: str, namespace: str | None = None) -> Obj:
        namespace = namespace or self.namespace
        try:
            with self.errors(f"cannot read {KINDS[plural]} {namespace}/{name}"):
                return cast(Obj, self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, plural, name,
                    _request_timeout=self.read_timeout))
        except PluginError:
            if not self.exists(plural, name, namespace):
                raise NotFound(self.not_found(plural, name, namespace)) from None
            raise

    def exists(self, plural: str, name: str, namespace: str) -> bool:
        try:
            self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name,
                                                     _request_timeout=self.read_timeout)
        except ApiException as error:
            if error.status == 404:
                return False
            raise PluginError(f"cannot read {KINDS[plural]} {namespace}/{name}: "
                              f"{_api_message(error)}") from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise PluginError(f"cannot reach the cluster at {self.server}: "
                              f"{_reason(error)} (is the control plane running?)") from None
        return True

    def not_found(self, plural: str, name: str, namespace: str) -> str:
        return not_found_message(plural, name, namespace,
                                 [item["metadata"]["name"] for item in self.items(plural,
                                                                                  namespace)])

    def items(self, plural: str, namespace: str | None = None,
             all_namespaces: bool = False, label_selector: str = "") -> list[Obj]:
        with self.errors(f"cannot list {plural}"):
            if all_namespaces or plural == "bootprofiles":
                found = cast(Obj, self.custom.list_cluster_custom_object(
                    GROUP, VERSION, plural, _request_timeout=self.read_timeout))
            else:
                found = cast(Obj, self.custom.list_namespaced_custom_object(
                    GROUP, VERSION, namespace or self.namespace, plural,
                    label_selector=label_selector, _request_timeout=self.read_timeout))
        items = cast(list[Obj], found.get("items", []))
        return sorted(items, key=lambda o: (o["metadata"].get("namespace", ""),
                                            o["metadata"]["name"]))

    # -- writes -----------------------------------------------------------------------------
    def create(self, plural: str, body: Obj) -> Obj:
        namespace = body["metadata"].get("namespace") or self.namespace
        body["metadata"]["namespace"] = namespace
        with self.errors(f"cannot create {KINDS[plural]} {namespace}/{body['metadata']['name']}"):
            return cast(Obj, self.custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, body))

    def merge_patch(self, plural: str, name: str, patch: Obj,
                    namespace: str | None = None) -> Obj:
        """A merge patch; with metadata.resourceVersion in it, a conflict raises ApiException."""
        namespace = namespace or self.namespace
        return cast(Obj, self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, name, patch,
            _content_type="application/merge-patch+json"))

    def json_patch(self, plural: str, name: str, operations: list[Obj],
                   namespace: str | None = None) -> Obj:
        """A JSON patch (RFC 6902); a failed `test` operation raises ApiException."""
        namespace = namespace or self.namespace
        return cast(Obj, self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, name, operations,
            _content_type="application/json-patch+json"))

    def delete(self, plural: str, name: str, namespace: str | None = None) -> None:
        namespace = namespace or self.namespace
        with self.errors(f"cannot delete {KINDS[plural]} {namespace}/{name}"):
            self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)

    def watch(self, plural: str, name: str, namespace: str | None,
              timeout: float, since: Obj | None = None) -> Iterator[Obj]:
        """The object now (or `since`, a version already read), then each newer version
        until `timeout` seconds pass."""
        namespace = namespace or self.namespace
        current = since or self.get(plural, name, namespace)
        yield current
        stream = watch.Watch()
        with self.errors(f"cannot watch {KINDS[plural]} {namespace}/{name}"):
            for event in stream.stream(
                    self.custom.list_namespaced_custom_object, GROUP, VERSION, namespace,
                    plural, field_selector=f"metadata.name={name}",
                    resource_version=current["metadata"]["resourceVersion"],
                    timeout_seconds=max(1, int(timeout))):
                if event["type"] == "DELETED":
                    raise PluginError(f"{KINDS[plural]} {namespace}/{name} was deleted")
                if event["type"] in ("ADDED", "MODIFIED"):
                    yield cast(Obj, event["object"])


def not_found_message(plural: str, name: str, namespace: str, known: list[str]) -> str:
    """What is missing, and for lieutenants which ones there are instead."""
    hint = f"; lieutenants there: {', '.join(sorted(known))}" if known else \
        f"; there are none in namespace {namespace}"
    kind = KINDS[plural].lower()
    return f"{kind} {name!r} not found in namespace {namespace}" + (
        hint if plural == "lieutenants" else "")


def _api_message(error: ApiException) -> str:
    import json

    try:
        message = json.loads(error.body or "{}").get("message") or error.reason
    except ValueError:
        message = error.reason
    return f"{message} (HTTP {error.status})"


def _reason(error: BaseException) -> str:
    reason = getattr(error, "reason", None)
    return str(reason or error).split(": ")[-1]
