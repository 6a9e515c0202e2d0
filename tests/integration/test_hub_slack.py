"""A Slack question about a model the catalog lacks: an interim "Reading … from the Hub" message becomes the answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.server import create_app
from tests.hub.configs import CONFIGS, tensors
from tests.hub.standin import HubStandIn, Repo
from tests.integration.conftest import Bot, bot_settings, unique_channel
from tests.integration.servers import FakeSlack, RedisProcess, ServerThread, wait_until
from tests.integration.test_assistant import dm_channel, say, start_thread

QWEN_CONFIG = CONFIGS["Qwen/Qwen2.5-7B-Instruct"]
REPO = "acme-ml/qwen2.5-7b-support-sft"
OTHER = "acme-ml/qwen2.5-7b-legal-sft"
UNREAD = ("acme-ml/qwen2.5-7b-finance-sft", "acme-ml/qwen2.5-7b-medical-sft", "acme-ml/qwen2.5-7b-panel-sft")  # one per test that needs a Hub read


@pytest.fixture()
def hub_bot(
    redis_server: RedisProcess, fake_slack: FakeSlack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Bot, HubStandIn]]:
    hub = HubStandIn([Repo(r, QWEN_CONFIG, tensors(QWEN_CONFIG)) for r in (REPO, OTHER, *UNREAD)]).start()
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HEADROOM_CACHE_DIR", str(tmp_path / "cache"))
    app = create_app(bot_settings(redis_server.url, fake_slack.url))  # type: ignore[attr-defined]
    try:
        with ServerThread(app) as thread:
            yield Bot(thread.url, fake_slack), hub
    finally:
        hub.stop()


def test_a_hub_model_is_read_with_an_interim_message_that_becomes_the_answer(hub_bot: tuple[Bot, HubStandIn]) -> None:
    bot, hub = hub_bot
    channel = unique_channel()
    event = {"type": "app_mention", "user": "U1", "text": f"<@UHEADROOM> {REPO} fp8 8k", "ts": "1700000001.000100",
             "channel": channel}  # fmt: skip
    assert bot.event(event).status_code == 200
    (update,) = wait_until(lambda: bot.slack.of("chat.update", channel=channel), timeout=30)
    (interim,) = bot.slack.of("chat.postMessage", channel=channel)
    assert interim.payload["text"] == f"Reading {REPO} from the Hugging Face Hub…"
    assert interim.payload["thread_ts"] == event["ts"]
    assert REPO in update.payload["text"] and f"vllm serve {REPO}" in str(update.payload["blocks"])
    assert hub.hits[f"/api/models/{REPO}"] == 1

    # the same model again, in a new thread: read from the shared store, no interim message, no Hub request
    again = {**event, "ts": "1700000002.000100", "text": f"<@UHEADROOM> {REPO} 16k"}
    assert bot.event(again).status_code == 200
    wait_until(lambda: len(bot.slack.of("chat.postMessage", channel=channel)) == 2, timeout=30)
    answer = bot.slack.of("chat.postMessage", channel=channel)[1]
    assert answer.payload["thread_ts"] == again["ts"] and REPO in answer.payload["text"]
    assert hub.hits[f"/api/models/{REPO}"] == 1


def test_an_interim_message_slack_refuses_blocks_for_becomes_the_plain_answer(
    hub_bot: tuple[Bot, HubStandIn],
) -> None:
    bot, _ = hub_bot
    bot.slack.fail("chat.update", "invalid_blocks", times=3)  # every block layout is refused: charts, table, fallback
    channel = unique_channel()
    event = {"type": "app_mention", "user": "U1", "text": f"<@UHEADROOM> {OTHER} 8k", "ts": "1700000003.000100",
             "channel": channel}  # fmt: skip
    assert bot.event(event).status_code == 200
    (update,) = wait_until(lambda: bot.slack.of("chat.update", channel=channel), timeout=30)
    assert not update.payload.get("blocks") and f"vllm serve {OTHER}" in update.payload["text"]
    assert len(bot.slack.of("refused:chat.update", channel=channel)) == 3
    assert len(bot.slack.of("chat.postMessage", channel=channel)) == 1  # only the interim message was posted


@pytest.mark.parametrize(
    ("repo", "error", "status", "times"),
    [(UNREAD[0], "fatal_error", 200, 1), (UNREAD[1], "internal_error", 500, 3)],  # a 500: after the client's retries
)
def test_an_interim_message_slack_fails_to_post_leaves_the_answer_posted_once(
    hub_bot: tuple[Bot, HubStandIn], repo: str, error: str, status: int, times: int
) -> None:
    bot, _ = hub_bot
    bot.slack.fail("chat.postMessage", error, times=times, status=status)  # the interim message
    channel = unique_channel()
    event = {"type": "app_mention", "user": "U1", "text": f"<@UHEADROOM> {repo} 4k", "ts": "1700000004.000100",
             "channel": channel}  # fmt: skip
    assert bot.event(event).status_code == 200
    (answer,) = wait_until(lambda: bot.slack.of("chat.postMessage", channel=channel), timeout=30)
    assert answer.payload["thread_ts"] == event["ts"] and f"vllm serve {repo}" in str(answer.payload["blocks"])
    assert len(bot.slack.of("refused:chat.postMessage", channel=channel)) == times
    assert not bot.slack.of("chat.update", channel=channel)
    assert len(bot.slack.of("chat.postMessage", channel=channel)) == 1  # the answer once, no error reply after it


def test_a_panel_answer_that_replaces_the_interim_message_clears_the_status(hub_bot: tuple[Bot, HubStandIn]) -> None:
    bot, _ = hub_bot
    channel = dm_channel()
    thread_ts = start_thread(bot, channel)
    wait_until(lambda: bot.slack.of("chat.postMessage", channel=channel))  # the greeting
    say(bot, channel, f"{UNREAD[2]} bf16 8k", thread_ts)
    (update,) = wait_until(lambda: bot.slack.of("chat.update", channel=channel), timeout=30)
    assert f"vllm serve {UNREAD[2]}" in str(update.payload["blocks"])
    working, cleared = wait_until(lambda: len(s := bot.slack.of("assistant.threads.setStatus", channel_id=channel)) == 2
                                  and s)  # fmt: skip
    assert working.payload["status"] and cleared.payload["status"] == "" and cleared.payload["thread_ts"] == thread_ts
    assert cleared.at > update.at  # after the answer arrived
