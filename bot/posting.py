"""Delivering a message so that it arrives: a ladder of layouts that always ends in plain text.

Slack refuses a message for its shape in several ways (`invalid_blocks` for a table a workspace
doesn't render yet, `invalid_attachments`, `invalid_arguments`, `msg_too_long`, and a 5xx
`internal_error` that outlives the client's retries), and a response_url answers a non-200 status.
Each refusal moves one rung down: the answer's charts and data table (issue 15; Slack rolls those blocks
out gradually) -> the answer's blocks with the charts as text -> the same answer without the table
(the fallback layout) -> the answer's words as plain text. Each refusal is counted and logged
at WARNING; only a refusal of the plain text itself reaches the caller.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.blocks import Message, clip, escape
from bot.metrics import Metrics

log = logging.getLogger("headroom.slack")

#: errors about the message itself: a simpler layout may go through
LAYOUT_ERRORS = frozenset({
    "invalid_blocks", "invalid_blocks_format", "invalid_attachments", "invalid_arguments", "msg_too_long",
    "msg_blocks_too_long", "too_many_attachments", "internal_error", "fatal_error", "service_unavailable",
    "request_timeout",
})  # fmt: skip
MAX_PLAIN = 3900  # Slack suggests ~4,000 characters for a readable message (it truncates at 40,000)


class ResponseUrlRefused(RuntimeError):
    """The response_url refused even the plain-text message."""


def plain_text(message: Message) -> str:
    """The message's words without blocks: header, sections and notes of the layout without a table."""
    parts: list[str] = []
    for block in message.fallback_blocks or message.blocks:
        kind = block.get("type")
        if kind == "header":
            parts.append(f"*{escape(block['text']['text'])}*")
        elif kind == "section" and isinstance(block.get("text"), dict):
            parts.append(block["text"]["text"])
        elif kind == "context":
            parts.append(" · ".join(e["text"] for e in block.get("elements", []) if isinstance(e.get("text"), str)))
    return clip("\n\n".join(p for p in parts if p) or message.text, MAX_PLAIN)


def layouts(message: Message) -> list[tuple[str, list[dict] | None, str]]:
    """The rungs for one message: (name, blocks or None, text)."""
    rungs: list[tuple[str, list[dict] | None, str]] = []
    if message.chart_blocks:  # issue 15: charts and a data_table first; refused, the table layout carries their words
        rungs.append(("charts", message.chart_blocks, message.text))
    if message.blocks:
        rungs.append(("blocks", message.blocks, message.text))
    if message.fallback_blocks and message.fallback_blocks != message.blocks:
        rungs.append(("fallback layout", message.fallback_blocks, message.text))
    rungs.append(("plain text", None, plain_text(message)))
    return rungs


def _layout_problem(exc: SlackApiError) -> bool:
    status = getattr(exc.response, "status_code", 200)
    return exc.response.get("error") in LAYOUT_ERRORS or status >= 500


#: issue 15: called (in the background) after an answer whose charts were refused was posted another way
ChartsRefused = Callable[[AsyncWebClient, str, str | None, Message], Coroutine[Any, Any, None]]


class Poster:
    """chat.postMessage and response_url, each with the ladder."""

    def __init__(self, metrics: Metrics, charts_refused: ChartsRefused | None = None) -> None:
        self.metrics = metrics
        self.charts_refused = charts_refused  # issue 15: e.g. upload the budget as a PNG into the thread
        self._background: set[asyncio.Task] = set()

    async def post(self, client: AsyncWebClient, channel: str, message: Message, thread_ts: str | None) -> str | None:
        kwargs: dict[str, Any] = {"channel": channel, "unfurl_links": False, "unfurl_media": False}
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        rungs = layouts(message)
        for step, (name, blocks, text) in enumerate(rungs):
            try:
                response = await client.chat_postMessage(text=text, blocks=blocks, **kwargs)
            except SlackApiError as exc:
                error = exc.response.get("error")
                self.metrics.slack_error("chat.postMessage", error)
                if step == len(rungs) - 1 or not _layout_problem(exc):
                    raise
                log.warning("chat.postMessage refused the %s (%s); sending the %s", name, str(error)[:64],
                            rungs[step + 1][0])  # fmt: skip
                continue
            if step and rungs[0][0] == "charts" and self.charts_refused:  # issue 15: the answer never waits for it
                self._later(self.charts_refused(client, channel, thread_ts or response.get("ts"), message))
            return response.get("ts")
        return None  # unreachable: the last rung returns or raises

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)  # held until done: the loop keeps only weak references to tasks
        task.add_done_callback(self._background.discard)

    async def respond(
        self, url: str, message: Message, session: aiohttp.ClientSession | None = None, **options: Any
    ) -> None:
        """Answer through a response_url (`options`: response_type, replace_original)."""
        client = AsyncWebhookClient(url=url, session=session, logger=logging.getLogger("headroom.slack_api"))
        rungs = layouts(message)
        for step, (name, blocks, text) in enumerate(rungs):
            try:
                result = await client.send(text=text, blocks=blocks, **options)
                status, detail = result.status_code, str(result.body)[:80]
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, detail = 0, type(exc).__name__
            if status == 200:
                return
            self.metrics.slack_error("response_url", "http_error")
            if step == len(rungs) - 1:
                raise ResponseUrlRefused(f"response_url answered HTTP {status} ({detail}) to the plain text")
            log.warning("response_url refused the %s (HTTP %s: %s); sending the %s", name, status, detail,
                        rungs[step + 1][0])  # fmt: skip
        return None
