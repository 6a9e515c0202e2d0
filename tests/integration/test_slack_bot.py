"""The Slack bot end to end: real ASGI app over HTTP, real Redis, a fake Slack Web API that records calls."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import pytest

from tests.integration.conftest import Bot, new_ts, unique_channel
from tests.integration.servers import wait_until

ASK = "<@UHEADROOM> llama 3.3 70b fp8 8k context"


@pytest.fixture(autouse=True)
def every_payload_within_slack_limits(bot: Bot) -> Iterator[None]:
    """The fake Slack checks each chat.postMessage with slack_sdk's block models and the limits."""
    yield
    assert bot.slack.block_errors == []


def posted(bot: Bot, channel: str, count: int = 1, timeout: float = 10.0) -> list:
    return wait_until(
        lambda: (found := bot.slack.of("chat.postMessage", channel=channel)) and len(found) >= count and found, timeout
    )


def answer_text(call) -> str:  # noqa: ANN001
    blocks = call.payload["blocks"]
    return call.payload["text"] + "\n" + json.dumps(blocks)


def mention(bot: Bot, channel: str, text: str = ASK, ts: str | None = None, thread_ts: str | None = None, **kw):  # noqa: ANN003, ANN201
    event = {"type": "app_mention", "user": "U1", "text": text, "ts": ts or new_ts(), "channel": channel}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return bot.event(event, **kw), event


def test_a_mention_gets_one_threaded_answer_naming_the_top_instance(bot: Bot) -> None:
    channel = unique_channel()
    response, event = mention(bot, channel)
    assert response.status_code == 200
    (call,) = posted(bot, channel)
    assert call.payload["thread_ts"] == event["ts"]
    assert "g7e.2xlarge" in call.payload["text"]
    assert {"data_visualization", "data_table"} <= {b["type"] for b in call.payload["blocks"]}  # issue 15
    time.sleep(0.3)
    assert len(bot.slack.of("chat.postMessage", channel=channel)) == 1
    assert not bot.slack.block_errors


def test_a_thread_follow_up_replans_and_says_what_changed(bot: Bot) -> None:
    channel = unique_channel()
    _, event = mention(bot, channel)
    posted(bot, channel)
    follow = {"type": "message", "channel_type": "channel", "user": "U1", "text": "what about 32k?",
              "ts": new_ts(), "thread_ts": event["ts"], "channel": channel}  # fmt: skip
    assert bot.event(follow).status_code == 200
    calls = posted(bot, channel, 2)
    reply = answer_text(calls[1])
    assert calls[1].payload["thread_ts"] == event["ts"]
    assert "32k context" in reply and "What changed" in reply and "32,768" in reply


def test_messages_in_threads_headroom_did_not_answer_get_silence(bot: Bot) -> None:
    channel = unique_channel()
    chatter = {"type": "message", "channel_type": "channel", "user": "U1", "text": "what about 32k?",
               "ts": new_ts(), "thread_ts": new_ts(), "channel": channel}  # fmt: skip
    assert bot.event(chatter).status_code == 200
    time.sleep(0.5)
    assert not bot.slack.of("chat.postMessage", channel=channel)


def test_a_slash_command_is_acknowledged_fast_and_answered(bot: Bot) -> None:
    channel = unique_channel()
    started = time.monotonic()
    response = bot.command("qwen2.5 72b bf16 32k 20 users", channel)
    assert response.status_code == 200 and time.monotonic() - started < 3
    (call,) = posted(bot, channel)
    assert "Qwen2.5 72B" in call.payload["text"]


def test_just_me_answers_only_the_asker(bot: Bot) -> None:
    channel = unique_channel()
    assert bot.command("llama 3.1 8b just me", channel).status_code == 200
    hook = wait_until(lambda: [c for c in bot.slack.of("response_url") if "Llama 3.1 8B" in c.payload.get("text", "")])
    assert hook[-1].payload["response_type"] == "ephemeral"
    assert not bot.slack.of("chat.postMessage", channel=channel)


