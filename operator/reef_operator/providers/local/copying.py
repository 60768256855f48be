"""Copying a VM's files: what a Local snapshot takes and what a new VM starts from.

A snapshot is taken while the VM's agent is running, so its home holds FIFOs
and sockets; opening a FIFO to copy it would block forever, and neither kind
carries data worth keeping, so only regular files, directories and symlinks
are copied (symlinks as links, never followed out of the tree).
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path


def copy_tree(source: Path, target: Path) -> None:
    """Copy regular files, directories and symlinks; skip FIFOs, sockets and devices."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copystat(source, target)
    for entry in os.scandir(source):
        destination = target / entry.name
        mode = entry.stat(follow_symlinks=False).st_mode
        if stat.S_ISLNK(mode):
            os.symlink(os.readlink(entry.path), destination)
        elif stat.S_ISDIR(mode):
            copy_tree(Path(entry.path), destination)
        elif stat.S_ISREG(mode):
            shutil.copy2(entry.path, destination)
