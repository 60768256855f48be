"""The operator's wheel (built from the root pyproject.toml, as the image builds it) is the
operator alone: no development kit, and nothing in it imports one."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEV_KIT = "reef_devkit"
# What the development kit holds; none of it belongs to the operator's distribution.
DEV_KIT_PARTS = ("testing", "controlplane", "versim", "scripted_model", "demo",
                 "operator_process", DEV_KIT)


def _build_wheel(tmp_path: Path) -> Path:
    """Build from a copy of what the image's build stage copies (.dockerignore)."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    shutil.copytree(REPO_ROOT / "operator", source / "operator",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    wheels = tmp_path / "wheels"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(wheels), str(source)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    [wheel] = wheels.glob("reef_operator-*.whl")
    return wheel


def _imports(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_operator_wheel_carries_the_operator_and_no_dev_kit(tmp_path: Path) -> None:
    with zipfile.ZipFile(_build_wheel(tmp_path)) as wheel:
        names = wheel.namelist()
        modules = {name: wheel.read(name).decode() for name in names if name.endswith(".py")}
        entry_points = next(wheel.read(n).decode() for n in names
                            if n.endswith(".dist-info/entry_points.txt"))
    packages = {name.split("/")[0] for name in names if "/" in name
                and not name.split("/")[0].endswith(".dist-info")}
    assert packages == {"reef_operator"}
    # Every module of the source tree, so no folder is left out for want of an __init__.py.
    source_modules = {path.relative_to(REPO_ROOT / "operator").as_posix()
                      for path in (REPO_ROOT / "operator" / "reef_operator").rglob("*.py")}
    assert source_modules - set(names) == set()
    assert "reef_operator/cli/plugin/static/dashboard.html" in names
    kit_files = [name for name in names
                 if any(part in Path(name).with_suffix("").parts for part in DEV_KIT_PARTS)]
    assert kit_files == []
    importing_kit = sorted(name for name, source in modules.items()
                           if any(m == DEV_KIT or m.startswith(DEV_KIT + ".")
                                  for m in _imports(source)))
    assert importing_kit == []
    assert "reef-versim" not in entry_points and DEV_KIT not in entry_points
    assert "reef-operator = reef_operator.cli.main:main" in entry_points
