"""`headroom serve` as a user starts it: a real process with only the two Slack variables set."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx

from tests.integration.servers import free_port, wait_until


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
