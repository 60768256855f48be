"""Lieutenants and VMNodes as the apiserver has them, kept in memory by list + watch.

The dashboard answers every poll of every open tab from here, so what a page costs the
apiserver is one watch per kind, whatever the number of tabs or the poll rate; listing
every lieutenant (histories included) each second grew with the fleet (see
bench/dashboard.py). A broken stream is re-listed with backoff, and while it is broken the
error is what the page is told, not silently stale data.
"""

from __future__ import annotations

import threading
from typing import Any, cast

import urllib3
from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from reef_operator.cli.plugin.cluster import Cluster, Obj, PluginError
from reef_operator.constants import GROUP, VERSION

PLURALS = ("lieutenants", "vmnodes")
WATCH_SECONDS = 60          # the server ends each watch after this; it is then resumed
RETRY_SECONDS = (0.5, 5.0)  # backoff after a failed list or watch: first, most


class Mirror:
    def __init__(self, cluster: Cluster, all_namespaces: bool) -> None:
        self.cluster, self.all_namespaces = cluster, all_namespaces
        self._objects: dict[str, dict[tuple[str, str], Obj]] = {p: {} for p in PLURALS}
        self._errors: dict[str, str | None] = {p: None for p in PLURALS}
        self._listed = {p: threading.Event() for p in PLURALS}
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def start(self) -> None:
        for plural in PLURALS:
            threading.Thread(target=self._keep, args=(plural,), daemon=True,
                             name=f"mirror-{plural}").start()

    def stop(self) -> None:
        self._stopping.set()

    def items(self, plural: str, wait: float) -> list[Obj]:
        """The objects, sorted as `kubectl get` sorts them; PluginError when the last list
        or watch failed (or nothing was listed within `wait` seconds)."""
        self._listed[plural].wait(wait)
        with self._lock:
            error = self._errors[plural]
            if error is not None:
                raise PluginError(error)
            if not self._listed[plural].is_set():
                raise PluginError(f"no answer from the cluster at {self.cluster.server} "
                                  f"within {wait:g}s")
            return [self._objects[plural][key] for key in sorted(self._objects[plural])]

    def _keep(self, plural: str) -> None:
        delay = RETRY_SECONDS[0]
        while not self._stopping.is_set():
            try:
                version = self._list(plural)
                delay = RETRY_SECONDS[0]
                while not self._stopping.is_set():
                    version = self._follow(plural, version)
            except PluginError as error:
                with self._lock:
                    self._errors[plural] = str(error)
                self._listed[plural].set()     # a waiting page hears the error at once
                self._stopping.wait(delay)
                delay = min(delay * 2, RETRY_SECONDS[1])

    def _lister(self) -> tuple[Any, tuple[str, ...]]:
        custom = self.cluster.custom
        if self.all_namespaces:
            return custom.list_cluster_custom_object, ()
        return custom.list_namespaced_custom_object, (self.cluster.namespace,)

    def _list(self, plural: str) -> str:
        call, scope = self._lister()
        with self.cluster.errors(f"cannot list {plural}"):
            listing = cast(Obj, call(GROUP, VERSION, *scope, plural,
                                     _request_timeout=self.cluster.read_timeout))
        with self._lock:
            self._objects[plural] = {_key(o): o for o in listing.get("items", [])}
            self._errors[plural] = None
        self._listed[plural].set()
        return str(listing["metadata"]["resourceVersion"])

    def _follow(self, plural: str, version: str) -> str:
        """Apply one watch's events; the version to resume from when the server ends it."""
        call, scope = self._lister()
        stream = watch.Watch()
        try:
            for event in stream.stream(call, GROUP, VERSION, *scope, plural,
                                       resource_version=version, timeout_seconds=WATCH_SECONDS,
                                       allow_watch_bookmarks=True,
                                       _request_timeout=WATCH_SECONDS + 15):
                obj = cast(Obj, event["object"])
                version = obj["metadata"].get("resourceVersion") or version
                with self._lock:
                    if event["type"] == "DELETED":
                        self._objects[plural].pop(_key(obj), None)
                    elif event["type"] in ("ADDED", "MODIFIED"):
                        self._objects[plural][_key(obj)] = obj
                if self._stopping.is_set():
                    stream.stop()
        except ApiException as error:
            if error.status == 410:     # too old to resume from: list again
                return self._list(plural)
            with self.cluster.errors(f"cannot watch {plural}"):
                raise
        except (urllib3.exceptions.HTTPError, OSError):
            with self.cluster.errors(f"cannot watch {plural}"):
                raise
        return version


def _key(obj: Obj) -> tuple[str, str]:
    return (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
