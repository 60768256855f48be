"""`reef-operator` finds the commands of other distributions (the dev kit's `dev`)."""

from __future__ import annotations

import argparse
from importlib.metadata import EntryPoint, entry_points

import pytest

from reef_operator.cli import main as cli


def test_without_the_dev_kit_dev_says_where_it_comes_from(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "entry_points", lambda group: [])
    assert cli.main(["dev", "up", "--state-dir", "/nowhere"]) == 1
    err = capsys.readouterr().err
    assert "reef-operator dev" in err and "development kit" in err
    assert "./scripts/setup" in err and "pip install ./devkit" in err


def test_without_the_dev_kit_help_still_lists_dev(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "entry_points", lambda group: [])
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "development kit, not installed" in " ".join(capsys.readouterr().out.split())


def test_the_dev_kit_brings_dev_through_an_entry_point(
    capsys: pytest.CaptureFixture[str],
) -> None:
    [dev] = [e for e in entry_points(group=cli.COMMAND_GROUP) if e.name == "dev"]
    assert dev.value == "reef_devkit.dev:add_parser"
    with pytest.raises(SystemExit):
        cli.main(["dev", "--help"])
    assert "up: start (idempotent)" in capsys.readouterr().out


def test_a_discovered_command_runs_its_own_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    found = EntryPoint("hello", f"{__name__}:_add_hello", cli.COMMAND_GROUP)
    monkeypatch.setattr(cli, "entry_points", lambda group: [found])
    assert cli.main(["hello", "--times", "3"]) == 3


def _add_hello(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    hello = commands.add_parser("hello")
    hello.add_argument("--times", type=int)
    hello.set_defaults(handler=lambda args: args.times)
