"""The scripted model picks its answer from the request alone."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from reef_devkit.scripted_model.script import SUMMARY_TASK, Choice, Message, Script
from reef_devkit.scripted_model.server import anthropic_conversation, build_app, choose

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


# pi's summary request (core/compaction): its system prompt, and the conversation as text.
PI_SUMMARY_SYSTEM = ("You are a context summarization assistant. Your task is to read a "
                     "conversation between a user and an AI coding assistant, then produce a "
                     "structured summary following the exact format specified.")


def _summary_request(conversation: str, previous: str = "") -> dict[str, Any]:
    text = f"<conversation>\n{conversation}\n</conversation>\n\n"
    if previous:
        text += f"<previous-summary>\n{previous}\n</previous-summary>\n\n"
    text += "The messages above are a conversation to summarize. Use this EXACT format: …"
    return {"system": [{"type": "text", "text": PI_SUMMARY_SYSTEM}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}]}


def _choose(script: Script, body: dict[str, Any]) -> Choice:
    return choose(script, body, "anthropic", anthropic_conversation(body))


def test_a_summary_request_is_answered_with_a_summary_quoting_the_first_request() -> None:
    # The serialised conversation names a task ("scaffold"): still a summary, not a step.
    body = _summary_request("[User]: please scaffold it\nwith care\n\n[Assistant]: Scaffolded."
                            "\n\n[User]: now the database")
    choice = _choose(Script.parse(SCRIPT), body)
    assert choice.task == SUMMARY_TASK and choice.failures == ()
    assert choice.step.text == ("Scripted summary of the conversation so far. It began with: "
                                "«please scaffold it»")
    # When pi compacts again it sends the earlier summary: the beginning stays quoted.
    again = _choose(Script.parse(SCRIPT), _summary_request(
        "[User]: later work", previous=choice.step.text))
    assert again.step.text == choice.step.text
    # The same conversation under another system prompt is an ordinary request.
    body["system"] = "You are the lieutenant 'api'."
    assert _choose(Script.parse(SCRIPT), body).task != SUMMARY_TASK


def test_a_script_may_name_the_summary() -> None:
    script = Script.parse(SCRIPT + 'summary: "SUMMARY-MARKER: scaffolded"\n')
    assert _choose(script, _summary_request("[User]: scaffold")).step.text == \
        "SUMMARY-MARKER: scaffolded"
    paced = _choose(Script.parse(SCRIPT + "summary: {delay: 0.5, chunks: 4}\n"),
                    _summary_request("[User]: scaffold"))
    assert (paced.step.delay, paced.step.chunks) == (0.5, 4)
    assert "It began with: «scaffold»" in paced.step.text            # the default, paced
    with pytest.raises(ValueError, match="'summary' is the text"):
        Script.parse(SCRIPT + "summary: [a, b]\n")


async def test_the_record_says_what_was_answered_and_can_be_emptied() -> None:
    async with TestClient(TestServer(build_app(Script.parse(SCRIPT)))) as http:
        answer = await http.post("/v1/messages", json=_summary_request("[User]: scaffold"))
        assert answer.status == 200 and "It began with" in await answer.text()
        recorded = await (await http.get("/_script/requests")).json()
        assert [(r["task"], r["answer"]) for r in recorded] == [
            (SUMMARY_TASK, "Scripted summary of the conversation so far. It began with: "
                           "«scaffold»")]
        assert await (await http.delete("/_script/requests")).json() == {"forgotten": 1}
        assert await (await http.get("/_script/requests")).json() == []
