"""The scripted model picks its answer from the request alone."""

from __future__ import annotations

import pytest

from reef_devkit.scripted_model.script import Message, Script

SCRIPT = """
tasks:
  - match: "scaffold"
    steps:
      - tool_calls: [{name: write, arguments: {path: a.txt, content: "x"}}]
      - text: "Scaffolded."
  - match: "database"
    expect_in_conversation: ["scaffold", "Scaffolded."]
    steps:
      - text: "Pool added."
  - match: "explode"
    steps:
      - error: {status: 500, message: "overloaded"}
"""


def test_steps_follow_the_assistant_turns_after_the_task_message() -> None:
    script = Script.parse(SCRIPT)
    first = script.choose([Message("user", "please scaffold it")])
    assert first.step.tool_calls[0].name == "write" and first.failures == ()
    second = script.choose([Message("user", "please scaffold it"),
                            Message("assistant", "{}"), Message("user", "ok", True)])
    assert second.step.text == "Scaffolded."
    # Retrying the same request gives the same answer: nothing is remembered.
    assert script.choose([Message("user", "please scaffold it")]).step == first.step


def test_expectations_about_earlier_conversation() -> None:
    script = Script.parse(SCRIPT)
    kept = script.choose([Message("user", "scaffold"), Message("assistant", "Scaffolded."),
                          Message("user", "now the database")])
    assert kept.step.text == "Pool added." and kept.failures == ()
    forgot = script.choose([Message("user", "now the database")])
    assert len(forgot.failures) == 2 and "'Scaffolded.'" in forgot.failures[1]


def test_errors_unknown_messages_and_bad_scripts() -> None:
    script = Script.parse(SCRIPT)
    assert script.choose([Message("user", "explode")]).step.error_status == 500
    unknown = script.choose([Message("user", "something else")])
    assert unknown.failures == ("no task matches the latest user message",)
    with pytest.raises(ValueError, match="needs 'match'"):
        Script.parse("tasks: [{steps: [{text: x}]}]")
    with pytest.raises(ValueError, match="list under 'tasks'"):
        Script.parse("tasks: nope")
