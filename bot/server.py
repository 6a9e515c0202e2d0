"""The ASGI app: Bolt's async adapter on /slack/events, plus /healthz, /readyz and /metrics.

`build_components` is the one composition root: tests, `headroom serve`, Socket Mode and
the production factory (`uvicorn --factory bot.server:asgi`) all wire the bot through it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.answer import Answerer
from bot.blocks import SlackViews
from bot.catalog_cache import default_cache_dir
from bot.catalog_files import load_catalog
from bot.http_guard import Refused, SlackGate, refusal, to_bolt
from bot.hub import HubReader
from bot.metrics import Metrics
from bot.release import release_digest
from bot.render import Views
from bot.settings import Settings
from bot.slack_app import SlackBot, build_slack_app
from bot.slack_web import build_web_client
from bot.state import BotState
from bot.store import MemoryStore, Store, build_store
from engine.catalog.loader import Catalog
from engine.catalog.resolve import model_index

log = logging.getLogger("headroom.server")


class MissingSettings(RuntimeError):
    """The environment lacks what serving needs; the message says which variables."""


class RefusedCredentials(MissingSettings):
    """Slack refused a token: retrying cannot help, so `headroom serve` says which one and exits 2."""


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


@dataclass
class Components:
    catalog: Catalog
    store: Store
    slack_app: AsyncApp
    bot: SlackBot
    metrics: Metrics


def build_components(settings: Settings, store: Store | None = None) -> Components:
    """Wire the bot's parts: catalog, templates, store, state, answerer, Bolt app, metrics."""
    catalog = load_catalog()
    model_index(catalog)  # build the name index before the first request
    metrics = Metrics()
    store = store or build_store(
        settings.redis_url,
        settings.redis_timeout_s,
        settings.redis_retry_after_s,
        on_error=metrics.redis_error,
    )
    state = BotState(store, settings)
    release = release_digest()
    hub = HubReader(default_cache_dir(), timeout_s=settings.hub_timeout_s)  # issue 12: models the catalog lacks
    answerer = Answerer(catalog, SlackViews(Views()), state, f"{release}:{catalog.digest}", metrics, hub)
    slack_app, bot = build_slack_app(settings, state, answerer, metrics)
    log.info("answers keyed by release %s and catalog %s", release, catalog.digest)
    return Components(catalog, store, slack_app, bot, metrics)


def create_app(settings: Settings | None = None, store: Store | None = None) -> Starlette:
    settings = settings or Settings()
    require_slack_credentials(settings)
    parts = build_components(settings, store)
    gate = SlackGate(settings.secret("slack_signing_secret") or "")
    queue = parts.bot.queue

    async def events(request: Request) -> Response:
        queue.arrived()  # answers wait while requests keep coming: acknowledgements first
        try:
            body = await gate.admit(request)
        except Refused as refused:
            return refusal(parts.metrics, refused)
        if parts.bot.outside_bolt(body):
            return Response(status_code=200)
        return await to_bolt(parts.slack_app, body, request)

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> JSONResponse:
        if isinstance(parts.store, MemoryStore):
            return JSONResponse({"status": "ready", "store": "memory"})
        if await parts.store.ping():
            return JSONResponse({"status": "ready", "store": "redis"})
        return JSONResponse({"status": "degraded", "store": "redis", "redis": "unreachable"}, status_code=503)

    async def metrics(_: Request) -> Response:
        body, content_type = parts.metrics.render()
        return Response(body, media_type=content_type)

    @asynccontextmanager
    async def lifespan(_: Starlette):  # noqa: ANN202
        catalog = parts.catalog
        # one pooled HTTP session for the Web API instead of a new connection per call
        client = parts.slack_app.client
        client.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=client.timeout))
        await parts.bot.answerer.warm_up()
        # everything loaded so far lives as long as the process: keep the collector off it
        gc.collect()
        gc.freeze()
        # requests allocate many short-lived dicts; collect young objects less often (fewer pauses)
        gc.set_threshold(50_000, 50, 100)
        log.info("headroom ready: %d models, %d instance types", len(catalog.models), len(catalog.instances))
        schedule = None
        if settings.catalog_refresh_hours > 0:  # regions (issue 12): scheduled price refresh, off by default
            from bot.region_schedule import run_schedule

            answerer = parts.bot.answerer
            release = answerer.answers_key.split(":")[0]
            schedule = asyncio.create_task(run_schedule(answerer, parts.store, release, settings.catalog_refresh_hours))
        yield
        if schedule is not None:
            schedule.cancel()
        # uvicorn has stopped taking requests and waited for open ones; acked answers may still be queued
        pending = parts.bot.inflight.count  # each request once, however often Slack delivered it
        if pending:
            log.info("shutting down: finishing %d %s in flight", pending, "answer" if pending == 1 else "answers")
        if not await parts.bot.inflight.drain(settings.shutdown_grace_s):
            log.warning("shutdown grace ran out with %d answers in flight", parts.bot.inflight.count)
        await queue.close()
        await client.session.close()
        await parts.store.close()

    return Starlette(
        routes=[
            Route("/slack/events", events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


async def run_socket_mode(settings: Settings) -> None:
    """Socket Mode for local use: no public URL, events over a WebSocket (SLACK_APP_TOKEN)."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    require_slack_credentials(settings, socket_mode=True)
    await check_tokens(build_web_client(settings, Metrics()), settings)
    parts = build_components(settings)
    await AsyncSocketModeHandler(parts.slack_app, settings.secret("slack_app_token")).start_async()


#: Web API errors that mean the token itself is wrong: no retry can fix them
BAD_TOKEN = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
                       "not_allowed_token_type", "missing_scope"})  # fmt: skip


async def check_tokens(client: AsyncWebClient, settings: Settings) -> None:
    """Ask Slack once whether both tokens work before opening the socket (Slack's client would retry a
    refused app token forever, a traceback a time); a refusal is a `RefusedCredentials` naming the variable."""
    app_token = settings.secret("slack_app_token") or ""
    checks = (("SLACK_BOT_TOKEN", client.auth_test), ("SLACK_APP_TOKEN", lambda: client.apps_connections_open(app_token=app_token)))  # fmt: skip
    for variable, call in checks:
        try:
            await call()
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("could not reach Slack to check %s (%s); starting anyway", variable, type(exc).__name__)
        except SlackApiError as exc:
            error = str(exc.response.get("error"))
            if error in BAD_TOKEN:
                raise RefusedCredentials(f"Slack refused {variable} ({error}): check the token in the app's settings "
                                         "(Socket Mode needs an app-level token, xapp-…, with connections:write)") from None  # fmt: skip
            log.warning("Slack answered %s for %s; starting anyway", error[:64], variable)


def asgi() -> Starlette:
    """Factory for `uvicorn --factory bot.server:asgi`."""
    from bot.logs import configure_logging

    settings = Settings()
    configure_logging(settings.log_level)
    return create_app(settings)
