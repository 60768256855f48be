"""What a Local snapshot copies of a VM's files."""

from __future__ import annotations

import os
from pathlib import Path

from reef_operator.providers.local.copying import copy_tree


def test_files_directories_and_links_are_copied_a_running_agents_fifo_is_not(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    (home / "workspace" / "src").mkdir(parents=True)
    (home / "workspace" / "src" / "index.ts").write_text("export {};\n")
    (home / "workspace" / "run.sh").write_text("#!/bin/sh\n")
    (home / "workspace" / "run.sh").chmod(0o755)
    (home / "current").symlink_to("workspace/src")
    (home / "elsewhere").symlink_to("/etc/hostname")
    os.mkfifo(home / "pi-rpc.in")   # opening it to copy would block forever

    copy_tree(home, tmp_path / "snapshot")

    snapshot = tmp_path / "snapshot"
    assert (snapshot / "workspace" / "src" / "index.ts").read_text() == "export {};\n"
    assert os.access(snapshot / "workspace" / "run.sh", os.X_OK)
    assert os.readlink(snapshot / "current") == "workspace/src"
    assert os.readlink(snapshot / "elsewhere") == "/etc/hostname"   # a link, not a copy
    assert not (snapshot / "pi-rpc.in").exists()
