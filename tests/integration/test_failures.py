"""The bot's error boundary: whatever fails, on whichever surface, the user gets exactly one reply."""

from __future__ import annotations

import logging
import random
import re
import time

import pytest

import engine.service
from bot.blocks import button_value
from engine.request import Request
from tests.integration.conftest import Bot, hook_id, new_ts, unique_channel
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


# --- every surface, every kind of failure: exactly one reply ------------------------------------


class Surfaces:
    """One request on each surface headroom answers, and every reply each of them got."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.mention, self.dm, self.thread = unique_channel(), "D" + unique_channel()[1:], unique_channel()
        self.command, self.private, self.button = unique_channel(), unique_channel(), unique_channel()
        self.hooks: dict[str, str] = {}
        # a thread headroom answered, before anything breaks
        self.root = new_ts()
        bot.event({"type": "app_mention", "user": "U1", "text": "<@UHEADROOM> llama 3.1 8b", "ts": self.root,
                   "channel": self.thread})  # fmt: skip
        wait_until(lambda: bot.slack.of("chat.postMessage", channel=self.thread))

    def send_all(self) -> None:
        bot, size = self.bot, random.randint(5000, 60000)  # questions no earlier test has cached
        ask = f"llama 3.1 8b {size} tokens"
        bot.event({"type": "app_mention", "user": "U1", "text": f"<@UHEADROOM> {ask}", "ts": new_ts(),
                   "channel": self.mention})  # fmt: skip
        bot.event({"type": "message", "channel_type": "im", "user": "U1", "text": ask, "ts": new_ts(),
                   "channel": self.dm})  # fmt: skip
        bot.event({"type": "message", "channel_type": "channel", "user": "U1", "text": f"what about {size + 1} tokens?",
                   "ts": new_ts(), "thread_ts": self.root, "channel": self.thread})  # fmt: skip
        for channel, text in ((self.command, ask), (self.private, f"{ask} just me")):
            body = bot.command_body(text, channel)
            self.hooks[channel] = hook_id(body)
            bot.signed(body, "application/x-www-form-urlencoded")
        value = button_value(Request(model="llama-3.1-8b", context_tokens=size + 2), {})
        assert value
        body = bot.click_body(value, self.button, "1700000000.000100")
        self.hooks[self.button] = hook_id(body)
        bot.signed(body, "application/x-www-form-urlencoded")

    def replies(self) -> dict[str, list[str]]:
        found = {}
        for name in ("mention", "dm", "thread", "command", "private", "button"):
            channel = getattr(self, name)
            posted = [c.payload["text"] for c in self.bot.slack.of("chat.postMessage", channel=channel)]
            if name == "thread":
                posted = posted[1:]  # after the answer that made the thread headroom's
            hooked = [c.payload["text"] for c in self.bot.slack.of("response_url") if c.hook == self.hooks.get(channel)]
            found[name] = posted + hooked
        return found

    def settle(self) -> dict[str, list[str]]:
        wait_until(lambda: all(self.replies().values()), timeout=15)
        time.sleep(0.3)  # a second reply to any of them would have arrived by now
        return self.replies()


def _raise(*args: object, **kwargs: object) -> None:
    raise RuntimeError("injected failure")


@pytest.mark.parametrize(
    ("target", "name", "told"),
    [
        ("engine.service", "make_plan", True),  # planning breaks: nothing was posted, the user is told
        ("bot.blocks.SlackViews", "answer", True),  # rendering breaks
        ("bot.state.BotState", "save_thread", False),  # after the answer was posted: no second message
    ],
)
def test_no_failure_leaves_a_user_without_a_reply_and_none_gets_two(
    bot: Bot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, target: str, name: str, told: bool
) -> None:
    surfaces = Surfaces(bot)
    monkeypatch.setattr(f"{target}.{name}", _raise)
    with caplog.at_level(logging.ERROR):
        surfaces.send_all()
        replies = surfaces.settle()
    for surface, texts in replies.items():
        assert len(texts) == 1, (surface, texts)
        assert ("something went wrong on my side" in texts[0]) is told, (surface, texts)
    assert any("injected failure" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


def test_when_slack_refuses_the_answer_itself_the_user_is_told_once(bot: Bot) -> None:
    channel = unique_channel()
    bot.slack.fail("chat.postMessage", "is_archived")  # not about the layout: no simpler layout helps
    bot.event({"type": "app_mention", "user": "U1", "text": "<@UHEADROOM> gemma 3 27b", "ts": new_ts(),
               "channel": channel})  # fmt: skip
    (told,) = wait_until(lambda: bot.slack.of("chat.postMessage", channel=channel))
    time.sleep(0.4)
    assert len(bot.slack.of("chat.postMessage", channel=channel)) == 1
    assert "something went wrong on my side" in told.payload["text"]
