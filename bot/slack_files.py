"""Text snippets and files attached to a message, fetched for reading: pastes often arrive as a snippet.

Only text files, only from Slack's own file host (or the configured API host, for tests), with the bot
token, size-capped, and read after the acknowledgement (inside the answer job). Nothing fetched is logged.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlparse

import aiohttp

log = logging.getLogger("headroom.slack_files")

#: a snippet or file larger than this is read only up to it (the paste reader looks at both ends anyway)
MAX_FILE_BYTES = 1_048_576
MAX_FILES = 3
_TEXT_TYPES = frozenset({"text", "log", "shell", "bash", "python", "yaml", "json", "javascript", "markdown", "csv"})
SLACK_FILE_HOSTS = frozenset({"files.slack.com"})


def text_files(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The attached files worth reading: snippets and text files, a few at most."""
    files = event.get("files")
    if not isinstance(files, list):
        return []
    found = []
    for item in files[:MAX_FILES]:
        if not isinstance(item, dict) or not isinstance(item.get("url_private"), str):
            continue
        mimetype = str(item.get("mimetype") or "")
        if item.get("mode") == "snippet" or mimetype.startswith("text/") or item.get("filetype") in _TEXT_TYPES:
            found.append(item)
    return found


async def attached_text(
    event: dict[str, Any], session: aiohttp.ClientSession | None, token: str | None, api_url: str
) -> str:
    """The text of the message's snippets and text files, joined; "" when there are none or none can be read."""
    hosts = SLACK_FILE_HOSTS | {urlparse(api_url).hostname or ""}
    pieces = []
    for item in text_files(event):
        url = item["url_private"]
        if urlparse(url).hostname not in hosts or not token:
            continue  # never send the bot token anywhere but Slack
        try:
            pieces.append(await _fetch(session, url, token))
        except (aiohttp.ClientError, TimeoutError, UnicodeError) as exc:
            log.warning("could not read an attached file (%s)", type(exc).__name__)
    return "\n".join(p for p in pieces if p)


async def _fetch(session: aiohttp.ClientSession | None, url: str, token: str) -> str:
    owned = session is None or session.closed
    client = aiohttp.ClientSession() if owned else session
    assert client is not None
    try:
        headers = {"Authorization": f"Bearer {token}"}
        async with client.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=10)) as response:
            if response.status != 200:
                return ""
            body = await response.content.read(MAX_FILE_BYTES)
        return body.decode("utf-8", errors="replace")
    finally:
        if owned:
            await client.close()
