"""Several replicas behind one Redis, and Redis going away while requests flow."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.conftest import SECRET, Bot, new_ts, unique_channel
from tests.integration.servers import FakeSlack, RedisProcess, free_port, wait_until

ASK = "<@UHEADROOM> llama 3.3 70b fp8 8k context"


class Replica:
    """A `headroom serve` process, as production runs it."""

    def __init__(self, redis_url: str, slack: FakeSlack, grace_s: float = 25) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REDIS_"))}
        env |= {
            "SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_SIGNING_SECRET": SECRET, "REDIS_URL": redis_url,
            "SLACK_API_URL": f"{slack.url}/api/", "REDIS_TIMEOUT_S": "0.3", "REDIS_RETRY_AFTER_S": "0.5",  # type: ignore[attr-defined]
            "RATE_LIMIT_PER_MINUTE": "100000", "SHUTDOWN_GRACE_S": str(grace_s),
        }  # fmt: skip
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.bot = Bot(f"http://127.0.0.1:{self.port}", slack)
        wait_until(lambda: self.status("/healthz") == 200, timeout=30)

    def status(self, path: str) -> int:
        try:
            return httpx.get(self.bot.url + path, timeout=1).status_code
        except httpx.HTTPError:
            return 0

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        _, logs = self.process.communicate(timeout=40)
        return logs


@pytest.fixture
def replicas(redis_server: RedisProcess, fake_slack: FakeSlack) -> Iterator[tuple[Replica, Replica]]:
    a, b = Replica(redis_server.url, fake_slack), Replica(redis_server.url, fake_slack)
    yield a, b
    a.stop()
    b.stop()


def answers(slack: FakeSlack, channel: str) -> list:
    return slack.of("chat.postMessage", channel=channel)


def test_a_thread_continues_on_another_replica_and_retries_are_answered_once(replicas, fake_slack) -> None:  # noqa: ANN001
    a, b = replicas
    channel, ts = unique_channel(), new_ts()
    event = {"type": "app_mention", "user": "U1", "text": ASK, "ts": ts, "channel": channel}
    assert a.bot.event(event, event_id="EvReplicaA").status_code == 200
    wait_until(lambda: len(answers(fake_slack, channel)) == 1)
    # Slack retries the same event, and this time the load balancer sends it to replica B
    retry = b.bot.event(
        event, event_id="EvReplicaA", headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    )
    assert retry.status_code == 200
    follow = {"type": "message", "channel_type": "channel", "user": "U1", "text": "what about 32k?",
              "ts": new_ts(), "thread_ts": ts, "channel": channel}  # fmt: skip
    assert b.bot.event(follow).status_code == 200
    wait_until(lambda: len(answers(fake_slack, channel)) == 2)
    time.sleep(0.5)
    first, second = answers(fake_slack, channel)
    assert len(answers(fake_slack, channel)) == 2
    assert second.payload["thread_ts"] == ts and "What changed" in str(second.payload["blocks"])
    assert "32k context" in second.payload["text"]


def test_redis_outage_while_requests_flow_loses_and_duplicates_nothing(replicas, fake_slack, redis_server) -> None:  # noqa: ANN001
    a, _ = replicas
    channels = [unique_channel() for _ in range(30)]
    ready_during_outage = []
    for i, channel in enumerate(channels):
        if i == 10:
            redis_server.stop()
        if i == 20:
            ready_during_outage.append(a.status("/readyz"))
            assert a.status("/healthz") == 200
            redis_server.start()
        event = {"type": "app_mention", "user": "U1", "text": ASK, "ts": new_ts(), "channel": channel}
        response = a.bot.event(event)
        assert response.status_code == 200
        if i % 3 == 0:  # Slack retries some of them
            a.bot.event(event, event_id=None, headers={"X-Slack-Retry-Num": "1"})
    wait_until(lambda: all(len(answers(fake_slack, c)) >= 1 for c in channels), timeout=30)
    time.sleep(0.5)
    assert [len(answers(fake_slack, c)) for c in channels] == [1] * len(channels)
    assert ready_during_outage == [503]
    wait_until(lambda: a.status("/readyz") == 200, timeout=10)
    metrics = httpx.get(a.bot.url + "/metrics").text
    assert "headroom_redis_errors_total{operation=" in metrics


def test_sigterm_lets_answers_in_flight_finish_and_counts_each_once(redis_server, fake_slack) -> None:  # noqa: ANN001
    replica = Replica(redis_server.url, fake_slack)
    channel = unique_channel()
    fake_slack.rate_limit_next = 1  # the answer will wait ~1 s for Retry-After
    event = {"type": "app_mention", "user": "U1", "text": ASK, "ts": new_ts(), "channel": channel}
    assert replica.bot.event(event, event_id="EvSigterm" + channel).status_code == 200
    # the same mention again: Slack's retry, and its twin `message` event -- still one answer in flight
    replica.bot.event(event, event_id="EvSigterm" + channel, headers={"X-Slack-Retry-Num": "1"})
    replica.bot.event({**event, "type": "message", "channel_type": "channel"}, event_id="EvSigtermTwin" + channel)
    time.sleep(0.3)
    logs = replica.stop()
    # uvicorn shuts down gracefully, then re-raises SIGTERM: exit status -15, not a crash
    assert replica.process.returncode in (0, -signal.SIGTERM), logs
    assert "Traceback" not in logs
    assert len(answers(fake_slack, channel)) == 1, logs
    assert "finishing 1 answer in flight" in logs
