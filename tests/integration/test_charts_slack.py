"""Issue 15 end to end: every answer carries its budget as a Slack chart, a follow-up that changes the context
carries the capacity curve, and a workspace that refuses the new blocks still gets the whole answer in words."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator

import pytest
from PIL import Image

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
    assert points["32k (asked)"] == pytest.approx(1.75, abs=0.01)  # the answer's own "holds 1.8 requests"
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
    assert "Memory per GPU (GiB)" in first and "weights 67.7" in first and "g7.12xlarge (does not serve)" in first
    assert "Requests that fit by context · g7e.2xlarge" in follow and "32k (asked) 1.8" in follow
    assert "What changed" in follow  # nothing else of the answer was lost on the way down


def test_where_charts_are_refused_the_budget_follows_as_a_png_in_the_thread_after_the_words(bot: Bot) -> None:
    channel, ts = unique_channel(), new_ts()
    bot.slack.refuse_charts = True
    bot.event({"type": "app_mention", "user": "U1", "text": ASK, "ts": ts, "channel": channel})
    (answer,) = _posted(bot, channel)
    (done,) = wait_until(lambda: bot.slack.of("files.completeUploadExternal", channel_id=channel), timeout=20)
    assert done.payload["thread_ts"] == ts and done.at > answer.at  # in the thread, after the answer
    (file,) = json.loads(done.payload["files"])
    asked = [c for c in bot.slack.of("files.getUploadURLExternal") if c.at <= done.at][-1]
    assert asked.payload["filename"] == "budget.png" and "g7e.2xlarge" in asked.payload["alt_txt"]
    image = Image.open(io.BytesIO(bot.slack.uploads[file["id"]]))
    assert image.format == "PNG" and image.size == (800, 450)
    assert int(asked.payload["length"]) == len(bot.slack.uploads[file["id"]])


def test_a_refused_upload_costs_nothing_but_a_warning(bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    channel = unique_channel()
    bot.slack.refuse_charts = True
    bot.slack.fail("files.getUploadURLExternal", "missing_scope")
    with caplog.at_level(logging.WARNING, logger="headroom.slack"):
        bot.event({"type": "app_mention", "user": "U1", "text": ASK, "ts": new_ts(), "channel": channel})
        (answer,) = _posted(bot, channel)
        wait_until(lambda: any("picture was not uploaded (missing_scope)" in r.getMessage() for r in caplog.records))
    assert "g7e.2xlarge" in answer.payload["text"]
    assert not bot.slack.of("files.completeUploadExternal", channel_id=channel)


def test_where_charts_are_shown_no_picture_is_uploaded(bot: Bot) -> None:
    channel = unique_channel()
    bot.event({"type": "app_mention", "user": "U1", "text": ASK, "ts": new_ts(), "channel": channel})
    (answer,) = _posted(bot, channel)
    assert _charts(answer) and not bot.slack.of("refused:chat.postMessage", channel=channel)
    time.sleep(0.5)  # an upload would have started by now (it follows the post at once)
    assert not bot.slack.of("files.completeUploadExternal", channel_id=channel)
