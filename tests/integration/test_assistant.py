"""Slack's assistant panel end to end: real ASGI app over HTTP, real Redis, a fake Slack Web API recording calls.

The panel is an extra: its threads are DM threads answered by the same conversation service, and a
workspace without the feature (or a Slack that refuses the panel's calls) still gets every answer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.integration.conftest import Bot, new_ts, unique_channel
from tests.integration.servers import wait_until

PANEL_CALLS = ("assistant.threads.setStatus", "assistant.threads.setTitle", "assistant.threads.setSuggestedPrompts")


@pytest.fixture(autouse=True)
def every_payload_within_slack_limits(bot: Bot) -> Iterator[None]:
    yield
    assert bot.slack.block_errors == []


def dm_channel() -> str:
    return "D" + unique_channel()[1:]


def start_thread(bot: Bot, channel: str, viewing: str | None = None) -> str:
    thread_ts = new_ts()
    thread = {"user_id": "U1", "channel_id": channel, "thread_ts": thread_ts,
              "context": {"channel_id": viewing, "team_id": "T1"} if viewing else {}}  # fmt: skip
    response = bot.event({"type": "assistant_thread_started", "assistant_thread": thread, "event_ts": thread_ts})
    assert response.status_code == 200
    return thread_ts


def say(bot: Bot, channel: str, text: str, thread_ts: str | None = None) -> dict:
    event = {"type": "message", "channel_type": "im", "user": "U1", "text": text, "ts": new_ts(), "channel": channel}
    if thread_ts:
        event["thread_ts"] = thread_ts
    assert bot.event(event).status_code == 200
    return event


def panel_calls(bot: Bot, channel: str) -> list:
    return [c for method in PANEL_CALLS for c in bot.slack.of(method, channel_id=channel)]


def answers(bot: Bot, channel: str, count: int) -> list:
    return wait_until(lambda: (found := bot.slack.of("chat.postMessage", channel=channel)) and len(found) >= count
                      and found)  # fmt: skip


def prompts_of(call) -> list[dict]:  # noqa: ANN001
    prompts = call.payload["prompts"]
    return json.loads(prompts) if isinstance(prompts, str) else prompts


def test_a_new_panel_thread_gets_a_greeting_and_three_suggested_prompts(bot: Bot) -> None:
    channel = dm_channel()
    thread_ts = start_thread(bot, channel)
    (call,) = wait_until(lambda: bot.slack.of("assistant.threads.setSuggestedPrompts", channel_id=channel))
    assert call.payload["thread_ts"] == thread_ts
    prompts = prompts_of(call)
    assert len(prompts) == 3 and all(p["title"] and p["message"] for p in prompts)
    assert "llama 3.3 70b fp8 8k context" in [p["message"] for p in prompts]
    (greeting,) = answers(bot, channel, 1)
    assert greeting.payload["thread_ts"] == thread_ts and "EC2" in greeting.payload["text"]


def test_in_a_channel_where_a_model_was_sized_the_first_prompt_offers_it_again(bot: Bot) -> None:
    sized = unique_channel()
    bot.event({"type": "app_mention", "user": "U1", "text": "<@UHEADROOM> qwen2.5 72b bf16 16k, 20 users",
               "ts": new_ts(), "channel": sized})  # fmt: skip
    answers(bot, sized, 1)
    channel = dm_channel()
    start_thread(bot, channel, viewing=sized)
    (call,) = wait_until(lambda: bot.slack.of("assistant.threads.setSuggestedPrompts", channel_id=channel))
    first, *others = prompts_of(call)
    assert "Qwen2.5 72B" in first["title"] and "Qwen2.5 72B" in first["message"] and "20 users" in first["message"]
    assert len(others) == 3
    # the prompt is a question headroom reads back as that model
    say(bot, channel, first["message"])
    (_, reply) = answers(bot, channel, 2)
    assert "Qwen2.5 72B" in reply.payload["text"] and "32k context" in reply.payload["text"]


def test_looking_at_another_channel_updates_the_prompts(bot: Bot) -> None:
    sized = unique_channel()
    bot.event({"type": "app_mention", "user": "U1", "text": "<@UHEADROOM> llama 3.1 8b bf16 8k", "ts": new_ts(),
               "channel": sized})  # fmt: skip
    answers(bot, sized, 1)
    channel = dm_channel()
    thread_ts = start_thread(bot, channel, viewing=unique_channel())
    wait_until(lambda: bot.slack.of("assistant.threads.setSuggestedPrompts", channel_id=channel))
    thread = {"user_id": "U1", "channel_id": channel, "thread_ts": thread_ts, "context": {"channel_id": sized}}
    bot.event({"type": "assistant_thread_context_changed", "assistant_thread": thread, "event_ts": new_ts()})
    (before, after) = wait_until(lambda: len(c := bot.slack.of("assistant.threads.setSuggestedPrompts",
                                                               channel_id=channel)) == 2 and c)  # fmt: skip
    assert "Llama 3.1 8B" not in json.dumps(prompts_of(before))
    assert "Llama 3.1 8B" in prompts_of(after)[0]["title"] and after.payload["thread_ts"] == thread_ts
    assert len(bot.slack.of("chat.postMessage", channel=channel)) == 1  # one greeting, not one per change


def test_a_question_in_a_panel_thread_gets_status_title_and_one_answer(bot: Bot) -> None:
    channel = dm_channel()
    thread_ts = start_thread(bot, channel)
    answers(bot, channel, 1)  # the greeting
    say(bot, channel, "llama 3.3 70b fp8 8k context", thread_ts)
    (_, answer) = answers(bot, channel, 2)
    assert answer.payload["thread_ts"] == thread_ts and "g7e.2xlarge" in answer.payload["text"]
    (status,) = bot.slack.of("assistant.threads.setStatus", channel_id=channel)
    (title,) = bot.slack.of("assistant.threads.setTitle", channel_id=channel)
    assert status.payload["thread_ts"] == thread_ts and status.payload["status"]
    assert status.at < answer.at  # the status shows while the answer is computed
    assert title.payload["title"] == "Llama 3.3 70B Instruct · FP8 · 8k"
    time.sleep(0.3)
    assert len(bot.slack.of("chat.postMessage", channel=channel)) == 2  # greeting + exactly one answer


def test_a_follow_up_in_the_panel_thread_replans_like_a_dm(bot: Bot) -> None:
    channel = dm_channel()
    thread_ts = start_thread(bot, channel)
    say(bot, channel, "llama 3.3 70b fp8 8k context", thread_ts)
    answers(bot, channel, 2)
    say(bot, channel, "what about 32k?", thread_ts)
    reply = answers(bot, channel, 3)[2]
    text = reply.payload["text"] + json.dumps(reply.payload["blocks"])
    assert reply.payload["thread_ts"] == thread_ts and "What changed" in text and "32,768" in text
    titles = [c.payload["title"] for c in bot.slack.of("assistant.threads.setTitle", channel_id=channel)]
    assert titles == ["Llama 3.3 70B Instruct · FP8 · 8k", "Llama 3.3 70B Instruct · FP8 · 32k"]


def test_a_plain_dm_still_works_without_the_panel(bot: Bot) -> None:
    channel = dm_channel()
    say(bot, channel, "llama 3.1 8b bf16 8k context")
    (answer,) = answers(bot, channel, 1)
    assert "Llama 3.1 8B" in answer.payload["text"] and "thread_ts" not in answer.payload
    # a reply in a DM thread the panel did not open is a plain DM follow-up: no panel calls
    say(bot, channel, "llama 3.1 8b bf16 8k context", thread_ts=new_ts())
    answers(bot, channel, 2)
    time.sleep(0.2)
    assert panel_calls(bot, channel) == []


def test_when_slack_refuses_the_panel_calls_the_answer_still_comes(bot: Bot) -> None:
    """A workspace without the feature (or a token without assistant:write): prompts, status and title
    are refused; the greeting and the answer arrive all the same."""
    channel = dm_channel()
    for method in PANEL_CALLS:
        bot.slack.fail(method, "missing_scope")
    thread_ts = start_thread(bot, channel)
    answers(bot, channel, 1)
    say(bot, channel, "llama 3.3 70b fp8 8k context", thread_ts)
    (_, answer) = answers(bot, channel, 2)
    assert answer.payload["thread_ts"] == thread_ts and "g7e.2xlarge" in answer.payload["text"]
    refused = {c.method for c in bot.slack.calls if c.method.startswith("refused:assistant")}
    assert refused == {"refused:" + m for m in PANEL_CALLS}
    metrics = bot.http.get("/metrics").text
    assert 'headroom_slack_api_errors_total{error="missing_scope",method="assistant.threads.setStatus"}' in metrics


def test_app_home_links_to_the_assistant(bot: Bot) -> None:
    user = "UPANEL" + unique_channel()[1:6]
    bot.event({"type": "app_home_opened", "user": user, "channel": "D1", "tab": "home"})
    (call,) = wait_until(lambda: bot.slack.of("views.publish", user_id=user))
    view = call.payload["view"] if isinstance(call.payload["view"], dict) else json.loads(call.payload["view"])
    assert "<https://slack.com/app_redirect?app=A1&team=T1|" in json.dumps(view, ensure_ascii=False)
