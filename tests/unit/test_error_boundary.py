"""The CLI's error boundary: a bug is exit 1 with a reference (traceback in a log file), never a traceback."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

import engine.service
from bot.cli import main, run_chat


def _boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("injected planning bug")


@pytest.fixture
def broken_planner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("HEADROOM_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(engine.service, "make_plan", _boom)
    return tmp_path


def test_plan_exits_1_naming_a_reference_whose_traceback_is_logged(broken_planner: Path, capsys) -> None:
    assert main(["plan", "llama 3.1 8b fp8"]) == 1
    out, err = capsys.readouterr()
    found = re.search(r"^headroom: something went wrong on my side — reference (\w+)", err)
    assert found and "Traceback" not in err and not out
    log = (broken_planner / "errors.log").read_text()
    assert f"reference {found.group(1)}" in log and "RuntimeError: injected planning bug" in log


def test_chat_reports_the_failure_and_keeps_going(broken_planner: Path, capsys, monkeypatch) -> None:
    lines = ["llama 3.1 8b", "help"]
    assert run_chat(argparse.Namespace(json=False), lines) == 0
    out = capsys.readouterr().out
    assert "something went wrong on my side — reference" in out and "Traceback" not in out
    assert "headroom chat — ask e.g." in out  # the next line was still answered
