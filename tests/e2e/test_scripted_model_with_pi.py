"""The real pi (pinned, from npm) against the scripted model, over both streaming APIs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from reef_devkit.scripted_model.harness import ScriptedModel

SCRIPT = """
tasks:
  - match: "Create the file"
    steps:
      - tool_calls: [{name: write, arguments: {path: hello.txt, content: "hi there\\n"}}]
      - text: "Created hello.txt."
  - match: "What did you create"
    expect_in_conversation: ["Create the file", "Created hello.txt."]
    steps:
      - text: "I created hello.txt earlier."
"""


def _run_pi(home: Path, workdir: Path, commands: list[tuple[float, dict[str, object]]],
            provider: str, model: str) -> list[dict[str, object]]:
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "PI_OFFLINE": "1",
           "PI_TELEMETRY": "0", "PI_SKIP_VERSION_CHECK": "1"}
    process = subprocess.Popen(
        ["pi", "--mode", "rpc", "--provider", provider, "--model", model,
         "--session", str(home / "session.jsonl")],
        cwd=workdir, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True)
    assert process.stdin is not None and process.stdout is not None
    events: list[dict[str, object]] = []
    for pause, command in commands:
        process.stdin.write(json.dumps(command) + "\n")
        process.stdin.flush()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # read until this command's work settles
            line = process.stdout.readline()
            if not line:
                break
            event = json.loads(line)
            events.append(event)
            if event.get("type") == "agent_end" or (
                    event.get("type") == "response" and command["type"] != "prompt"):
                break
        time.sleep(pause)
    process.stdin.close()
    process.wait(timeout=20)
    return events


@pytest.mark.parametrize("api", ["anthropic-messages", "openai-completions"])
def test_pi_works_through_the_scripted_model_and_keeps_its_context(
    tmp_path: Path, api: str
) -> None:
    assert shutil.which("pi"), "pi is installed by scripts/setup"
    with ScriptedModel(SCRIPT, tmp_path / "model") as model:
        home, workdir = tmp_path / "home", tmp_path / "work"
        (home / ".pi" / "agent").mkdir(parents=True)
        workdir.mkdir()
        (home / ".pi" / "agent" / "models.json").write_text(model.models_json(api=api))
        events = _run_pi(home, workdir, [
            (0, {"id": "1", "type": "prompt", "message": "Create the file please"}),
            (0, {"id": "2", "type": "prompt", "message": "What did you create?"}),
            (0, {"id": "3", "type": "get_last_assistant_text"}),
        ], "scripted", "scripted-1")
        assert (workdir / "hello.txt").read_text() == "hi there\n"  # a real tool call
        last = [e for e in events if e.get("type") == "response" and e.get("id") == "3"]
        assert last and last[0]["data"] == {"text": "I created hello.txt earlier."}
        recorded = model.requests()
        assert [r["task"] for r in recorded] == ["Create the file", "Create the file",
                                                 "What did you create"]
        assert all(r["failures"] == [] for r in recorded), recorded
        assert all(r["api"] == api.split("-")[0] for r in recorded)
        assert "scripted-model-key" not in json.dumps(recorded)  # no credential recorded
