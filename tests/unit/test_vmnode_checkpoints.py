"""Checkpoints: when the next one is due, which ones are kept."""

from __future__ import annotations

import datetime

from reef_operator.vmnodes.checkpoints import CheckpointPolicy

T0 = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)


def _taken(*minutes: int) -> list[dict[str, str]]:
    return [{"commitId": f"c{m}",
             "createdAt": (T0 + datetime.timedelta(minutes=m)).isoformat().replace("+00:00", "Z")}
            for m in minutes]


def test_no_policy_no_checkpoints() -> None:
    assert CheckpointPolicy.from_spec({}) is None
    assert CheckpointPolicy.from_spec({"checkpoints": None}) is None


def test_the_policy_comes_from_the_spec_with_defaults() -> None:
    assert CheckpointPolicy.from_spec({"checkpoints": {"retain": 2}}) == \
        CheckpointPolicy(3600.0, 2)
    assert CheckpointPolicy.from_spec({"checkpoints": {"intervalSeconds": 60}}) == \
        CheckpointPolicy(60.0, 24)


def test_the_first_checkpoint_is_due_at_once_then_one_interval_after_the_last() -> None:
    policy = CheckpointPolicy(interval=600, retain=3)
    assert policy.due_in([], T0) == 0.0
    taken = _taken(0, 10)
    assert policy.due_in(taken, T0 + datetime.timedelta(minutes=12)) == 480.0
    assert policy.due_in(taken, T0 + datetime.timedelta(minutes=30)) == 0.0


def test_the_newest_are_kept_and_the_oldest_expire() -> None:
    policy = CheckpointPolicy(interval=600, retain=2)
    kept, expired = policy.prune(_taken(0, 10, 20))
    assert [c["commitId"] for c in kept] == ["c10", "c20"]
    assert [c["commitId"] for c in expired] == ["c0"]
    assert policy.prune(_taken(0, 10)) == (_taken(0, 10), [])
    assert CheckpointPolicy(interval=600, retain=0).prune(_taken(0)) == ([], _taken(0))
