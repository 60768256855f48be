"""A pi RPC session on a VM, kept under tmux so it outlives the operator.

Layout on the VM, all of it private to the VM's user ($STATE is 0700):
    $STATE = $HOME/.reef            run-pi.sh, credentials.env (0600), system-prompt.md,
                                    sessions/<name>.jsonl (pi's conversation)
    $RUN = $STATE/run               in (FIFO), out (events, appended), err, sent, tmux.sock
The run directory is not under a shared /tmp: another user of the VM could
otherwise create the predictable path first and read or feed pi's streams. A
VM still running pi under the former `${TMPDIR:-/tmp}/pi-rpc` (owned by its
user) is moved over once: that tmux server is stopped and its event log and
sent-log copied, so offsets and the exactly-once record carry on.
tmux session `pi-keeper` holds the FIFO open for writing, so pi never sees
EOF on stdin; `pi-rpc` runs pi reading the FIFO and appending to `out`, so
every event ever written stays readable from any byte offset. pi runs with
`--session` on a stable path: restarted, it continues the same conversation.

Secrets (model API keys, keys inside models.json) travel over the command's
stdin into 0600 files and are sourced inside the tmux command: they never
appear in a process's arguments.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from reef_operator.agent.framing import MAX_EVENT_LINE, LineSplitter, Oversized, Rejected, decode
from reef_operator.providers.base import Shell
from reef_operator.providers.errors import ShellError
from reef_operator.secret import Secret

PRELUDE = 'STATE="$HOME/.reef"; RUN="$STATE/run"; T="tmux -S $RUN/tmux.sock"; '
# The former shared location, moved over when it holds our own pi (see the docstring).
MOVE_LEGACY_RUN = (
    'old="${TMPDIR:-/tmp}/pi-rpc"; '
    'if [ ! -e "$RUN/out" ] && [ -d "$old" ] && [ ! -L "$old" ] && [ -O "$old" ]; then '
    '{ [ -S "$old/tmux.sock" ] && tmux -S "$old/tmux.sock" kill-server 2>/dev/null; true; } && '
    'for f in out sent; do [ -f "$old/$f" ] && [ -O "$old/$f" ] && cp "$old/$f" "$RUN/$f"; '
    'done; true; fi')
READ_CHUNK = 1 << 16
CLOSE_WAIT = 5.0              # seconds to wait for the log's reader to be gone once closed


@dataclass(frozen=True)
class SessionSpec:
    name: str                                   # the session file's name (the lieutenant's)
    provider: str
    model: str
    system_prompt: str                          # appended to pi's own system prompt
    thinking: str | None = None
    credentials: Mapping[str, Secret] = field(default_factory=dict)
    models_json: Secret | None = None           # may hold API keys: treated as a secret
    env: Mapping[str, str] = field(default_factory=dict)


class SessionError(RuntimeError):
    """pi could not be started or reached; the message says which step failed."""


class PiSession:
    def __init__(self, shell: Shell, spec: SessionSpec) -> None:
        self.shell = shell
        self.spec = spec

    @property
    def session_path(self) -> str:
        return f"$STATE/sessions/{self.spec.name}.jsonl"

    async def start(self) -> bool:
        """Make sure pi runs; True if it had to be (re)started. Idempotent."""
        await self._upload("run-pi.sh", self._launcher(), mode="700")
        await self._upload("system-prompt.md", self.spec.system_prompt)
        await self._upload("credentials.env", "".join(
            f"{key}={shlex.quote(value.reveal())}\n"
            for key, value in sorted(self.spec.credentials.items())))
        if self.spec.models_json is not None:
            await self._run('mkdir -p "$HOME/.pi/agent" && umask 077 && '
                            'cat > "$HOME/.pi/agent/models.json"',
                            stdin=self.spec.models_json.reveal(), step="write models.json")
        result = await self._run(
            'umask 077 && mkdir -p "$STATE" && chmod 700 "$STATE" && '
            '{ [ ! -L "$RUN" ] || { echo "$RUN is a symbolic link" >&2; exit 1; }; } && '
            'mkdir -p "$RUN" "$STATE/sessions" "$HOME/workspace" && chmod 700 "$RUN" && '
            f'{{ {MOVE_LEGACY_RUN}; }} && '
            '{ [ -p "$RUN/in" ] || mkfifo -m 600 "$RUN/in"; } && touch "$RUN/out" "$RUN/err" && '
            '{ $T has-session -t pi-keeper 2>/dev/null || '
            '$T new-session -d -s pi-keeper "exec sleep infinity > \'$RUN/in\'"; } && '
            'if $T has-session -t pi-rpc 2>/dev/null; then echo running; else '
            '$T new-session -d -s pi-rpc -c "$HOME/workspace" "exec \'$STATE/run-pi.sh\'" '
            '&& echo started; fi', step="start pi under tmux")
        return "started" in result

    async def take_over(self, source: str) -> bool:
        """Make a VM booted from another lieutenant's checkpoint this session's own: True if
        it did (once per VM; later calls find it done).

        The checkpoint holds the source's whole VM: its pi (still running on a platform
        that keeps memory), its event log, its sent-log and its FIFO are the source's and
        go, and so do the source's credentials and models.json (`start` writes this
        session's own); its session file is copied to this session's path, so pi continues
        the source's conversation, with the files and the memory, under its own name. The
        mark `$STATE/lieutenant` is written last: a crash before it does all of this
        again (nothing of this session exists yet), one after it finds the VM its own.
        """
        mine, theirs = shlex.quote(self.spec.name), shlex.quote(source)
        result = await self._run(
            f'name={mine}; src={theirs}; '
            '[ "$(cat "$STATE/lieutenant" 2>/dev/null)" = "$name" ] && { echo mine; exit 0; }; '
            '$T kill-server 2>/dev/null; '
            'rm -f "$RUN/tmux.sock" "$RUN/in" "$RUN/out" "$RUN/err" "$RUN/sent" '
            '"$RUN"/deliver-* "$STATE/credentials.env" "$HOME/.pi/agent/models.json" && '
            'mkdir -p "$STATE/sessions" && '
            'if [ -f "$STATE/sessions/$src.jsonl" ]; then '
            'cp "$STATE/sessions/$src.jsonl" "$STATE/sessions/$name.jsonl.new" && '
            'mv "$STATE/sessions/$name.jsonl.new" "$STATE/sessions/$name.jsonl"; fi && '
            'umask 077 && printf "%s\n" "$name" > "$STATE/lieutenant" && echo taken',
            step="take over the forked session")
        return "taken" in result

    async def running(self) -> bool:
        result = await self.shell.run(PRELUDE + "$T has-session -t pi-rpc 2>/dev/null",
                                      within=15)
        return result.exit_status == 0

    async def probe(self) -> tuple[bool, int | None]:
        """Whether pi runs, and the size in bytes of its event log (None if unknown)."""
        result = await self.shell.run(
            PRELUDE + '$T has-session -t pi-rpc 2>/dev/null; running=$?; '
            'wc -c < "$RUN/out" 2>/dev/null; exit $running', within=15)
        lines = result.stdout.split()
        size = int(lines[-1]) if lines and lines[-1].isdigit() else None
        return result.exit_status == 0, size

    async def send(self, command: Mapping[str, Any]) -> None:
        """Write one command line into pi's FIFO (the keeper keeps it open)."""
        line = json.dumps(command, separators=(",", ":"))
        # Bounded: with no pi reading the FIFO the write would block.
        await self._run('timeout 10 sh -c \'cat >> "$0"\' "$RUN/in"', stdin=line + "\n",
                        step="send a command")

    def events(self, offset: int) -> AsyncIterator[tuple[dict[str, Any] | Rejected, int]]:
        """Every event from byte `offset` on, with the offset just past it (`read_events`)."""
        return read_events(self.shell, offset)

    async def stderr_tail(self, lines: int = 20) -> str:
        result = await self.shell.run(PRELUDE + f'tail -n {lines} "$RUN/err" 2>/dev/null',
                                      within=15)
        return result.stdout

    async def stop(self) -> None:
        """Kill pi and the keeper; the event log and the session file stay."""
        await self.shell.run(PRELUDE + "$T kill-server 2>/dev/null; true", within=15)

    async def version(self) -> str:
        """pi's version, read from its package.json beside the installed command.

        `pi --version` starts node and loads all of pi: about a CPU-second per VM,
        as much as starting pi itself. It stays the fallback for another layout.
        """
        result = await self.shell.run(
            'cli=$(readlink -f "$(command -v pi)") && '
            "sed -n 's/^ *\"version\": *\"\\([^\"]*\\)\".*/\\1/p' "
            '"${cli%/dist/*}/package.json" 2>/dev/null | head -n 1 | grep . || '
            "pi --version 2>&1", within=30)
        return result.stdout.strip()[-64:]

    async def session_file(self) -> str:
        result = await self._run(f'echo "{self.session_path}"', step="resolve paths")
        return result.strip()

    def _launcher(self) -> str:
        spec = self.spec
        argv = ["pi", "--mode", "rpc", "--provider", spec.provider, "--model", spec.model]
        if spec.thinking:
            argv += ["--thinking", spec.thinking]
        args = " ".join(shlex.quote(a) for a in argv)
        exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(spec.env.items()))
        return (
            "#!/bin/sh\n"
            "# Written by reef-operator: runs pi for this lieutenant (no secrets in here).\n"
            'STATE="$HOME/.reef"; RUN="$STATE/run"\n'
            'set -a; [ -f "$STATE/credentials.env" ] && . "$STATE/credentials.env"; set +a\n'
            "export PI_OFFLINE=1 PI_TELEMETRY=0 PI_SKIP_VERSION_CHECK=1\n"
            f"{exports}"
            # No exec: node dies of SIGHUP when it is itself the pane's session leader
            # (seen with tmux 3.3 here); the shell stays leader, pi its child.
            f'{args} --session "{self.session_path}" '
            '--append-system-prompt "$STATE/system-prompt.md" '
            '< "$RUN/in" >> "$RUN/out" 2>> "$RUN/err"\n'
        )

    async def _upload(self, name: str, content: str, mode: str = "600") -> None:
        await self._run(f'mkdir -p "$STATE" && umask 077 && cat > "$STATE/{name}.new" && '
                        f'chmod {mode} "$STATE/{name}.new" && mv "$STATE/{name}.new" '
                        f'"$STATE/{name}"', stdin=content, step=f"write {name}")

    async def _run(self, command: str, *, step: str, stdin: str | None = None) -> str:
        try:
            result = await self.shell.run(PRELUDE + command, stdin=stdin, within=30)
        except ShellError as error:
            raise SessionError(f"{step}: {error}") from None
        if result.exit_status != 0:
            raise SessionError(f"{step} failed (exit {result.exit_status}): "
                               f"{result.stderr.strip()[-500:]}")
        return result.stdout


async def read_events(shell: Shell, offset: int
                      ) -> AsyncGenerator[tuple[dict[str, Any] | Rejected, int], None]:
    """Every event of pi's log from byte `offset` on, with the offset just past it; follows
    the file as pi appends. A record nobody should read (too long, too deep, not JSON)
    comes as Rejected, saying why. The operator's consumer reads the log this way, and so
    does `kubectl reef read --follow` on the user's machine, through the same shell."""
    splitter = LineSplitter(offset)
    stream = await shell.stream(PRELUDE + f'exec tail -c +{offset + 1} -F "$RUN/out" 2>/dev/null')
    try:
        while True:
            chunk = await stream.read(READ_CHUNK)
            if not chunk:
                return
            for line, end in splitter.feed(chunk):
                if isinstance(line, Oversized):
                    yield Rejected(f"an event line of {line.size:,} bytes was skipped: longer "
                                   f"than the {MAX_EVENT_LINE:,}-byte cap"), end
                else:
                    yield decode(line), end
    finally:
        stream.close()
        # Bounded: a connection that died mid-close must not hold the reader.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_WAIT):
                await stream.wait_closed()
