"""Hostile and unlucky Slack traffic, signed: what the bot posts stays bounded, right and exactly once.

Chit-chat in headroom's threads, Slack refusing layouts, floods past the rate limit, hidden message
subtypes and workspace events, Redis restarting under a retry, oversized button values and lists,
and a Web API slower than the client's timeout -- each against the real app over HTTP.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator

import pytest

from bot.blocks import button_value
from bot.server import create_app
from engine.request import Request
from tests.integration.conftest import Bot, bot_settings, hook_id, new_ts, unique_channel
from tests.integration.servers import FakeSlack, RedisProcess, ServerThread, wait_until

ASK = "<@UHEADROOM> llama 3.3 70b fp8 8k context"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture(scope="module")
def strict_bot(redis_server: RedisProcess, fake_slack: FakeSlack) -> Iterator[Bot]:
    """A bot with a low rate limit (3 a minute) and a 1-second Web API timeout."""
    settings = bot_settings(redis_server.url, fake_slack.url, rate_limit_per_minute=3, slack_timeout_s=1)  # type: ignore[attr-defined]
    with ServerThread(create_app(settings)) as thread:
        yield Bot(thread.url, fake_slack)


def posts(bot: Bot, channel: str) -> list:
    return bot.slack.of("chat.postMessage", channel=channel)


def settle(bot: Bot, channel: str, count: int, timeout: float = 10.0) -> list:
    """Wait for `count` posts in `channel`, then a little longer: a surplus one would show up by then."""
    wait_until(lambda: len(posts(bot, channel)) >= count, timeout)
    time.sleep(0.3)
    return posts(bot, channel)


def mention(bot: Bot, channel: str, text: str = ASK, team: str = "T1", user: str = "U1") -> dict:
    event = {"type": "app_mention", "user": user, "text": text, "ts": new_ts(), "channel": channel}
    assert bot.event(event, team=team).status_code == 200
    return event


def say_in_thread(bot: Bot, channel: str, thread_ts: str, text: str, team: str = "T1", user: str = "U1") -> None:
    event = {"type": "message", "channel_type": "channel", "user": user, "text": text, "ts": new_ts(),
             "thread_ts": thread_ts, "channel": channel}  # fmt: skip
    assert bot.event(event, team=team).status_code == 200


def dm(bot: Bot, channel: str, text: str, user: str = "U1", **extra: object) -> None:
    event = {"type": "message", "channel_type": "im", "user": user, "text": text, "ts": new_ts(), "channel": channel,
             **extra}  # fmt: skip
    assert bot.event(event).status_code == 200


def dm_channel() -> str:
    return "D" + unique_channel()[1:]


# --- 5. chit-chat -----------------------------------------------------------------------------


def test_chit_chat_in_a_thread_headroom_answered_gets_no_reply_but_questions_do(bot: Bot) -> None:
    channel = unique_channel()
    event = mention(bot, channel)
    settle(bot, channel, 1)
    for text in ("thanks, that's really helpful!", "lol", "ok", "<@U222> what do you think?", "help"):
        say_in_thread(bot, channel, event["ts"], text)
    say_in_thread(bot, channel, event["ts"], "what about 32k?")
    calls = settle(bot, channel, 2)
    assert len(calls) == 2
    assert "32k context" in calls[1].payload["text"]
    assert "couldn't" not in json.dumps([c.payload for c in calls])


# --- 6. the posting ladder --------------------------------------------------------------------


@pytest.mark.parametrize("error", ["invalid_blocks", "invalid_attachments", "invalid_arguments", "msg_too_long"])
def test_a_refused_layout_is_sent_again_without_the_table(bot: Bot, error: str) -> None:
    channel = unique_channel()
    bot.slack.fail("chat.postMessage", error, times=2)  # issue 15: the charts' layout, then the table's
    mention(bot, channel)
    (call,) = settle(bot, channel, 1)
    assert not any(b["type"] == "table" for b in call.payload["blocks"])
    assert "g7e.2xlarge" in json.dumps(call.payload["blocks"])
    charts, refused = bot.slack.of("refused:chat.postMessage", channel=channel)
    assert any(b["type"] == "data_visualization" for b in charts.payload["blocks"])
    assert any(b["type"] == "table" for b in refused.payload["blocks"])


def test_a_server_error_that_outlives_the_retries_still_gets_the_answer_through(bot: Bot) -> None:
    channel = unique_channel()
    bot.slack.fail("chat.postMessage", "internal_error", times=3, status=500)  # the first try and two retries
    mention(bot, channel)
    (call,) = settle(bot, channel, 1, timeout=15)
    assert len(bot.slack.of("refused:chat.postMessage", channel=channel)) == 3
    assert "g7e.2xlarge" in json.dumps(call.payload)


def test_when_every_block_layout_is_refused_the_answer_arrives_as_plain_text(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    channel = unique_channel()
    bot.slack.refuse_blocks = "invalid_blocks"
    with caplog.at_level(logging.WARNING, logger="headroom.slack"):
        mention(bot, channel)
        (call,) = settle(bot, channel, 1)
    assert "blocks" not in call.payload
    assert "g7e.2xlarge" in call.payload["text"] and "Weights" in call.payload["text"]
    assert len(bot.slack.of("refused:chat.postMessage", channel=channel)) == 3  # charts, the table, the fallback
    assert sum("refused the" in r.getMessage() for r in caplog.records) == 3


def test_a_response_url_answering_400_is_logged_and_retried_down_to_plain_text(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    body = bot.command_body("llama 3.1 8b just me", unique_channel())
    bot.slack.fail("response_url", "invalid_blocks", times=3, status=400)  # charts, table, fallback layouts
    with caplog.at_level(logging.WARNING, logger="headroom.slack"):
        assert bot.signed(body, FORM).status_code == 200
        (delivered,) = wait_until(lambda: [c for c in bot.slack.of("response_url") if c.hook == hook_id(body)])
    refused = [c for c in bot.slack.of("refused:response_url") if c.hook == hook_id(body)]
    assert len(refused) == 3 and all(c.payload.get("blocks") for c in refused)
    assert "blocks" not in delivered.payload and "Llama 3.1 8B" in delivered.payload["text"]
    warnings = [r for r in caplog.records if "response_url refused" in r.getMessage()]
    assert len(warnings) == 3 and all(r.levelno == logging.WARNING and "400" in r.getMessage() for r in warnings)


# --- 7. the rate limit bounds what the bot posts ----------------------------------------------


def _clear_of_the_minute_edge() -> None:
    """The limit counts per clock minute: start a burst well inside one."""
    if time.time() % 60 > 55:
        time.sleep(60 - time.time() % 60 + 0.1)


def test_past_the_rate_limit_one_notice_per_user_then_silence_for_messages_and_buttons(strict_bot: Bot) -> None:
    _clear_of_the_minute_edge()
    channel, user = dm_channel(), "UFLOOD" + uuid.uuid4().hex[:6].upper()
    for i in range(8):
        dm(strict_bot, channel, f"llama 3.1 8b {4000 + i} tokens", user=user)
    calls = settle(strict_bot, channel, 4)
    assert len(calls) == 4
    assert sum("asking faster" in c.payload["text"] for c in calls) == 1

    clicker, thread = "UCLICK" + uuid.uuid4().hex[:6].upper(), unique_channel()
    value = button_value(Request(model="llama-3.1-8b"), {"context_tokens": 32768})
    assert value
    bodies = [strict_bot.click_body(value, thread, "1700000000.000100", user=clicker) for _ in range(6)]
    for body in bodies:
        assert strict_bot.signed(body, FORM).status_code == 200
    answers = settle(strict_bot, thread, 3)
    hooks = {hook_id(b) for b in bodies}
    notices = wait_until(lambda: [c for c in strict_bot.slack.of("response_url") if c.hook in hooks])
    time.sleep(0.3)
    assert len(answers) == 3 and len(notices) == 1 and "asking faster" in notices[0].payload["text"]


# --- 8. hidden subtypes and workspace events --------------------------------------------------


def test_hidden_message_subtypes_and_files_without_text_get_nothing(bot: Bot) -> None:
    channel = dm_channel()
    for subtype in ("message_replied", "tombstone", "assistant_app_thread", "ekm_access_denied", "message_changed"):
        dm(bot, channel, "llama 3.1 8b", subtype=subtype)
    dm(bot, channel, "", subtype="file_share", files=[{"id": "F1"}])
    dm(bot, channel, "hi", bot_id="B999")
    time.sleep(0.6)
    assert posts(bot, channel) == []
    dm(bot, channel, "llama 3.1 8b")  # and the same DM channel is answered when someone asks
    assert len(settle(bot, channel, 1)) == 1


def test_workspace_events_get_200_without_warnings_and_uninstall_forgets_the_workspace(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    team, other = "TGONE" + uuid.uuid4().hex[:6].upper(), "TSTAY" + uuid.uuid4().hex[:6].upper()
    channel, kept = unique_channel(), unique_channel()
    first, second = mention(bot, channel, team=team), mention(bot, kept, team=other)
    settle(bot, channel, 1)
    settle(bot, kept, 1)
    rate_limited = json.dumps({"token": "x", "type": "app_rate_limited", "team_id": team,
                               "minute_rate_limited": int(time.time()) // 60 * 60, "api_app_id": "A1"})  # fmt: skip
    with caplog.at_level(logging.INFO):
        assert bot.signed(rate_limited, "application/json").status_code == 200
        assert (
            bot.event({"type": "tokens_revoked", "tokens": {"oauth": [], "bot": ["UHEADROOM"]}}, team=team).status_code
            == 200
        )
        assert bot.event({"type": "app_uninstalled"}, team=team).status_code == 200
        wait_until(lambda: sum("forgot its" in r.getMessage() for r in caplog.records) == 2)
    assert not [r for r in caplog.records if r.name.startswith("slack_bolt") and r.levelno >= logging.WARNING]
    say_in_thread(bot, channel, first["ts"], "what about 32k?", team=team)  # forgotten: not headroom's thread now
    say_in_thread(bot, kept, second["ts"], "what about 32k?", team=other)  # another workspace: still remembered
    assert len(settle(bot, kept, 2)) == 2
    assert len(posts(bot, channel)) == 1


# --- 9. Redis restarting under a retry --------------------------------------------------------


def test_a_retry_across_a_redis_restart_is_answered_once_and_the_outage_is_logged_once(
    bot: Bot, redis_server: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    channel, ts = unique_channel(), new_ts()
    event = {"type": "app_mention", "user": "U1", "text": ASK, "ts": ts, "channel": channel}
    assert bot.event(event, event_id="EvAcrossRestart" + channel).status_code == 200
    settle(bot, channel, 1)
    with caplog.at_level(logging.INFO, logger="headroom.store"):
        redis_server.stop()
        try:
            for _ in range(2):  # requests over several retry pauses (0.5 s) of the outage
                during = unique_channel()
                mention(bot, during)
                settle(bot, during, 1)
                time.sleep(0.3)
        finally:
            redis_server.start()  # empty: nothing was saved
        wait_until(lambda: bot.http.get("/readyz").status_code == 200, timeout=10)
        retry = bot.event(event, event_id="EvAcrossRestart" + channel, headers={"X-Slack-Retry-Num": "1"})
        assert retry.status_code == 200
        time.sleep(0.5)
    assert len(posts(bot, channel)) == 1
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert sum("redis unavailable" in m for _, m in messages) == 1
    assert [level for level, m in messages if m == "redis is back"] == [logging.INFO]


# --- 12. oversized values and lists, slow Slack -----------------------------------------------


def test_a_button_value_nested_5000_deep_or_over_2000_characters_is_an_expired_button(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    channel = unique_channel()
    huge = json.dumps({"r": {"model": "llama-3.1-8b", "families": ["g6e"] * 400}})
    bodies = [bot.click_body("[" * 5000 + "]" * 5000, channel, "1.0"), bot.click_body(huge, channel, "1.0")]
    with caplog.at_level(logging.INFO):
        for body in bodies:
            assert bot.signed(body, FORM).status_code == 200
        hooks = {hook_id(b) for b in bodies}
        replies = wait_until(lambda: len(r := [c for c in bot.slack.of("response_url") if c.hook in hooks]) == 2 and r)
    assert all("That button has expired" in r.payload["text"] for r in replies)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_families_repeated_thousands_of_times_get_one_reply_within_slack_limits(bot: Bot) -> None:
    channel = dm_channel()
    dm(bot, channel, "llama 3.1 8b only " + "g6e " * 5000)  # 20,000 characters
    dm(bot, channel, "llama 3.1 8b only " + " ".join(f"zz{i}" for i in range(380)))  # under the length limit
    calls = settle(bot, channel, 2)
    assert len(calls) == 2  # the every_payload_within_slack_limits check of the fake Slack holds for both
    assert bot.slack.block_errors == []
    assert all(len(c.payload["text"]) <= 4000 for c in calls)
    thread = unique_channel()
    event = mention(bot, thread, "<@UHEADROOM> llama 3.1 8b")
    settle(bot, thread, 1)
    say_in_thread(bot, thread, event["ts"], "only " + " ".join(["g6e", "p5", "g5", "p4d"] * 90) + " ?")
    follow = settle(bot, thread, 2)
    assert len(follow) == 2 and bot.slack.block_errors == []


def test_a_slack_call_slower_than_the_timeout_is_logged_clearly_and_tried_again(
    strict_bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    channel, user = unique_channel(), "USLOW" + uuid.uuid4().hex[:6].upper()  # its own rate-limit count
    strict_bot.slack.slow("chat.postMessage", 1.2)
    with caplog.at_level(logging.WARNING):
        mention(strict_bot, channel, text="<@UHEADROOM> qwen3 32b fp8", user=user)
        (call,) = settle(strict_bot, channel, 1, timeout=15)
    assert "Qwen3 32B" in call.payload["text"]
    assert any("did not answer chat.postMessage within 1 s; trying once more" in r.getMessage() for r in caplog.records)

    twice = unique_channel()  # slow again on the retry: the failure is named, and the user told once
    strict_bot.slack.slow("chat.postMessage", 1.2, times=2)
    with caplog.at_level(logging.WARNING):
        mention(strict_bot, twice, text="<@UHEADROOM> qwen3 32b fp8", user=user)
        (told,) = settle(strict_bot, twice, 1, timeout=15)
    assert "something went wrong on my side" in told.payload["text"]
    failed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("answer failed")]
    assert failed and "TimeoutError: a Slack or Redis call did not answer in time" in failed[-1]
