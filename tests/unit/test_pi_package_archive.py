"""The pi package as it travels to a VM (agent/extensions.py): its files and runtime
dependencies, not its development tools or tests."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from reef_operator.agent import extensions


def _package(root: Path) -> Path:
    files = {"package.json": json.dumps({"dependencies": {"yaml": "2", "@scope/dep": "1"},
                                         "devDependencies": {"typescript": "5"}}),
             "index.ts": "export default () => {};", "kube.ts": "",
             "node_modules/yaml/index.js": "", "node_modules/@scope/dep/index.js": "",
             "node_modules/typescript/lib.js": "", "node_modules/.bin/tsc": "",
             "test/kube.test.ts": "", "build/index.js": "", ".gitignore": ""}
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_package_travels_with_its_runtime_dependencies_only(tmp_path: Path) -> None:
    packed = extensions.archive(_package(tmp_path))
    with tarfile.open(fileobj=io.BytesIO(packed), mode="r:gz") as tar:
        names = sorted(tar.getnames())
    assert names == ["index.ts", "kube.ts", "node_modules/@scope/dep/index.js",
                     "node_modules/yaml/index.js", "package.json"]


def test_a_directory_that_is_no_pi_package_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is not a pi package"):
        extensions.archive(tmp_path)
