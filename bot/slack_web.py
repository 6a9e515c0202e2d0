"""The Slack Web API client (retrying rate limits and server errors, counting retries) and in-flight tracking."""

from __future__ import annotations

import asyncio
import logging

from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.metrics import Metrics
from bot.settings import Settings


def _counted(handler_class: type, reason: str, metrics: Metrics, **kwargs):  # noqa: ANN003, ANN202
    """A slack_sdk retry handler that also counts its retries."""

    class Counted(handler_class):  # type: ignore[misc, valid-type]
        async def prepare_for_next_attempt_async(self, **kw):  # noqa: ANN003, ANN202
            metrics.slack_retries.labels(reason).inc()
            return await super().prepare_for_next_attempt_async(**kw)

    return Counted(**kwargs)


def build_web_client(settings: Settings, metrics: Metrics) -> AsyncWebClient:
    """Web API client pointed at SLACK_API_URL, retrying rate limits (Retry-After) and server errors."""
    # slack_sdk tests `logger.level <= DEBUG` on the logger object itself: a logger left at NOTSET
    # makes it format every request body (our ~10 kB answers) into a debug string nobody reads
    api_logger = logging.getLogger("headroom.slack_api")
    api_logger.setLevel(logging.INFO)
    return AsyncWebClient(
        token=settings.secret("slack_bot_token"),
        base_url=settings.slack_api_url,
        logger=api_logger,
        retry_handlers=[
            _counted(AsyncConnectionErrorRetryHandler, "connection", metrics, max_retry_count=2),
            _counted(
                AsyncRateLimitErrorRetryHandler, "rate_limited", metrics, max_retry_count=settings.slack_max_retries
            ),
            _counted(AsyncServerErrorRetryHandler, "server_error", metrics, max_retry_count=2),
        ],
    )


class InFlight:
    """Counts answers being worked on, so shutdown can wait for them (Slack won't resend an acked event)."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def __enter__(self) -> InFlight:
        self.count += 1
        self._idle.clear()
        return self

    def __exit__(self, *exc: object) -> None:
        self.count -= 1
        if self.count == 0:
            self._idle.set()

    async def drain(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True