def test_a_button_click_replans_into_the_thread(bot: Bot) -> None:
    channel = unique_channel()
    _, event = mention(bot, channel)
    (first,) = posted(bot, channel)
    actions = next(b for b in first.payload["blocks"] if b["type"] == "actions")
    button = next(e for e in actions["elements"] if e["text"]["text"] == "32k context")
    assert bot.click(button["value"], channel, "1700000000.000100", event["ts"], button["action_id"]).status_code == 200
    calls = posted(bot, channel, 2)
    assert calls[1].payload["thread_ts"] == event["ts"]
    assert "32k context" in calls[1].payload["text"]


def test_retries_and_double_delivery_give_one_answer(bot: Bot) -> None:
    channel = unique_channel()
    ts = new_ts()
    _, _ = mention(bot, channel, ts=ts, event_id="EvRetryOnce")
    mention(
        bot,
        channel,
        ts=ts,
        event_id="EvRetryOnce",
        headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    )
    as_message = {"type": "message", "channel_type": "channel", "user": "U1", "text": ASK, "ts": ts, "channel": channel}
    bot.event(as_message, event_id="EvAsMessage")
    posted(bot, channel)
    time.sleep(0.5)
    assert len(bot.slack.of("chat.postMessage", channel=channel)) == 1


def test_forged_or_stale_signatures_get_401_and_nothing_is_posted(bot: Bot) -> None:
    channel = unique_channel()
    forged, _ = mention(bot, channel, secret="not-the-secret")
    stale, _ = mention(bot, channel, timestamp=int(time.time()) - 600)
    assert (forged.status_code, stale.status_code) == (401, 401)
    time.sleep(0.3)
    assert not bot.slack.of("chat.postMessage", channel=channel)


def test_user_text_is_never_echoed_as_a_broadcast(bot: Bot) -> None:
    channel = unique_channel()
    mention(bot, channel, text="<@UHEADROOM> <!channel> <!here> frobnicate <b>&amp; 8k")
    (call,) = posted(bot, channel)
    raw = json.dumps(call.payload)
    assert "<!channel>" not in raw and "<!here>" not in raw and "<b>" not in raw
    assert "&lt;b&gt;" in raw or "frobnicate" in raw


def test_answers_keep_coming_while_redis_is_down(bot: Bot, redis_server) -> None:  # noqa: ANN001
    channel = unique_channel()
    redis_server.stop()
    try:
        assert bot.http.get("/readyz").status_code == 503
        assert bot.http.get("/healthz").status_code == 200
        mention(bot, channel)
        (call,) = posted(bot, channel)
        assert "g7e.2xlarge" in call.payload["text"]
    finally:
        redis_server.start()
    wait_until(lambda: bot.http.get("/readyz").status_code == 200, timeout=10)


def test_a_429_from_slack_delays_but_does_not_lose_the_answer(bot: Bot) -> None:
    channel = unique_channel()
    bot.slack.rate_limit_next = 1
    started = time.monotonic()
    mention(bot, channel)
    (call,) = posted(bot, channel, timeout=15)
    limited = [c for c in bot.slack.of("429:chat.postMessage") if c.payload.get("channel") == channel]
    assert limited and call.at - limited[0].at >= 1.0  # waited for Retry-After
    assert time.monotonic() - started >= 1.0


def test_a_refused_table_falls_back_to_a_text_ranking(bot: Bot) -> None:
    channel = unique_channel()
    bot.slack.reject_tables = True
    try:
        mention(bot, channel)
        (call,) = posted(bot, channel)
    finally:
        bot.slack.reject_tables = False
    assert not any(b["type"] == "table" for b in call.payload["blocks"])
    assert "g7e.2xlarge" in json.dumps(call.payload["blocks"])
    refused = [c for c in bot.slack.of("refused:chat.postMessage") if c.payload.get("channel") == channel]
    assert [[b["type"] for b in c.payload["blocks"] if "table" in b["type"]] for c in refused] == [["data_table"], ["table"]]


