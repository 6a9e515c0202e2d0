"""The README's example output is what headroom prints today."""

from __future__ import annotations

from pathlib import Path

from bot.cli import main

README = Path(__file__).parents[2] / "README.md"


def _block_after(command: str) -> str:
    text = README.read_text()
    start = text.index(command + "\n") + len(command) + 1
    return text[start : text.index("```", start)].rstrip()


def test_readme_plan_example_is_current(capsys) -> None:
    assert main(["plan", "--model", "llama-3.3-70b", "--weights", "fp8", "--context", "8192"]) == 0
    assert capsys.readouterr().out.rstrip() == _block_after(
        "$ headroom plan --model llama-3.3-70b --weights fp8 --context 8192"
    )


def test_readme_words_example_is_current(capsys) -> None:
    assert main(["plan", "70B fp8 8k context"]) == 0
    shown = _block_after('$ headroom plan "70B fp8 8k context"').removesuffix("...").rstrip()
    assert capsys.readouterr().out.startswith(shown)
