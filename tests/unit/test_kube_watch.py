"""The list-and-watch recorder: what a list and each watch event make of the collection,
and the loop's order of requests (list, watch from the list's version, resume, re-list on
410 Gone, back off after a failure), fed from a scripted source."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

import pytest
from kubernetes.client.exceptions import ApiException

from reef_operator.kube.watch import Change, Collection, ListWatch


def _obj(name: str, version: str, namespace: str = "ns", **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "resourceVersion": version},
            "status": status}


def _listing(version: str, *objects: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"resourceVersion": version}, "items": list(objects)}


def _event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "object": obj}


class Changes:
    def __init__(self) -> None:
        self.seen: list[tuple[Change, str, str]] = []

    def __call__(self, change: Change, obj: dict[str, Any]) -> None:
        self.seen.append((change, obj["metadata"]["name"], obj["metadata"]["resourceVersion"]))


def _names(collection: Collection) -> list[tuple[str, str]]:
    return [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in collection.objects()]


def test_a_list_then_events_keep_the_objects_by_namespace_and_name() -> None:
    changes = Changes()
    collection = Collection(changes)
    collection.replace(_listing("10", _obj("b", "3"), _obj("a", "4", namespace="z")))
    assert collection.version == "10" and collection.answered.is_set()
    assert _names(collection) == [("ns", "b"), ("z", "a")]

    collection.apply(_event("ADDED", _obj("a", "11")))
    collection.apply(_event("MODIFIED", _obj("b", "12", phase="Idle")))
    collection.apply(_event("DELETED", _obj("a", "13", namespace="z")))
    assert _names(collection) == [("ns", "a"), ("ns", "b")]
    assert collection.objects()[1]["status"] == {"phase": "Idle"}
    assert collection.version == "13"
    assert changes.seen == [("ADDED", "b", "3"), ("ADDED", "a", "4"), ("ADDED", "a", "11"),
                            ("MODIFIED", "b", "12"), ("DELETED", "a", "13")]


def test_a_bookmark_moves_the_version_and_changes_nothing() -> None:
    changes = Changes()
    collection = Collection(changes)
    collection.replace(_listing("10", _obj("a", "3")))
    collection.apply({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "20"}}})
    assert collection.version == "20"
    assert _names(collection) == [("ns", "a")]
    assert changes.seen == [("ADDED", "a", "3")]


def test_a_new_list_reports_what_changed_while_no_watch_was_there() -> None:
    changes = Changes()
    collection = Collection(changes)
    collection.replace(_listing("10", _obj("kept", "1"), _obj("changed", "2"),
                                _obj("gone", "3")))
    changes.seen.clear()
    collection.replace(_listing("30", _obj("kept", "1"), _obj("changed", "25"),
                                _obj("new", "26")))
    assert sorted(changes.seen) == [("ADDED", "new", "26"), ("DELETED", "gone", "3"),
                                    ("MODIFIED", "changed", "25")]
    assert _names(collection) == [("ns", "changed"), ("ns", "kept"), ("ns", "new")]


def test_a_failure_is_kept_until_a_list_succeeds() -> None:
    collection = Collection()
    collection.replace(_listing("10", _obj("a", "1")))
    error = ApiException(status=500, reason="boom")
    collection.fail("watch", error)
    assert collection.failure is not None
    assert (collection.failure.during, collection.failure.error) == ("watch", error)
    assert collection.version is None                    # the next step is a list
    assert _names(collection) == [("ns", "a")]           # stale, but not forgotten
    collection.replace(_listing("11", _obj("a", "1")))
    assert collection.failure is None


class Script:
    """A source answering from a script of (request, answer); once it runs out, the
    follower is stopped and the last watch ends."""

    def __init__(self, *steps: tuple[str, Any]) -> None:
        self.steps = list(steps)
        self.requests: list[str] = []
        self.follower: ListWatch | None = None

    def list(self) -> Mapping[str, Any]:
        self.requests.append("list")
        return self._answer()  # type: ignore[no-any-return]

    def watch(self, version: str) -> Iterator[Mapping[str, Any]]:
        self.requests.append(f"watch {version}")
        if not self.steps:
            assert self.follower is not None
            self.follower.stop()
            return iter(())
        return iter(self._answer())

    def _answer(self) -> Any:
        request, answer = self.steps.pop(0)
        assert request == self.requests[-1].split()[0], (request, self.requests)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def stop(self) -> None:
        pass


def _run(script: Script, collection: Collection) -> None:
    follower = script.follower = ListWatch(script, collection, retry=(0, 0))
    follower.run()


def test_a_watch_starts_at_the_list_and_resumes_where_the_server_ended_it() -> None:
    collection = Collection()
    script = Script(("list", _listing("10", _obj("a", "1"))),
                    ("watch", [_event("MODIFIED", _obj("a", "11")),
                               _event("ADDED", _obj("b", "12"))]),
                    ("watch", [{"type": "BOOKMARK",
                                "object": {"metadata": {"resourceVersion": "15"}}}]))
    _run(script, collection)
    assert script.requests == ["list", "watch 10", "watch 12", "watch 15"]
    assert _names(collection) == [("ns", "a"), ("ns", "b")]


def test_410_gone_lists_again_and_the_new_list_replaces_what_was_known() -> None:
    changes = Changes()
    collection = Collection(changes)
    script = Script(("list", _listing("10", _obj("a", "1"), _obj("b", "2"))),
                    ("watch", ApiException(status=410, reason="Expired")),
                    ("list", _listing("40", _obj("a", "30"))))
    _run(script, collection)
    assert script.requests == ["list", "watch 10", "list", "watch 40"]
    assert changes.seen[2:] == [("DELETED", "b", "2"), ("MODIFIED", "a", "30")]
    assert collection.failure is None


class Failures(Collection):
    """A collection that also keeps every failure it was told."""

    def __init__(self) -> None:
        super().__init__()
        self.told: list[str] = []

    def fail(self, during: Literal["list", "watch"], error: Exception) -> None:
        self.told.append(f"{during}: {error}")
        super().fail(during, error)


def test_a_failed_list_or_watch_is_told_then_listed_again() -> None:
    collection = Failures()
    script = Script(("list", ApiException(status=403, reason="Forbidden")),
                    ("list", _listing("10")),
                    ("watch", ConnectionResetError("reset by peer")),
                    ("list", _listing("20", _obj("a", "15"))))
    _run(script, collection)
    assert script.requests == ["list", "list", "watch 10", "list", "watch 20"]
    assert collection.told[0].startswith("list: (403)")
    assert collection.told[1] == "watch: reset by peer"
    assert collection.failure is None and _names(collection) == [("ns", "a")]


def test_an_error_that_is_not_the_apiservers_is_not_retried() -> None:
    script = Script(("list", _listing("10")), ("watch", ValueError("a bug")))
    with pytest.raises(ValueError, match="a bug"):
        _run(script, Collection())
