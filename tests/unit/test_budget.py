"""How the object's bytes are counted, and that the budgets add up."""

from __future__ import annotations

from reef_operator.api import budget


def test_the_split_leaves_metadata_headroom() -> None:
    assert budget.SPEC_TASKS_BUDGET + budget.STATUS_BUDGET + budget.METADATA_HEADROOM \
        == budget.OBJECT_BUDGET == 512 * 1024
    assert budget.HISTORY_BUDGET < budget.STATUS_BUDGET


def test_multi_byte_characters_count_their_bytes() -> None:
    assert budget.stored_bytes("é") == len('"é"'.encode()) == 4
    assert budget.stored_bytes("😀" * 10) == 2 + 40


def test_html_characters_count_as_go_escapes_them() -> None:
    # The apiserver stores "<" as \u003c: six bytes.
    assert budget.stored_bytes("<a&b>") == 2 + 2 + 3 * 6


def test_spec_tasks_bytes_measures_only_the_task_list() -> None:
    tasks = [{"name": "a", "message": "hi"}]
    spec = {"role": "x" * 1000, "tasks": tasks}
    assert budget.spec_tasks_bytes(spec) == len('[{"name":"a","message":"hi"}]')
    assert budget.spec_tasks_bytes({"role": "x"}) == 2
