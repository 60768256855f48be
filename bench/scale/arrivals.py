"""When each object's status arrived, as a list and watch of its kind deliver them, so a
wait can tell when a check first held for each object (not when the wait looked)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from bench.errors import BenchError
from reef_operator.kube.watch import Change, Collection, ListWatch, Obj, Source

StatusCheck = Callable[[Mapping[str, Any]], bool]
START_SECONDS = 30       # for the first list


class Arrivals:
    """Every status of one kind's objects (in one namespace), with when it arrived."""

    def __init__(self, source: Source, plural: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.source, self.plural, self.clock = source, plural, clock
        self.statuses: dict[str, list[tuple[float, dict[str, Any]]]] = {}  # name → arrivals
        self.live: set[str] = set()
        self.collection = Collection(self._arrived)
        self._follower = ListWatch(source, self.collection, name=f"arrivals-{plural}")

    def start(self) -> Arrivals:
        """Follow the kind; returns once the first list is in."""
        self._follower.start()
        if not self.collection.answered.wait(START_SECONDS) or self.collection.failure:
            self.stop()
            raise BenchError(f"cannot follow {self.plural}: "
                             f"{self.collection.failure or 'no answer to a list'}")
        return self

    def stop(self) -> None:
        self._follower.stop()

    def _arrived(self, change: Change, obj: Obj) -> None:
        name = obj["metadata"]["name"]
        if change == "DELETED":
            self.live.discard(name)
        else:
            self.live.add(name)
            self.statuses.setdefault(name, []).append((self.clock(), obj.get("status") or {}))

    def wait(self, check: StatusCheck, count: int, within: float) -> dict[str, float]:
        """Per object, when a status satisfying `check` first arrived; once `count` have."""
        first: dict[str, float] = {}
        scanned: dict[str, int] = {}  # per object, arrivals already looked at
        deadline = time.monotonic() + within
        with self.collection.changed:
            while True:
                for name, arrivals in self.statuses.items():
                    if name in first:
                        continue
                    for arrived, status in arrivals[scanned.get(name, 0):]:
                        if check(status):
                            first[name] = arrived
                            break
                    scanned[name] = len(arrivals)
                if len(first) >= count:
                    return first
                if time.monotonic() >= deadline:
                    listed = sum(check(o.get("status") or {}) for o in self._list())
                    raise BenchError(f"only {len(first)}/{count} {self.plural} got there in "
                                     f"{within:g}s (a fresh list shows {listed}){self._failed()}")
                self.collection.changed.wait(0.5)

    def wait_gone(self, count: int, within: float) -> None:
        deadline = time.monotonic() + within
        with self.collection.changed:
            while self.live:
                if time.monotonic() >= deadline:
                    raise BenchError(f"{len(self.live)}/{count} {self.plural} not deleted "
                                     f"in {within:g}s (a fresh list shows "
                                     f"{len(self._list())}){self._failed()}")
                self.collection.changed.wait(0.5)

    def _list(self) -> list[Obj]:
        """The objects as a fresh list shows them: tells a lost watch from a slow operator."""
        return list(self.source.list().get("items") or [])

    def _failed(self) -> str:
        failure = self.collection.failure
        return f"; the watch failed: {failure.error}" if failure else ""
