"""One kind's objects kept in memory by list, then watch: the apiserver's way to follow a
collection without polling it.

A list answers every object and the collection's resourceVersion; a watch from that
version delivers each change after it, in order. The server ends each watch after its
timeout, and the next one resumes from the last version seen (a bookmark advances it
without a change). A version too old to resume from (410 Gone) is listed again, and the
new list replaces what was known: objects it no longer has are reported deleted, objects
it has in another version modified. Any other failure to list or watch is kept as the
collection's `failure` until a list succeeds again, retried with backoff.

`Collection` is what is known, fed lists and events (a unit test feeds it directly);
`ListWatch` feeds it from a `Source` in a daemon thread; `CustomObjects` is the source for
one custom resource, in one namespace or in all.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast

import urllib3
from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from reef_operator.constants import GROUP, VERSION

Obj = dict[str, Any]
Key = tuple[str, str]                        # (namespace, name); namespace "" if cluster-wide
Change = Literal["ADDED", "MODIFIED", "DELETED"]
Listener = Callable[[Change, Obj], None]
GONE = 410
# What talking to the apiserver can fail with; anything else is a bug, not retried.
API_ERRORS = (ApiException, urllib3.exceptions.HTTPError, OSError)


def key(obj: Mapping[str, Any]) -> Key:
    metadata = obj["metadata"]
    return (metadata.get("namespace", ""), metadata["name"])


@dataclass(frozen=True)
class Failure:
    """Why the collection may be stale: which request failed, and how."""

    during: Literal["list", "watch"]
    error: Exception


class Collection:
    """The objects as the last list and the watch events after it show them.

    `changed` is notified after every list, event and failure; listeners are called while
    it is held, once per object that changed, so a listener's own records and a waiter
    on `changed` always agree.
    """

    def __init__(self, listener: Listener | None = None) -> None:
        self.changed = threading.Condition()
        self.answered = threading.Event()    # a list succeeded or something failed
        self.version: str | None = None      # to resume a watch from; None: list first
        self.failure: Failure | None = None
        self._objects: dict[Key, Obj] = {}
        self._listener = listener

    def objects(self) -> list[Obj]:
        """The objects, sorted by namespace and name (as `kubectl get` shows them)."""
        with self.changed:
            return [self._objects[k] for k in sorted(self._objects)]

    def replace(self, listing: Mapping[str, Any]) -> None:
        """A list's answer: every object there is, and the version to watch from."""
        with self.changed:
            listed = {key(obj): cast(Obj, obj) for obj in listing.get("items") or []}
            for gone in [k for k in self._objects if k not in listed]:
                self._tell("DELETED", self._objects.pop(gone))
            for k, obj in listed.items():
                known = self._objects.get(k)
                if known is None or _version(known) != _version(obj):
                    self._objects[k] = obj
                    self._tell("ADDED" if known is None else "MODIFIED", obj)
            self.version = str(listing["metadata"]["resourceVersion"])
            self.failure = None
            self.answered.set()
            self.changed.notify_all()

    def apply(self, event: Mapping[str, Any]) -> None:
        """One watch event: a change to an object, or a bookmark (a version, no change)."""
        kind, obj = event["type"], cast(Obj, event["object"])
        with self.changed:
            self.version = _version(obj) or self.version
            if kind == "DELETED":
                self._objects.pop(key(obj), None)
                self._tell("DELETED", obj)
            elif kind in ("ADDED", "MODIFIED"):
                self._objects[key(obj)] = obj
                self._tell(kind, obj)
            self.changed.notify_all()

    def expire(self) -> None:
        """The version is too old to watch from (410 Gone): the next step is a list."""
        with self.changed:
            self.version = None

    def fail(self, during: Literal["list", "watch"], error: Exception) -> None:
        """A list or watch failed: what is known may be stale until a list succeeds."""
        with self.changed:
            self.failure = Failure(during, error)
            self.version = None
            self.answered.set()
            self.changed.notify_all()

    def _tell(self, change: Change, obj: Obj) -> None:
        if self._listener is not None:
            self._listener(change, obj)


