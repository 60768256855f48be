"""What the scripted model answers, chosen from the request alone.

A script is a list of tasks. Each task names a substring of the user message
that starts it and lists the steps of the model's answer: text, tool calls,
or a provider error. The step is picked by counting the assistant messages
after that user message in the request's conversation, so the answer depends
only on the request: a retried request gets the same answer, and an operator
restart changes nothing. Checks name earlier conversation text that must be
present, which is how tests prove the agent kept its context.

    tasks:
      - match: "Create a Node.js Express API"
        steps:
          - tool_calls: [{name: write, arguments: {path: api/src/config.ts, content: "…"}}]
          - text: "Scaffolded the server."
      - match: "Add PostgreSQL"
        expect_in_conversation: ["Create a Node.js Express API", "Scaffolded the server."]
        steps:
          - text: "Added the pool."
    summary: "The user builds an Express API; the server is scaffolded."

When pi compacts a long conversation it asks the model for a summary: a request with
its own system prompt (SUMMARY_SYSTEM_PROMPT) and one user message holding the whole
conversation as text. That request is answered with the script's `summary`, or by
default with one that quotes the conversation's first user message, so a test can
find the summary in the requests that follow. `summary` is a text or a step
(`{text, delay, chunks}`; without text, the default text paced as the step says).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import yaml


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: Mapping[str, Any]


@dataclass(frozen=True)
class Step:
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    error_status: int = 0            # > 0: answer with this HTTP status instead
    error_message: str = ""
    delay: float = 0.0               # seconds between streamed chunks
    chunks: int = 1                  # how many deltas the text is split into


@dataclass(frozen=True)
class Task:
    match: str
    steps: tuple[Step, ...]
    expect_in_conversation: tuple[str, ...] = ()


@dataclass(frozen=True)
class Choice:
    """The answer for one request, and any failed expectation."""

    step: Step
    task: str
    failures: tuple[str, ...] = ()


# How pi (core/compaction) asks for a summary: the system prompt of every summary request.
SUMMARY_SYSTEM_PROMPT = "You are a context summarization assistant."
SUMMARY_TASK = "(summary)"              # the task a summary request is recorded under
DEFAULT_SUMMARY = "Scripted summary of the conversation so far. It began with: «{first}»"
_QUOTE_CHARS = 200


def is_summary_request(system: str) -> bool:
    return system.lstrip().startswith(SUMMARY_SYSTEM_PROMPT)


@dataclass
class Script:
    tasks: list[Task] = field(default_factory=list)
    fallback: Step = field(default_factory=lambda: Step(text="(the script has no step for this)"))
    summary: Step = field(default_factory=Step)  # answers summary requests (text "": default)

    @classmethod
    def parse(cls, text: str) -> Script:
        data = yaml.safe_load(text) or {}
        if not isinstance(data, dict) or not isinstance(data.get("tasks", []), list):
            raise ValueError("a script is a mapping with a list under 'tasks'")
        summary = data.get("summary", "")
        if not isinstance(summary, str | dict):
            raise ValueError("'summary' is the text (or a step) that answers pi's summary "
                             "requests")
        return cls([_task(t, i) for i, t in enumerate(data.get("tasks", []))],
                   summary=_step(summary, "summary") if isinstance(summary, dict)
                   else Step(text=summary))

    def summarize(self, conversation: Sequence[Message]) -> Choice:
        """The answer to a summary request, whose one user message is the conversation
        as pi serialises it (`[User]: …` blocks, an earlier summary in
        `<previous-summary>` tags when pi compacts again)."""
        if self.summary.text:
            return Choice(self.summary, SUMMARY_TASK)
        request = conversation[-1].text if conversation else ""
        # When pi compacts again the beginning is already quoted in the earlier summary.
        text = _between(request, "<previous-summary>\n", "\n</previous-summary>") or \
            DEFAULT_SUMMARY.format(first=_between(request, "[User]: ", "\n")[:_QUOTE_CHARS]
                                   or "(nothing)")
        return Choice(replace(self.summary, text=text), SUMMARY_TASK)

    def choose(self, conversation: Sequence[Message]) -> Choice:
        """The step for a request whose messages (oldest first) are `conversation`."""
        for index in range(len(conversation) - 1, -1, -1):
            message = conversation[index]
            if message.role != "user" or message.is_tool_result:
                continue
            task = next((t for t in self.tasks if t.match in message.text), None)
            if task is None:
                continue
            earlier = "\n".join(m.text for m in conversation[:index])
            failures = tuple(f"task {task.match!r}: expected earlier conversation to contain "
                             f"{wanted!r}" for wanted in task.expect_in_conversation
                             if wanted not in earlier)
            answered = sum(1 for m in conversation[index + 1:] if m.role == "assistant")
            step = task.steps[min(answered, len(task.steps) - 1)]
            return Choice(step, task.match, failures)
        return Choice(self.fallback, "", ("no task matches the latest user message",))


@dataclass(frozen=True)
class Message:
    """A conversation message reduced to what the script looks at."""

    role: str
    text: str
    is_tool_result: bool = False


def _between(text: str, start: str, end: str) -> str:
    """The text after the first `start` up to the next `end` (or the end), stripped."""
    begin = text.find(start)
    if begin < 0:
        return ""
    begin += len(start)
    stop = text.find(end, begin)
    return text[begin:stop if stop >= 0 else len(text)].strip()


def _task(data: Any, index: int) -> Task:
    if not isinstance(data, dict) or not data.get("match") or not data.get("steps"):
        raise ValueError(f"task {index}: needs 'match' and a non-empty 'steps' list")
    return Task(
        match=str(data["match"]),
        steps=tuple(_step(s, index) for s in data["steps"]),
        expect_in_conversation=tuple(str(x) for x in data.get("expect_in_conversation", [])),
    )


def _step(data: Any, index: int | str) -> Step:
    if not isinstance(data, dict):
        raise ValueError(f"task {index}: each step is a mapping")
    calls = tuple(ToolCall(str(c["name"]), dict(c.get("arguments") or {}))
                  for c in data.get("tool_calls") or [])
    error = data.get("error") or {}
    return Step(
        text=str(data.get("text", "")),
        tool_calls=calls,
        error_status=int(error.get("status", 0)) if error else 0,
        error_message=str(error.get("message", "")) if error else "",
        delay=float(data.get("delay", 0.0)),
        chunks=max(1, int(data.get("chunks", 1))),
    )
