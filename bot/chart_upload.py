"""Issue 15: where Slack refused an answer's charts, the budget as a PNG in the thread, after the words.

The posting ladder (bot/posting.py) calls this in the background once the answer has gone out another
way, so the words never wait for a picture. The PNG is drawn off the event loop from the chart model
the message carries (`Message.picture`, the same model the CLI draws). A picture is extra: a refusal
(no `files:write` scope, a network failure) is logged and counted, never raised.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks import Message, clip
from bot.chart_png import budget_figure, png
from bot.metrics import Metrics
from bot.render import Views
from engine.charts import BudgetChart

log = logging.getLogger("headroom.slack")
MAX_ALT_TEXT = 1000
FILENAME = "budget.png"


class PictureUpload:
    def __init__(self, views: Views, metrics: Metrics) -> None:
        self.views = views
        self.metrics = metrics

    def render(self, chart: BudgetChart) -> bytes:
        return png(budget_figure(chart, self.views))

    async def __call__(self, client: AsyncWebClient, channel: str, thread_ts: str | None, message: Message) -> None:
        if not message.picture:
            return
        chart = BudgetChart.from_json(message.picture)
        words: Any = self.views.macros("charts.j2")
        try:
            data = await asyncio.to_thread(self.render, chart)
            await client.files_upload_v2(
                channel=channel, thread_ts=thread_ts, content=data, filename=FILENAME, title=str(words.budget_title),
                alt_txt=clip(str(words.alt_text(chart)), MAX_ALT_TEXT),
            )  # fmt: skip
        except SlackApiError as exc:
            self.metrics.slack_error("files.upload", exc.response.get("error"))
            log.warning("the budget picture was not uploaded (%s)", str(exc.response.get("error"))[:64])
        except Exception as exc:  # noqa: BLE001 - a picture is extra: whatever breaks it is logged, never raised
            log.warning("the budget picture was not uploaded (%s)", type(exc).__name__)
