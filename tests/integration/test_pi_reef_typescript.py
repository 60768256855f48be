"""pi-reef's TypeScript: `tsc` under `strict` against the installed pi's own types, and the
package's node tests (`node --test`) on what it compiled."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "extensions" / "pi-reef"


def _pi_root() -> Path:
    root = subprocess.run(["npm", "root", "-g"], capture_output=True, text=True, check=True)
    return Path(root.stdout.strip()) / "@mariozechner" / "pi-coding-agent"


def test_pi_reef_typechecks_and_its_node_tests_pass(tmp_path: Path) -> None:
    pi = _pi_root()
    bundled = pi / "node_modules"
    build = tmp_path / "build"
    # pi provides these to an extension when it loads it; tsc finds them in pi's install.
    config = {"extends": str(PACKAGE / "tsconfig.json"), "compilerOptions": {
        "noEmit": False, "rewriteRelativeImportExtensions": True, "outDir": str(build),
        "rootDir": str(PACKAGE), "baseUrl": str(PACKAGE), "paths": {
            "@mariozechner/pi-coding-agent": [str(pi)],
            "@mariozechner/pi-ai": [str(bundled / "@mariozechner" / "pi-ai")],
            "@mariozechner/pi-tui": [str(bundled / "@mariozechner" / "pi-tui")],
            "typebox": [str(bundled / "typebox")]}}}
    (tmp_path / "tsconfig.json").write_text(json.dumps(config))
    compiled = subprocess.run([str(PACKAGE / "node_modules" / ".bin" / "tsc"), "-p",
                               str(tmp_path / "tsconfig.json")],
                              capture_output=True, text=True, timeout=300)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    # The compiled modules import `yaml` and are ES modules, as in the package.
    (tmp_path / "node_modules").symlink_to(PACKAGE / "node_modules")
    (tmp_path / "package.json").write_text('{"type": "module"}')
    tested = subprocess.run(["node", "--test", str(build / "test")], capture_output=True,
                            text=True, timeout=120)
    assert tested.returncode == 0, tested.stdout[-4000:] + tested.stderr[-2000:]
    assert "# fail 0" in tested.stdout and "# pass 11" in tested.stdout
