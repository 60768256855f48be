"""Run the scripted model as a child process: for tests, benchmarks and the demo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from reef_devkit.scripted_model.server import READY


class ScriptedModel:
    def __init__(self, script: str, work_dir: Path) -> None:
        work_dir.mkdir(parents=True, exist_ok=True)
        script_file = work_dir / "script.yaml"
        script_file.write_text(script)
        self.log_file = work_dir / "scripted-model.log"
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "reef_devkit.scripted_model",
                 "--script", str(script_file)],
                stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True)
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.startswith(READY):
            self._process.wait(timeout=10)
            raise RuntimeError(f"scripted model did not start: {self.log_file.read_text()}")
        self.base_url = line.split()[-1]

    def models_json(self, provider: str = "scripted", api: str = "anthropic-messages",
                    model: str = "scripted-1", context_window: int = 200000) -> str:
        """pi's custom-provider file pointing at this server. pi compacts once a run's
        context passes `context_window` less its reserve (16384 tokens by default), so
        a window a little above the reserve makes it compact after a few tasks."""
        base = self.base_url if api.startswith("anthropic") else self.base_url + "/v1"
        return json.dumps({"providers": {provider: {
            "baseUrl": base, "api": api, "apiKey": "scripted-model-key",
            "models": [{"id": model, "contextWindow": context_window, "maxTokens": 8192}]}}})

    def requests(self, brief: bool = False) -> list[dict[str, Any]]:
        """The requests so far (brief: without system prompt and conversation, with the
        start of the latest user message as `latestUser`)."""
        answer = httpx.get(self.base_url + "/_script/requests",
                           params={"brief": "1"} if brief else None, timeout=30)
        answer.raise_for_status()
        result: list[dict[str, Any]] = answer.json()
        return result

    def forget_requests(self) -> None:
        httpx.delete(self.base_url + "/_script/requests", timeout=10).raise_for_status()

    def set_script(self, script: str) -> None:
        httpx.put(self.base_url + "/_script/script", content=script, timeout=10
                  ).raise_for_status()

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def __enter__(self) -> ScriptedModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
