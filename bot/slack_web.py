"""The Slack Web API client: retrying rate limits, server errors, dropped connections and timeouts, counting retries."""

from __future__ import annotations

import logging
from urllib.parse import urlparse

from aiohttp import ClientOSError, ServerConnectionError, ServerDisconnectedError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.metrics import Metrics
from bot.settings import Settings

log = logging.getLogger("headroom.slack")


def _counted(handler_class: type, reason: str, metrics: Metrics, timeout_s: float = 0.0, **kwargs):  # noqa: ANN003, ANN202
    """A slack_sdk retry handler that also counts its retries."""

    class Counted(handler_class):  # type: ignore[misc, valid-type]
        async def prepare_for_next_attempt_async(self, **kw):  # noqa: ANN003, ANN202
            metrics.retry(reason)
            if reason == "timeout":  # a slow Slack is worth one clear line: which call, how long, what next
                request = kw.get("request")
                method = urlparse(getattr(request, "url", "")).path.rsplit("/", 1)[-1] or "a call"
                log.warning("Slack did not answer %s within %.0f s; trying once more", method, timeout_s)
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
        timeout=int(settings.slack_timeout_s) or 1,
        logger=api_logger,
        retry_handlers=[
            # a call slower than the client's timeout: once more (Slack may be having a slow moment);
            # first, because aiohttp's timeouts are also connection errors
            _counted(
                AsyncConnectionErrorRetryHandler,
                "timeout",
                metrics,
                timeout_s=settings.slack_timeout_s,
                max_retry_count=1,
                error_types=[TimeoutError],
            ),
            _counted(
                AsyncConnectionErrorRetryHandler,
                "connection",
                metrics,
                max_retry_count=2,
                error_types=[ServerConnectionError, ServerDisconnectedError, ClientOSError],
            ),
            _counted(
                AsyncRateLimitErrorRetryHandler, "rate_limited", metrics, max_retry_count=settings.slack_max_retries
            ),
            _counted(AsyncServerErrorRetryHandler, "server_error", metrics, max_retry_count=2),
        ],
    )
