"""The paste screen (engine/paste_screen.py) never hides a paste: each pattern's required text holds a marker."""

from __future__ import annotations

import json
import re
from pathlib import Path
from re import _constants as C  # noqa: N812 - the regex parser's own opcodes
from re import _parser as P  # noqa: N812
from typing import Any

import pytest

from engine import paste_patterns as p
from engine.paste_reader import looks_like_paste
from engine.paste_screen import MARKERS, may_be_paste

PATTERNS = [*p.LOG_SHAPE, *(signal for signal, _ in p.SIGNALS)]
CORPUS = Path(__file__).parents[1] / "pastes" / "corpus.json"


def _required(items: Any) -> list[set[str]]:
    """Sets of texts of which every match contains at least one member, read off the parsed pattern."""
    found: list[set[str]] = []
    run = ""
    for op, arg in items:
        if op is C.LITERAL:
            run += chr(arg)
            continue
        if run:
            found.append({run})
        run = ""
        if op is C.SUBPATTERN:
            found += _required(arg[-1])
        elif op is C.BRANCH:
            options = [_required(branch) for branch in arg[1]]
            if all(options):  # every alternative needs one of its own texts
                found.append(set().union(*(max(o, key=lambda s: min(map(len, s))) for o in options)))
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT) and arg[0] >= 1:
            found += _required(arg[2])
        elif op is C.ASSERT and arg[0] == -1:  # a lookbehind's text is in the message too
            found += _required(arg[1])
    if run:
        found.append({run})
    return found


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda x: x.pattern[:40])
def test_every_paste_pattern_needs_a_marker(pattern: re.Pattern[str]) -> None:
    assert not pattern.flags & re.IGNORECASE  # the markers are case-sensitive, like the patterns
    options = _required(P.parse(pattern.pattern, pattern.flags))
    assert options, "a pattern with no required text: the screen cannot rule it out"
    covered = [texts for texts in options if all(any(m in text for m in MARKERS) for text in texts)]
    assert covered, f"no marker inside any of {options}"


def test_the_analysis_can_fail() -> None:
    assert _required(P.parse(r"\d+ GiB|oops", 0)) == [{" GiB", "oops"}]
    assert _required(P.parse(r"(?:a|\d)x{0,3}", 0)) == []


@pytest.mark.parametrize(
    "question",
    ["llama 3.3 70b fp8 8k context", "qwen3 32b 32k 16 users under $10/h", "what about int4 instead?",
     "cheapest region for mistral small 3.1", "deepseek r1 on p5en.48xlarge tp 8", "only g6e", "start over"],
)  # fmt: skip
def test_questions_skip_the_paste_reader(question: str) -> None:
    assert not may_be_paste(question)


def test_every_real_paste_passes_the_screen() -> None:
    """tests/pastes/corpus.json: the 58 real pastes the reader is tested on."""
    texts = [entry["text"] for entry in json.loads(CORPUS.read_text())]
    flagged = [text for text in texts if looks_like_paste(text)]
    assert len(flagged) >= 50
    assert all(may_be_paste(text) for text in flagged)
