"""Block Kit answers: within Slack's limits, escaped, with a fallback; the golden answer."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bot.blocks import MAX_FALLBACK_TEXT, MAX_SECTION, BlockLimitError, SlackViews, check_limits, clip, escape
from bot.posting import MAX_PLAIN, layouts, plain_text
from engine.catalog.loader import Catalog
from engine.errors import ParseError
from engine.parse import parse_request
from engine.ranking import plan
from engine.request import Request
from engine.service import Memory, answer
from tests.support import SAMPLE_ASKS, VIEWS

GOLDEN = Path(__file__).parents[1] / "golden" / "llama-3.3-70b-fp8-8k.json"
SLACK = SlackViews(VIEWS)


def message_for(catalog: Catalog, text: str, more: bool = False):  # noqa: ANN201
    request = parse_request(text, catalog)
    return SLACK.answer(plan(request, catalog), request, more=more)


def slack_text(blocks: list[dict]) -> str:
    """How the golden answer reads in Slack, for the README."""
    lines = []
    for block in blocks:
        if block["type"] == "header":
            lines.append(f"# {block['text']['text']}")
        elif block["type"] == "section":
            lines.append(block["text"]["text"])
        elif block["type"] == "table":
            lines += [" | ".join(cell["text"] for cell in row) for row in block["rows"]]
        elif block["type"] == "context":
            lines += [e["text"] for e in block["elements"]]
        elif block["type"] == "actions":
            lines.append("[" + "] [".join(e["text"]["text"] for e in block["elements"]) + "]")
        lines.append("")
    return "\n".join(lines)


def test_golden_answer_for_llama_70b_fp8_8k(catalog: Catalog) -> None:
    message = message_for(catalog, "llama 3.3 70b fp8 8k context")
    got = {"text": message.text, "blocks": message.blocks}
    if os.environ.get("HEADROOM_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n")
        GOLDEN.with_suffix(".txt").write_text(slack_text(message.blocks))
    assert got == json.loads(GOLDEN.read_text())
    assert GOLDEN.with_suffix(".txt").read_text() == slack_text(message.blocks)


@pytest.mark.parametrize("text", SAMPLE_ASKS)
def test_answers_are_within_slack_limits_with_and_without_the_table(catalog: Catalog, text: str) -> None:
    for more in (False, True):
        message = message_for(catalog, text, more)
        check_limits(message.blocks)
        check_limits(message.fallback_blocks)
        assert message.text and len(message.text) < 500
        assert not any(b["type"] == "table" for b in message.fallback_blocks)


def test_show_more_lists_more_instances(catalog: Catalog) -> None:
    short = message_for(catalog, "llama 3.1 8b")
    long = message_for(catalog, "llama 3.1 8b", more=True)
    rows = lambda m: len(next(b for b in m.blocks if b["type"] == "table")["rows"])  # noqa: E731
    assert rows(long) > rows(short) == 9
    assert not any(
        e["action_id"] == "replan_more" for b in long.blocks if b["type"] == "actions" for e in b["elements"]
    )


def test_user_text_is_escaped_in_error_replies() -> None:
    error = ParseError("no_model", understood={"weights": "<fp8>"}, suggestions=["a<b"], words="<!channel> & <b>")
    message = SLACK.error(error)
    raw = json.dumps(message.blocks) + message.text
    assert "<!channel>" not in raw and "&lt;!channel&gt; &amp; &lt;b&gt;" in raw and "&lt;fp8&gt;" in raw
    assert escape("a & <b>") == "a &amp; &lt;b&gt;"


def test_limit_checker_refuses_what_slack_refuses() -> None:
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x"}}
    with pytest.raises(BlockLimitError):
        check_limits([section] * 51)
    with pytest.raises(BlockLimitError):
        check_limits([{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}])
    with pytest.raises(BlockLimitError):
        check_limits([{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}])
    check_limits([section] * 50)


def test_home_view_fits_and_shows_data_dates(catalog: Catalog) -> None:
    view = SLACK.home(catalog)
    assert catalog.as_of["prices"] in json.dumps(view)


def test_a_list_repeated_5000_times_is_clipped_to_slack_limits_in_answers_and_errors(catalog: Catalog) -> None:
    previous = Memory(Request(model="llama-3.1-8b"), "g6e.xlarge")
    for change in ({"families": ("g6e",) * 5000}, {"exclude_families": ("p5",) * 5000}):
        turn = answer(Request(model="llama-3.1-8b", **change), previous, catalog)
        assert turn.plan and turn.request and turn.changes
        message = SLACK.answer(turn.plan, turn.request, turn.changes)
        check_limits(message.blocks)
        check_limits(message.fallback_blocks)
        assert "…" in json.dumps(message.blocks, ensure_ascii=False)  # clipped, and says so
        assert len(message.text) <= MAX_FALLBACK_TEXT
    unknown = answer(Request(model="llama-3.1-8b", families=tuple(f"zz{i}" for i in range(5000))), None, catalog)
    assert unknown.error
    error = SLACK.error(unknown.error)
    check_limits(error.blocks)
    assert len(error.text) <= MAX_SECTION and error.text.endswith("…")


def test_clip_cuts_at_a_word_with_an_ellipsis_and_leaves_short_text_alone() -> None:
    assert clip("short", 10) == "short"
    assert clip("alpha beta gamma delta", 12) == "alpha beta…"
    assert len(clip("x" * 5000, 100)) == 100


def test_plain_text_keeps_the_answer_words_without_blocks_within_a_message(catalog: Catalog) -> None:
    message = message_for(catalog, "llama 3.3 70b fp8 8k context")
    text = plain_text(message)
    assert "g7e.2xlarge" in text and "Weights" in text and len(text) <= MAX_PLAIN
    assert [name for name, _, _ in layouts(message)] == ["charts", "blocks", "fallback layout", "plain text"]
    error = SLACK.error(ParseError("no_model", words="frobnicate"))
    assert [name for name, _, _ in layouts(error)] == ["blocks", "plain text"]
    assert plain_text(error) == error.text