def test_dms_are_answered_and_follow_ups_need_no_mention(bot: Bot) -> None:
    channel = "D" + unique_channel()[1:]
    first = {
        "type": "message",
        "channel_type": "im",
        "user": "U1",
        "text": "llama 3.1 8b",
        "ts": new_ts(),
        "channel": channel,
    }
    bot.event(first)
    posted(bot, channel)
    bot.event({**first, "text": "int4 instead", "ts": new_ts()})
    calls = posted(bot, channel, 2)
    assert "INT4" in calls[1].payload["text"]


def test_app_home_shows_how_to_ask_and_data_freshness(bot: Bot) -> None:
    user = "UHOME" + unique_channel()[1:6]
    bot.event({"type": "app_home_opened", "user": user, "channel": "D1", "tab": "home"})
    (call,) = wait_until(lambda: bot.slack.of("views.publish", user_id=user))
    view = call.payload["view"] if isinstance(call.payload["view"], dict) else json.loads(call.payload["view"])
    text = json.dumps(view)
    assert "Data as of" in text and "2026-07-20" in text and "llama 3.3 70b fp8 8k context" in text


def test_metrics_count_requests_cache_and_planning_time(bot: Bot) -> None:
    for _ in range(2):
        channel = unique_channel()
        mention(bot, channel, text="<@UHEADROOM> qwen3 32b fp8 16k 4 users")
        posted(bot, channel)
    text = bot.http.get("/metrics").text
    assert 'headroom_requests_total{outcome="answer",surface="mention"}' in text
    assert 'headroom_answer_cache_total{result="hit"}' in text
    count = re.search(r"^headroom_planning_seconds_count (\d+)", text, re.MULTILINE)
    assert count and float(count.group(1)) >= 1


def test_a_slash_command_in_a_channel_without_the_bot_is_answered_through_the_response_url(bot: Bot) -> None:
    channel = unique_channel()
    bot.slack.not_in_channel.add(channel)
    assert bot.command("gemma 3 27b 32k", channel).status_code == 200
    hook = wait_until(lambda: [c for c in bot.slack.of("response_url") if "Gemma 3 27B" in c.payload.get("text", "")])
    assert hook[-1].payload["response_type"] == "in_channel"
    assert bot.slack.of("refused:chat.postMessage", channel=channel)


def test_start_over_forgets_the_thread(bot: Bot) -> None:
    channel = unique_channel()
    _, event = mention(bot, channel)
    posted(bot, channel)

    def reply(text: str) -> None:
        bot.event({"type": "message", "channel_type": "channel", "user": "U1", "text": text, "ts": new_ts(),
                   "thread_ts": event["ts"], "channel": channel})  # fmt: skip

    reply("start over")
    assert "Starting over" in posted(bot, channel, 2)[1].payload["text"]
    reply("qwen3 32b")
    third = posted(bot, channel, 3)[2]
    assert "Qwen3 32B" in third.payload["text"] and "What changed" not in json.dumps(third.payload["blocks"])


def test_words_not_understood_are_said_back_in_the_answer(bot: Bot) -> None:
    channel = unique_channel()
    mention(bot, channel, text="<@UHEADROOM> llama 3.1 8b frobnicate 8k")
    (call,) = posted(bot, channel)
    assert "Not understood, so not used: 'frobnicate'" in answer_text(call)


def test_a_pasted_serve_command_is_planned_and_its_secrets_never_echoed(bot: Bot) -> None:
    channel = unique_channel()
    paste = ("<@UHEADROOM> will this OOM on g6e.12xlarge? ```vllm serve Qwen/Qwen2.5-72B-Instruct-AWQ "
             "--tensor-parallel-size 4 --max-model-len 32768 --max-num-seqs 64 --swap-space 8 "
             "--api-key sk-TOPSECRET123456```")  # fmt: skip
    mention(bot, channel, text=paste)
    (call,) = posted(bot, channel)
    text = answer_text(call)
    assert "g6e.12xlarge" in text and "--swap-space 8: not modelled yet" in text
    assert "--max-num-seqs 64: not modelled" not in text  # modelled: it sizes the profiling run
    assert "TOPSECRET" not in json.dumps(bot.slack.calls, default=str)


