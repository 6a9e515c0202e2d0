"""The bot's error boundary: an unexpected failure while planning still gets exactly one reply, with a reference."""

from __future__ import annotations

import logging
import random
import re
import time

import pytest

import engine.service
from tests.integration.conftest import Bot, new_ts, unique_channel
from tests.integration.servers import wait_until


def _boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("injected planning bug")


def test_a_planning_bug_gets_one_reply_naming_a_reference_and_a_logged_traceback(
    bot: Bot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(engine.service, "make_plan", _boom)
    channel = unique_channel()
    context = random.randint(5000, 9000)  # a question no earlier test cached
    event = {"type": "app_mention", "user": "U1", "text": f"<@UHEADROOM> llama 3.1 8b {context} tokens",
             "ts": new_ts(), "channel": channel}  # fmt: skip
    with caplog.at_level(logging.ERROR):
        assert bot.event(event, event_id="EvBoom" + str(context)).status_code == 200
        (call,) = wait_until(lambda: bot.slack.of("chat.postMessage", channel=channel))
        time.sleep(0.3)
    assert len(bot.slack.of("chat.postMessage", channel=channel)) == 1
    found = re.search(r"something went wrong on my side — reference (\S+)", call.payload["text"])
    assert found, call.payload["text"]
    reference = found.group(1)
    assert reference == "EvBoom" + str(context)  # the Slack event id: the log line and the reply agree
    failures = [r for r in caplog.records if r.exc_info and reference in r.getMessage()]
    assert failures and "injected planning bug" in str(failures[0].exc_info[1])
    assert call.payload["thread_ts"] == event["ts"]
    assert 'headroom_requests_total{outcome="failed",surface="mention"}' in bot.http.get("/metrics").text


def test_after_a_failure_the_next_question_is_answered(bot: Bot) -> None:
    channel = unique_channel()
    bot.event({"type": "app_mention", "user": "U1", "text": "<@UHEADROOM> qwen3 32b fp8", "ts": new_ts(),
               "channel": channel})  # fmt: skip
    (call,) = wait_until(lambda: bot.slack.of("chat.postMessage", channel=channel))
    assert "Qwen3 32B" in call.payload["text"]
