"""Attached snippets are read only from Slack's own file host: the bot token never goes anywhere else."""

from __future__ import annotations

import asyncio

from bot.slack_files import attached_text, text_files


def test_only_text_files_are_read() -> None:
    event = {"files": [
        {"mode": "snippet", "url_private": "https://files.slack.com/a"},
        {"mimetype": "image/png", "filetype": "png", "url_private": "https://files.slack.com/b"},
        {"mimetype": "text/plain", "url_private": "https://files.slack.com/c"},
        {"mode": "snippet"},
    ]}  # fmt: skip
    assert [f["url_private"] for f in text_files(event)] == ["https://files.slack.com/a", "https://files.slack.com/c"]


def test_a_file_on_another_host_is_never_fetched_with_the_token() -> None:
    event = {"files": [{"mode": "snippet", "url_private": "http://127.0.0.1:9/steal"}]}
    # port 9 (discard) would refuse or hang if contacted; the host check stops it before any connection
    assert asyncio.run(attached_text(event, None, "xoxb-secret", "https://slack.com/api/")) == ""