def test_a_pasted_log_in_a_mention_gets_a_diagnosis_in_the_thread(bot: Bot) -> None:
    channel = unique_channel()
    paste = (
        "<@UHEADROOM> why does this die? ```INFO 05-01 10:00:00 [gpu_model_runner.py:1595] Model loading took "
        "67.72 GiB and 30.1 seconds\nERROR 05-01 10:00:09 [core.py:586] ValueError: To serve at least one request "
        "with the models's max seq len (131072), (40.00 GiB KV cache is needed, which is larger than the available "
        "KV cache memory (1.20 GiB). Based on the available memory, the estimated maximum model length is 3920. "
        "Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine. "
        "hf_SECRETTOKEN1234567890```"
    )
    _, event = mention(bot, channel, text=paste)
    (call,) = posted(bot, channel)
    text = answer_text(call)
    assert call.payload["thread_ts"] == event["ts"]
    assert call.payload["blocks"][0]["text"]["text"] == "Diagnosis · KV cache too small for the max length"
    assert "40.00 GiB of KV cache" in text
    assert "which GPU" in text  # the paste does not say: asked in one line
    assert "SECRETTOKEN" not in json.dumps(bot.slack.calls, default=str)


SNIPPET = """INFO 11-20 10:00:00 [gpu_model_runner.py:2000] Model loading took 67.72 GiB and 41.2 seconds
ERROR 11-20 10:00:20 [core.py:700] ValueError: To serve at least one request with the models's max seq len (8192), \
(2.50 GiB KV cache is needed, which is larger than the available KV cache memory (1.20 GiB). Based on the available \
memory, the estimated maximum model length is 3920. Try increasing `gpu_memory_utilization` or decreasing \
`max_model_len` when initializing the engine.
"""


def test_a_snippet_in_a_thread_is_diagnosed_and_naming_the_gpu_re_diagnoses(bot: Bot) -> None:
    channel = unique_channel()
    _, event = mention(bot, channel, text="<@UHEADROOM> llama 3.1 8b")  # headroom answers: the thread is its own
    posted(bot, channel)
    name = f"snippet-{channel}"
    bot.slack.files[name] = SNIPPET
    snippet = {"id": "F1", "mode": "snippet", "filetype": "text", "mimetype": "text/plain", "size": len(SNIPPET),
               "url_private": f"{bot.slack.url}/files/{name}"}  # fmt: skip
    reply = {"type": "message", "subtype": "file_share", "channel_type": "channel", "user": "U1", "text": "why?",
             "ts": new_ts(), "thread_ts": event["ts"], "channel": channel, "files": [snippet]}  # fmt: skip
    bot.event(reply)
    second = posted(bot, channel, 2)[1]
    assert second.payload["thread_ts"] == event["ts"]
    assert second.payload["blocks"][0]["text"]["text"] == "Diagnosis · KV cache too small for the max length"
    assert "which GPU" in answer_text(second)
    (fetched,) = [c for c in bot.slack.of("file") if c.payload["name"] == name]
    assert fetched.payload["authorization"] == "Bearer xoxb-test-token"
    follow = {"type": "message", "channel_type": "channel", "user": "U1", "ts": new_ts(), "thread_ts": event["ts"],
              "channel": channel, "text": "it's llama 3.3 70b fp8 on a p5.4xlarge"}  # fmt: skip
    bot.event(follow)
    third = posted(bot, channel, 3)[2]
    assert third.payload["blocks"][0]["text"]["text"] == "Diagnosis · KV cache too small for the max length"
    assert "p5.4xlarge" in answer_text(third) and "GiB printed" in answer_text(third)
