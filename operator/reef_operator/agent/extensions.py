"""A pi package copied onto a VM, where pi discovers it by itself.

pi loads every `~/.pi/agent/extensions/<name>/index.ts` when it starts (its
docs/extensions.md), so the operator puts the reef package (extensions/pi-reef: the
lieutenant tools) there before it starts pi for a delegating lieutenant. The directory
travels as a gzipped tar on the command's stdin (base64, since a shell's stdin here is
text), is unpacked beside the installed one and swapped in whole, so a pi starting at the
same moment never loads half a package.

What travels: the package's files and, of its node_modules, only the dependencies its
package.json names (not its development tools), never its tests.
"""

from __future__ import annotations

import base64
import io
import json
import tarfile
from pathlib import Path

from reef_operator.agent.session import SessionError
from reef_operator.providers.base import Shell
from reef_operator.providers.errors import ShellError

EXTENSIONS = "$HOME/.pi/agent/extensions"
MAX_ARCHIVE = 16 << 20        # bytes of the gzipped package: far above what it needs
LEFT_OUT = ("test", "build", ".git")


def runtime_dependencies(package: Path) -> set[str]:
    manifest = json.loads((package / "package.json").read_text())
    return set(manifest.get("dependencies") or {})


def _wanted(relative: Path, dependencies: set[str]) -> bool:
    parts = relative.parts
    if not parts or parts[0] in LEFT_OUT or parts[0].startswith("."):
        return False
    if parts[0] == "node_modules":
        name = "/".join(parts[1:3]) if len(parts) > 2 and parts[1].startswith("@") \
            else (parts[1] if len(parts) > 1 else "")
        return name in dependencies
    return True


def archive(package: Path) -> bytes:
    """The package as a gzipped tar of what pi needs of it; ValueError when it is not a pi
    package or too large."""
    if not (package / "index.ts").is_file() or not (package / "package.json").is_file():
        raise ValueError(f"{package} is not a pi package (index.ts and package.json)")
    dependencies = runtime_dependencies(package)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(package.rglob("*")):
            relative = path.relative_to(package)
            if path.is_file() and not path.is_symlink() and _wanted(relative, dependencies):
                tar.add(path, arcname=relative.as_posix(), recursive=False)
    data = buffer.getvalue()
    if len(data) > MAX_ARCHIVE:
        raise ValueError(f"{package} packs to {len(data):,} bytes, over {MAX_ARCHIVE:,}")
    return data


async def install(shell: Shell, name: str, packed: bytes) -> None:
    """Put the package under pi's extensions directory as `name`, replacing any earlier."""
    target = f'"{EXTENSIONS}/{name}"'
    staged = f'"{EXTENSIONS}/.{name}.new"'
    command = (f'mkdir -p "{EXTENSIONS}" && rm -rf {staged} && mkdir {staged} && '
               f'base64 -d | tar -xzf - -C {staged} && rm -rf {target} && '
               f'mv {staged} {target}')
    try:
        result = await shell.run(command, stdin=base64.b64encode(packed).decode(), within=60)
    except ShellError as error:
        raise SessionError(f"install the pi package {name}: {error}") from None
    if result.exit_status != 0:
        raise SessionError(f"install the pi package {name} failed (exit "
                           f"{result.exit_status}): {result.stderr.strip()[-300:]}")
