"""A coordinator: the real pi in RPC mode with the pi-reef package, on the scripted model,
reaching the test apiserver through a kubeconfig whose user reads a tokenFile."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from reef_devkit.scripted_model.harness import ScriptedModel
from tests.conftest import REPO_ROOT

EXTENSION = REPO_ROOT / "extensions" / "pi-reef" / "index.ts"


def tokenfile_kubeconfig(admin_kubeconfig: Path, namespace: str, directory: Path) -> Path:
    """The admin's kubeconfig with its token moved into a file (as a lieutenant's VM gets
    it) and `namespace` as its context's namespace."""
    config = yaml.safe_load(admin_kubeconfig.read_text())
    current = config["current-context"]
    context = next(c for c in config["contexts"] if c["name"] == current)["context"]
    user = next(u for u in config["users"] if u["name"] == context["user"])["user"]
    token_file = directory / "token"
    token_file.write_text(user.pop("token") + "\n")
    user["tokenFile"] = str(token_file)
    context["namespace"] = namespace
    path = directory / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


class Coordinator:
    """One pi process; every event it prints is kept (a thread reads them)."""

    def __init__(self, home: Path, workdir: Path, session: Path, kubeconfig: Path,
                 model: ScriptedModel, env: dict[str, str] | None = None) -> None:
        (home / ".pi" / "agent").mkdir(parents=True, exist_ok=True)
        (home / ".pi" / "agent" / "models.json").write_text(model.models_json())
        workdir.mkdir(parents=True, exist_ok=True)
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Condition()
        self._ids = 0
        self.stderr = home / "pi.stderr"
        environment = {"PATH": os.environ["PATH"], "HOME": str(home), "PI_OFFLINE": "1",
                       "PI_TELEMETRY": "0", "PI_SKIP_VERSION_CHECK": "1",
                       "KUBECONFIG": str(kubeconfig), **(env or {})}
        with self.stderr.open("ab") as stderr:
            self.process = subprocess.Popen(
                ["pi", "--mode", "rpc", "--provider", "scripted", "--model", "scripted-1",
                 "--session", str(session), "-e", str(EXTENSION)],
                cwd=workdir, env=environment, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=stderr, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            event = json.loads(line)
            with self._lock:
                self.events.append(event)
                self._lock.notify_all()

    def _wait(self, start: int, predicate: Any, within: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + within
        with self._lock:
            while True:
                for event in self.events[start:]:
                    if predicate(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    raise AssertionError(f"coordinator: no {what}; stderr: "
                                         f"{self.stderr.read_text()[-2000:]}")
                self._lock.wait(left)

    def command(self, body: dict[str, Any], within: float = 30) -> dict[str, Any]:
        self._ids += 1
        ident = f"c{self._ids}"
        start = len(self.events)
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"id": ident, **body}) + "\n")
        self.process.stdin.flush()
        answer = self._wait(start, lambda e: e.get("type") == "response" and e.get("id") == ident,
                            within, f"response to {body['type']}")
        assert answer["success"], answer
        return answer

    def state(self) -> dict[str, Any]:
        data: dict[str, Any] = self.command({"type": "get_state"})["data"]
        return data

    def prompt(self, message: str, within: float = 60) -> list[dict[str, Any]]:
        """Send a prompt to an idle coordinator; the events of its run, up to agent_end."""
        start = len(self.events)
        self.command({"type": "prompt", "message": message})
        self._wait(start, lambda e: e.get("type") == "agent_end", within, f"end of {message!r}")
        with self._lock:
            return self.events[start:]

    def wait_idle(self, within: float = 60) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            state = self.state()
            if not state["isStreaming"] and not state["pendingMessageCount"]:
                return
            with self._lock:
                self._lock.wait(0.2)
        raise AssertionError("coordinator: still busy")

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()          # EOF: pi shuts down
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=10)


def tool_results(events: list[dict[str, Any]], tool: str) -> list[dict[str, Any]]:
    """`tool_execution_end` events of `tool`: {result: {content, details}, isError}."""
    return [e for e in events
            if e.get("type") == "tool_execution_end" and e.get("toolName") == tool]


def text_of(result: dict[str, Any]) -> str:
    return "\n".join(str(c.get("text", "")) for c in result["result"]["content"])


def widget(events: list[dict[str, Any]]) -> list[str] | None:
    """The lines of pi-reef's widget as the latest setWidget request left them."""
    shown = [e for e in events if e.get("type") == "extension_ui_request"
             and e.get("method") == "setWidget" and e.get("widgetKey") == "pi-reef"]
    return shown[-1].get("widgetLines") if shown else None
