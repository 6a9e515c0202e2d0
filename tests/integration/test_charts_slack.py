"""Issue 15 end to end: every answer carries its budget as a Slack chart, a follow-up that changes the context
carries the capacity curve, and a workspace that refuses the new blocks still gets the whole answer in words."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from bot.block_rules import check_chart, check_table
from tests.integration.conftest import Bot, new_ts, unique_channel
from tests.integration.servers import wait_until

ASK = "<@UHEADROOM> llama 3.3 70b fp8 8k context"


@pytest.fixture(autouse=True)
def every_payload_within_slack_limits(bot: Bot) -> Iterator[None]:
    yield
    assert bot.slack.block_errors == []


def _posted(bot: Bot, channel: str, count: int = 1) -> list:
    def found() -> list:
        calls = bot.slack.of("chat.postMessage", channel=channel)
        return calls if len(calls) >= count else []

    return wait_until(found)


def _ask_then_follow(bot: Bot, channel: str, follow_up: str) -> list:
    ts = new_ts()
    bot.event({"type": "app_mention", "user": "U1", "text": ASK, "ts": ts, "channel": channel})
    _posted(bot, channel)
    bot.event({"type": "message", "channel_type": "channel", "user": "U1", "text": follow_up, "ts": new_ts(),
               "thread_ts": ts, "channel": channel})  # fmt: skip
    return _posted(bot, channel, 2)


def _charts(call) -> list[dict]:  # noqa: ANN001
    return [b for b in call.payload["blocks"] if b["type"] == "data_visualization"]


def test_an_answer_carries_its_budget_chart_a_data_table_and_a_text_fallback(bot: Bot) -> None:
    channel = unique_channel()
    bot.event({"type": "app_mention", "user": "U1", "text": ASK, "ts": new_ts(), "channel": channel})
    (call,) = _posted(bot, channel)
    (chart,) = _charts(call)
    check_chart(chart)
    assert chart["chart"]["type"] == "bar"
    categories = chart["chart"]["axis_config"]["categories"]
    assert categories[0] == "g7e.2xlarge" and categories[-1].endswith("✗")  # top pick first, a miss last
    weights = next(s for s in chart["chart"]["series"] if s["name"] == "weights")
    assert weights["data"][0] == {"label": "g7e.2xlarge", "value": 67.7}
    (table,) = [b for b in call.payload["blocks"] if b["type"] == "data_table"]
    check_table(table)
    assert table["rows"][1][0]["text"] == "g7e.2xlarge"
    assert "g7e.2xlarge" in call.payload["text"]  # the notification / screen-reader text


def test_a_follow_up_that_changes_the_context_carries_the_capacity_curve(bot: Bot) -> None:
    channel = unique_channel()
    calls = _ask_then_follow(bot, channel, "what about 32k?")
    assert [c["chart"]["type"] for c in _charts(calls[0])] == ["bar"]
    budget, curve = _charts(calls[1])
    check_chart(curve)
    assert curve["chart"]["type"] == "line" and "g7e.2xlarge" in curve["title"]
    points = {p["label"]: p["value"] for p in curve["chart"]["series"][0]["data"]}
    assert points["32k (asked)"] == pytest.approx(1.59, abs=0.01)  # the answer's own "holds 1.6 requests"
    assert points["8k"] == pytest.approx(4 * points["32k (asked)"], rel=0.02)  # a quarter of the context each


def test_a_workspace_that_refuses_charts_gets_the_same_answer_with_the_table_and_the_charts_in_words(
    bot: Bot,
) -> None:
    channel = unique_channel()
    bot.slack.refuse_charts = True
    calls = _ask_then_follow(bot, channel, "what about 32k?")
    refused = [c for c in bot.slack.of("refused:chat.postMessage") if c.payload.get("channel") == channel]
    assert len(refused) == 2 and all(_charts(c) for c in refused)  # each answer tried its charts first
    for call in calls:
        kinds = [b["type"] for b in call.payload["blocks"]]
        assert "table" in kinds and "data_visualization" not in kinds and "data_table" not in kinds
    first, follow = (json.dumps(c.payload["blocks"], ensure_ascii=False) for c in calls)
    assert "Memory per GPU (GiB)" in first and "weights 67.7" in first and "g6.12xlarge (does not serve)" in first
    assert "Requests that fit by context · g7e.2xlarge" in follow and "32k (asked) 1.6" in follow
    assert "What changed" in follow  # nothing else of the answer was lost on the way down
