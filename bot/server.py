"""The ASGI app: Bolt's async adapter on /slack/events, plus /healthz and /readyz. One composition root."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.answer import Answerer
from bot.render import build_environment
from bot.settings import Settings
from bot.slack_app import build_slack_app
from bot.state import BotState
from bot.store import MemoryStore, Store, build_store
from engine.catalog.loader import load_catalog
from engine.catalog.resolve import model_index

log = logging.getLogger("headroom.server")


class MissingSettings(RuntimeError):
    """The environment lacks what serving needs; the message says which variables."""


def require_slack_credentials(settings: Settings, socket_mode: bool = False) -> None:
    missing = [name.upper() for name in ("slack_bot_token", "slack_signing_secret") if not settings.secret(name)]
    if socket_mode and not settings.secret("slack_app_token"):
        missing.append("SLACK_APP_TOKEN")
    if socket_mode and "SLACK_SIGNING_SECRET" in missing:
        missing.remove("SLACK_SIGNING_SECRET")  # Socket Mode requests are not signed
    if missing:
        raise MissingSettings(
            f"set {', '.join(missing)} to serve Slack (see 'Add headroom to Slack' in the README); "
            "`headroom plan` and `headroom chat` need nothing"
        )


def build_components(settings: Settings, store: Store | None = None):  # noqa: ANN201 - a tuple of parts
    """Wire the bot's parts: catalog, templates, store, state, answerer, Bolt app."""
    catalog = load_catalog()
    model_index(catalog)  # build the name index before the first request
    store = store or build_store(settings.redis_url, settings.redis_timeout_s, settings.redis_retry_after_s)
    state = BotState(store, settings)
    answerer = Answerer(catalog, build_environment(), state)
    return store, build_slack_app(settings, state, answerer)


def create_app(settings: Settings | None = None, store: Store | None = None) -> Starlette:
    settings = settings or Settings()
    require_slack_credentials(settings)
    store, slack_app = build_components(settings, store)
    handler = AsyncSlackRequestHandler(slack_app)

    async def events(request: Request):  # noqa: ANN202
        return await handler.handle(request)

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> JSONResponse:
        if isinstance(store, MemoryStore):
            return JSONResponse({"status": "ready", "store": "memory"})
        if await store.ping():
            return JSONResponse({"status": "ready", "store": "redis"})
        return JSONResponse({"status": "degraded", "store": "redis", "redis": "unreachable"}, status_code=503)

    @asynccontextmanager
    async def lifespan(_: Starlette):  # noqa: ANN202
        log.info(
            "headroom ready: %d models, %d instance types", len(load_catalog().models), len(load_catalog().instances)
        )
        yield
        await store.close()

    return Starlette(
        routes=[
            Route("/slack/events", events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


async def run_socket_mode(settings: Settings) -> None:
    """Socket Mode for local use: no public URL, events over a WebSocket (SLACK_APP_TOKEN)."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    require_slack_credentials(settings, socket_mode=True)
    _, slack_app = build_components(settings)
    await AsyncSocketModeHandler(slack_app, settings.secret("slack_app_token")).start_async()


def asgi() -> Starlette:
    """Factory for `uvicorn --factory bot.server:asgi` (production command)."""
    from bot.logs import configure_logging

    settings = Settings()
    configure_logging(settings.log_level)
    return create_app(settings)
