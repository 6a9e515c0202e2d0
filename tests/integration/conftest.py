"""Fixtures: a real Redis server, a fake Slack Web API, and the real ASGI app over HTTP."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier

from bot.server import create_app
from bot.settings import Settings
from tests.integration.servers import FakeSlack, RedisProcess, ServerThread

SECRET = "test-signing-secret"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisProcess]:
    """Fails (never skips) when the project's redis-server cannot start."""
    server = RedisProcess()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    with ServerThread(fake.app()) as thread:
        fake.url = thread.url  # type: ignore[attr-defined]
        yield fake


def bot_settings(redis_url: str | None, slack_url: str) -> Settings:
    return Settings(
        slack_bot_token="xoxb-test-token",
        slack_signing_secret=SECRET,
        redis_url=redis_url,
        slack_api_url=f"{slack_url}/api/",
        redis_timeout_s=0.3,
        redis_retry_after_s=0.5,
        rate_limit_per_minute=1000,
    )


@pytest.fixture(scope="module")
def bot(redis_server: RedisProcess, fake_slack: FakeSlack) -> Iterator[Bot]:
    app = create_app(bot_settings(redis_server.url, fake_slack.url))  # type: ignore[attr-defined]
    with ServerThread(app) as thread:
        yield Bot(thread.url, fake_slack)


class Bot:
    """Sends signed Slack requests to the running app."""

    def __init__(self, url: str, slack: FakeSlack) -> None:
        self.url = url
        self.slack = slack
        self.http = httpx.Client(base_url=url, timeout=10)

    def signed(self, body: str, content_type: str, timestamp: int | None = None, secret: str = SECRET,
               headers: dict | None = None) -> httpx.Response:  # fmt: skip
        ts = str(timestamp if timestamp is not None else int(time.time()))
        signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
        sent = {"content-type": content_type, "x-slack-request-timestamp": ts, "x-slack-signature": signature}
        return self.http.post("/slack/events", content=body, headers={**sent, **(headers or {})})

    def event(self, event: dict, event_id: str | None = None, **kwargs) -> httpx.Response:  # noqa: ANN003
        body = json.dumps({
            "token": "legacy", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
            "event_id": event_id or f"Ev{uuid.uuid4().hex[:10]}", "event_time": int(time.time()), "event": event,
            "authorizations": [{"team_id": "T1", "user_id": "UHEADROOM", "is_bot": True}],
        })  # fmt: skip
        return self.signed(body, "application/json", **kwargs)

    def command(self, text: str, channel: str, user: str = "U1") -> httpx.Response:
        body = urlencode({
            "token": "legacy", "team_id": "T1", "channel_id": channel, "user_id": user, "command": "/headroom",
            "text": text, "response_url": f"{self.slack.url}/webhook/{uuid.uuid4().hex}",  # type: ignore[attr-defined]
            "trigger_id": "1.2.3",
        })  # fmt: skip
        return self.signed(body, "application/x-www-form-urlencoded")

    def click(
        self, value: str, channel: str, message_ts: str, thread_ts: str | None = None, action_id: str = "replan_1"
    ):  # noqa: ANN201
        container = {"type": "message", "channel_id": channel, "message_ts": message_ts, "is_ephemeral": False}
        if thread_ts:
            container["thread_ts"] = thread_ts
        payload = {
            "type": "block_actions", "team": {"id": "T1"}, "user": {"id": "U1"}, "api_app_id": "A1",
            "container": container, "channel": {"id": channel}, "trigger_id": "1.2.3",
            "response_url": f"{self.slack.url}/webhook/{uuid.uuid4().hex}",  # type: ignore[attr-defined]
            "actions": [{"type": "button", "action_id": action_id, "block_id": "b1", "value": value,
                         "action_ts": str(time.time())}],
        }  # fmt: skip
        return self.signed(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")


def unique_channel() -> str:
    return f"C{uuid.uuid4().hex[:9].upper()}"


def new_ts() -> str:
    return f"{time.time():.6f}"
