"""Heartbeats: when a VM node counts as stale, and when a beat is worth a status write."""

from __future__ import annotations

import datetime

from reef_operator.providers.base import CommandResult
from reef_operator.vmnodes.heartbeat import HeartbeatPolicy, Heartbeats, answered

T0 = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)


def _at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def test_the_policy_comes_from_the_spec_with_defaults() -> None:
    assert HeartbeatPolicy.from_spec({}) == HeartbeatPolicy(60.0, 300.0)
    policy = HeartbeatPolicy.from_spec({"heartbeat": {"intervalSeconds": 5,
                                                      "staleAfterSeconds": 20}})
    assert policy == HeartbeatPolicy(5.0, 20.0)
    assert policy.command_timeout == 5.0
    assert HeartbeatPolicy.from_spec({}).command_timeout == 10.0


def test_only_the_expected_reply_of_a_successful_command_is_a_beat() -> None:
    assert answered(CommandResult(0, "reef-heartbeat\n", ""))
    assert not answered(CommandResult(1, "reef-heartbeat\n", "oops"))
    assert not answered(CommandResult(0, "", ""))


def test_a_beat_is_written_every_half_stale_after_interval() -> None:
    policy = HeartbeatPolicy(interval=10, stale_after=300)
    assert not policy.time_to_write(_at(149), written=T0, alive_before=True)
    assert policy.time_to_write(_at(150), written=T0, alive_before=True)


def test_a_beat_is_written_at_once_when_the_node_was_not_alive_or_has_no_time() -> None:
    policy = HeartbeatPolicy(interval=10, stale_after=300)
    assert policy.time_to_write(_at(1), written=T0, alive_before=False)
    assert policy.time_to_write(_at(1), written=None, alive_before=True)


def test_a_failed_beat_is_stale_only_after_stale_after() -> None:
    policy = HeartbeatPolicy(interval=10, stale_after=300)
    assert policy.stale_message(_at(300), T0, "timeout") is None
    assert policy.stale_message(_at(301), T0, "timeout") == \
        "no heartbeat for 301s (stale after 300s): timeout"
    assert policy.stale_message(_at(1), None, "refused") == "no heartbeat yet: refused"


def test_the_remembered_beat_counts_between_writes() -> None:
    beats = Heartbeats()
    key = ("team-a", "n")
    assert beats.last(key, written=None) is None
    assert beats.last(key, written=T0) == T0
    beats.beat(key, _at(200))
    assert beats.last(key, written=T0) == _at(200)     # a later beat not yet written
    assert beats.last(key, written=_at(400)) == _at(400)  # a later write (another replica)
    assert beats.last(("team-a", "other"), written=None) is None
    beats.forget(key)
    assert beats.last(key, written=T0) == T0