def _version(obj: Mapping[str, Any]) -> str | None:
    return (obj.get("metadata") or {}).get("resourceVersion")


class Source(Protocol):
    """Where a collection comes from: a list, and a watch from a version of it."""

    def list(self) -> Mapping[str, Any]: ...

    def watch(self, version: str) -> Iterator[Mapping[str, Any]]:
        """The events after `version` until the server ends the watch."""
        ...

    def stop(self) -> None:
        """End a watch in progress (from another thread)."""
        ...


class CustomObjects:
    """One custom resource of the reef API group: in `namespace`, or in all if None."""

    def __init__(self, custom: Any, plural: str, namespace: str | None, *,
                 watch_seconds: int = 60, request_timeout: float | None = None) -> None:
        self.custom, self.plural, self.namespace = custom, plural, namespace
        self.watch_seconds, self.request_timeout = watch_seconds, request_timeout
        self._stream: watch.Watch | None = None
        self._stopped = False

    def _call(self) -> tuple[Callable[..., Any], tuple[str, ...]]:
        if self.namespace is None:
            return self.custom.list_cluster_custom_object, (GROUP, VERSION, self.plural)
        return (self.custom.list_namespaced_custom_object,
                (GROUP, VERSION, self.namespace, self.plural))

    def list(self) -> Mapping[str, Any]:
        call, args = self._call()
        return cast(Mapping[str, Any], call(*args, _request_timeout=self.request_timeout))

    def watch(self, version: str) -> Iterator[Mapping[str, Any]]:
        call, args = self._call()
        # Ended by the server after watch_seconds; the client gives up a little later,
        # so a connection lost without a word does not hang the watch for ever.
        stream = self._stream = watch.Watch()
        if self._stopped:
            return
        yield from stream.stream(call, *args, resource_version=version,
                                 timeout_seconds=self.watch_seconds,
                                 allow_watch_bookmarks=True,
                                 _request_timeout=self.watch_seconds + 15)

    def stop(self) -> None:
        self._stopped = True
        if self._stream is not None:
            self._stream.stop()


class ListWatch:
    """Keeps a `Collection` up to date from a `Source`: list, watch, resume, re-list.

    `run()` is the loop (in the calling thread, until `stop()`); `start()` runs it in a
    daemon thread. Backoff after a failure doubles from `retry[0]` up to `retry[1]`
    seconds and starts again after a list succeeds.
    """

    def __init__(self, source: Source, collection: Collection, *,
                 retry: tuple[float, float] = (0.5, 5.0), name: str = "list-watch") -> None:
        self.source, self.collection = source, collection
        self.retry, self.name = retry, name
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ListWatch:
        self._thread = threading.Thread(target=self.run, daemon=True, name=self.name)
        self._thread.start()
        return self

    def stop(self, wait: float = 0) -> None:
        """Stop following; with `wait`, up to so many seconds for the thread to end."""
        self._stopping.set()
        self.source.stop()
        if wait and self._thread is not None:
            self._thread.join(wait)

    def run(self) -> None:
        delay = self.retry[0]
        while not self._stopping.is_set():
            version = self.collection.version
            during: Literal["list", "watch"] = "list" if version is None else "watch"
            try:
                if version is None:
                    self.collection.replace(self.source.list())
                    delay = self.retry[0]
                else:
                    self._follow(version)
            except API_ERRORS as error:
                if isinstance(error, ApiException) and error.status == GONE \
                        and during == "watch":
                    self.collection.expire()
                    continue
                self._failed(during, error, delay)
                delay = min(delay * 2, self.retry[1])

    def _follow(self, version: str) -> None:
        """Apply one watch's events until the server ends it (or `stop()`)."""
        for event in self.source.watch(version):
            if self._stopping.is_set():
                return
            self.collection.apply(event)

    def _failed(self, during: Literal["list", "watch"], error: Exception,
                delay: float) -> None:
        if self._stopping.is_set():     # stopping a watch ends it with an error too
            return
        self.collection.fail(during, error)
        self._stopping.wait(delay)
