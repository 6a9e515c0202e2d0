"""Fixtures: a real Redis server, a fake Slack Web API, and the real ASGI app over HTTP."""

from __future__ import annotations

import json
import re
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


def bot_settings(redis_url: str | None, slack_url: str, **overrides: object) -> Settings:
    values: dict = {
        "slack_bot_token": "xoxb-test-token", "slack_signing_secret": SECRET, "redis_url": redis_url,
        "slack_api_url": f"{slack_url}/api/", "redis_timeout_s": 0.3, "redis_retry_after_s": 0.5,
        "rate_limit_per_minute": 1000,
    }  # fmt: skip
    return Settings(**(values | overrides))


@pytest.fixture(autouse=True)
def slack_behaves_again(fake_slack: FakeSlack) -> Iterator[None]:
    """Failures a test injects into the fake Slack end with that test."""
    yield
    fake_slack.reset()


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

    def event(self, event: dict, event_id: str | None = None, team: str = "T1", **kwargs) -> httpx.Response:  # noqa: ANN003
        body = json.dumps({
            "token": "legacy", "team_id": team, "api_app_id": "A1", "type": "event_callback",
            "event_id": event_id or f"Ev{uuid.uuid4().hex[:10]}", "event_time": int(time.time()), "event": event,
            "authorizations": [{"team_id": team, "user_id": "UHEADROOM", "is_bot": True}],
        })  # fmt: skip
        return self.signed(body, "application/json", **kwargs)

    def command(self, text: str, channel: str, user: str = "U1", **fields: str) -> httpx.Response:
        body = self.command_body(text, channel, user, **fields)
        return self.signed(body, "application/x-www-form-urlencoded")

    def command_body(self, text: str, channel: str, user: str = "U1", **fields: str) -> str:
        """A slash command's form, as Slack sends it; each one with its own trigger id and response_url."""
        return urlencode({
            "token": "legacy", "team_id": "T1", "team_domain": "acme", "channel_id": channel, "channel_name": "general",
            "user_id": user, "user_name": "ada", "command": "/headroom", "text": text,
            "response_url": f"{self.slack.url}/webhook/{uuid.uuid4().hex}",  # type: ignore[attr-defined]
            "trigger_id": f"{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:8]}", **fields,
        })  # fmt: skip

    def click(
        self,
        value: str,
        channel: str,
        message_ts: str,
        thread_ts: str | None = None,
        action_id: str = "replan_1",
        user: str = "U1",
    ):  # noqa: ANN201
        return self.signed(self.click_body(value, channel, message_ts, thread_ts, action_id, user),
                           "application/x-www-form-urlencoded")  # fmt: skip

    def click_body(self, value: str, channel: str, message_ts: str, thread_ts: str | None = None,
                   action_id: str = "replan_1", user: str = "U1") -> str:  # fmt: skip
        container = {"type": "message", "channel_id": channel, "message_ts": message_ts, "is_ephemeral": False}
        if thread_ts:
            container["thread_ts"] = thread_ts
        payload = {
            "type": "block_actions", "team": {"id": "T1"}, "user": {"id": user}, "api_app_id": "A1",
            "container": container, "channel": {"id": channel}, "trigger_id": f"{uuid.uuid4().int % 10**12}.1",
            "response_url": f"{self.slack.url}/webhook/{uuid.uuid4().hex}",  # type: ignore[attr-defined]
            "actions": [{"type": "button", "action_id": action_id, "block_id": "b1", "value": value,
                         "action_ts": f"{time.time():.6f}"}],
        }  # fmt: skip
        return urlencode({"payload": json.dumps(payload)})


def unique_channel() -> str:
    return f"C{uuid.uuid4().hex[:9].upper()}"


def new_ts() -> str:
    return f"{time.time():.6f}"


def hook_id(body: str) -> str:
    """The response_url id in a command or click body (the fake Slack records calls by it)."""
    found = re.search(r"webhook%2F([0-9a-f]+)", body)
    assert found, body
    return found.group(1)
