"""`headroom serve` as a user starts it: a real process with only the Slack variables set, right or wrong."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from tests.integration.servers import FakeSlack, free_port, wait_until


def test_serve_starts_with_only_the_slack_credentials_and_an_in_memory_store() -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REDIS_"))}
    env |= {"SLACK_BOT_TOKEN": "xoxb-only-this", "SLACK_SIGNING_SECRET": "and-this"}
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--port", str(port), "--host", "127.0.0.1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_until(lambda: _get(f"http://127.0.0.1:{port}/healthz") == 200, timeout=20)
        assert _get(f"http://127.0.0.1:{port}/readyz") == 200
    finally:
        process.terminate()
        _, logs = process.communicate(timeout=20)
    assert "in-memory store" in logs
    assert "xoxb-only-this" not in logs and "and-this" not in logs


def test_serve_without_credentials_says_what_to_set() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REDIS_"))}
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve"], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN" in result.stderr and "Traceback" not in result.stderr


def _get(url: str) -> int:
    try:
        return httpx.get(url, timeout=1).status_code
    except httpx.HTTPError:
        return 0


@pytest.mark.parametrize(("refusing", "variable"), [("apps.connections.open", "SLACK_APP_TOKEN"),
                                                    ("auth.test", "SLACK_BOT_TOKEN")])  # fmt: skip
def test_socket_mode_with_a_token_slack_refuses_says_which_and_exits_2(
    fake_slack: FakeSlack, refusing: str, variable: str
) -> None:
    fake_slack.fail(refusing, "invalid_auth")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REDIS_"))}
    env |= {"SLACK_BOT_TOKEN": "xoxb-refused-bot-token", "SLACK_APP_TOKEN": "xapp-1-refused-app-token",
            "SLACK_API_URL": f"{fake_slack.url}/api/"}  # type: ignore[attr-defined]  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve", "--socket"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"Slack refused {variable} (invalid_auth)" in result.stderr
    assert "Traceback" not in result.stderr
    assert "refused-bot-token" not in result.stderr and "refused-app-token" not in result.stderr
    assert fake_slack.of(f"refused:{refusing}")
