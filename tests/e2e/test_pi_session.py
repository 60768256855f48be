"""The pi session driver on a Local VM: real pi, real tmux, the scripted model."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from reef_devkit.scripted_model.harness import ScriptedModel
from reef_devkit.versim.harness import VersSimulator
from reef_operator.agent.events import outcome_of
from reef_operator.agent.framing import Rejected
from reef_operator.agent.session import PRELUDE, PiSession, SessionSpec
from reef_operator.providers.base import Shell, VmRequest
from reef_operator.providers.local.provider import LocalProvider
from reef_operator.providers.vers.client import VersClient
from reef_operator.providers.vers.ssh import SshSettings, VersConnector
from reef_operator.secret import Secret

SECRET_VALUE = "sk-reef-test-" + "9f2c" * 8
SCRIPT = """
tasks:
  - match: "Create notes.txt"
    steps:
      - tool_calls:
          - name: bash
            arguments: {command: "echo remembered > notes.txt && echo $REEF_SECRET_PRESENT"}
      - text: "Wrote notes.txt."
  - match: "What did you write"
    expect_in_conversation: ["Create notes.txt", "Wrote notes.txt."]
    steps:
      - text: "I wrote notes.txt."
"""


@pytest.fixture(params=["local", "vers"])
async def vm_shell(request: pytest.FixtureRequest,
                   versim: VersSimulator) -> AsyncIterator[Shell]:
    """A shell on a Local VM, or on a simulated Vers VM over SSH inside TLS."""
    if request.param == "local":
        root = Path(tempfile.mkdtemp(prefix="reef-pi-"))  # short: tmux socket paths
        provider = LocalProvider(root)
        vm_id = await provider.create(VmRequest(owner_uid="u1", name="api", namespace="t"))
        try:
            yield await provider.shell(vm_id)
        finally:
            await provider.delete(vm_id)
            shutil.rmtree(root, ignore_errors=True)
        return
    async with VersClient(versim.base_url, versim.api_key) as vers:
        async def key(vm_id: str) -> Secret:
            return (await vers.ssh_key(vm_id)).private_key

        connector = VersConnector(SshSettings(
            vm_domain=f"vm.{versim.domain}", port=versim.tls_port, connect_host="127.0.0.1",
            tls_verify=versim.ca_file), key)
        vm_id = await vers.new_root(wait_boot=True)
        try:
            yield await connector.shell(vm_id)
        finally:
            await connector.close()
            await vers.delete(vm_id)


async def _until_agent_end(session: PiSession, offset: int,
                           seen: list[dict[str, Any]]) -> int:
    async for event, end in session.events(offset):
        assert not isinstance(event, Rejected), event.reason
        seen.append(event)
        if event.get("type") == "agent_end":
            return end
    raise AssertionError("event stream ended")


async def test_session_runs_pi_survives_restarts_and_resumes_from_an_offset(
    vm_shell: Shell, tmp_path: Path
) -> None:
    shell = vm_shell
    with ScriptedModel(SCRIPT, tmp_path / "model") as model:
        spec = SessionSpec(
            name="api", provider="scripted", model="scripted-1",
            system_prompt="You are the lieutenant 'api'. Role: ROLE-MARKER build the API.",
            credentials={"REEF_SECRET_PRESENT": Secret(SECRET_VALUE)},
            models_json=Secret(model.models_json()),
        )
        session = PiSession(shell, spec)
        assert await session.start() is True
        assert await session.start() is False  # idempotent: already running
        assert await session.running()

        await session.send({"id": "t1", "type": "prompt", "message": "Create notes.txt now"})
        seen: list[dict[str, Any]] = []
        first_end = await asyncio.wait_for(_until_agent_end(session, 0, seen), 60)
        outcome = outcome_of(seen[-1])
        assert outcome is not None and outcome.text == "Wrote notes.txt."
        written = await shell.run("cat $HOME/workspace/notes.txt")
        assert written.stdout == "remembered\n"
        tool_end = next(e for e in seen if e.get("type") == "tool_execution_end")
        assert SECRET_VALUE in str(tool_end)  # the agent's environment has the credential ...
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        assert SECRET_VALUE not in ps          # ... but no process's arguments do

        # Reading again from a mid-stream offset yields exactly the rest, nothing twice.
        ends: list[int] = []
        replay: list[dict[str, Any]] = []
        async for event, end in session.events(0):
            assert not isinstance(event, Rejected), event.reason
            replay.append(event)
            ends.append(end)
            if end == first_end:
                break
        assert [e.get("type") for e in replay] == [e.get("type") for e in seen]
        middle = ends[len(ends) // 2]
        rest: list[dict[str, Any]] = []
        async for event, end in session.events(middle):
            assert not isinstance(event, Rejected), event.reason
            rest.append(event)
            if end == first_end:
                break
        assert rest == replay[len(ends) // 2 + 1:]

        # pi killed on the VM: restarted on the same session file, the conversation goes on.
        killed = await shell.run(PRELUDE + "kill -9 $(pgrep -P $($T display -p -t pi-rpc "
                                 "'#{pane_pid}')) && sleep 0.5")
        assert killed.exit_status == 0, killed
        assert not await session.running()
        assert await session.start() is True
        await session.send({"id": "t2", "type": "prompt", "message": "What did you write?"})
        more: list[dict[str, Any]] = []
        await asyncio.wait_for(_until_agent_end(session, first_end, more), 60)
        outcome = outcome_of(more[-1])
        assert outcome is not None and outcome.text == "I wrote notes.txt."
        recorded = model.requests()
        assert all(r["failures"] == [] for r in recorded), recorded
        assert "ROLE-MARKER" in recorded[-1]["system"]  # the role reached the system prompt
        await session.stop()
        assert not await session.running()
