"""The Slack surfaces on Bolt (async): mentions, DMs, thread follow-ups, /headroom, buttons, App Home.

Listeners only translate: Slack payload -> text and thread -> Answerer -> chat.postMessage.
Every listener acknowledges and hands the answer to a background task (tracked, so shutdown
waits for it), so slow work never delays Slack's 3-second deadline.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from pydantic import ValidationError
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.answer import Answerer, Outcome
from bot.blocks import Message
from bot.logs import REQUEST_ID
from bot.metrics import Metrics
from bot.settings import Settings
from bot.slack_web import InFlight, build_web_client
from bot.state import BotState
from engine.errors import HeadroomError
from engine.request import Request
from engine.service import Memory

log = logging.getLogger("headroom.slack")

_PRIVATE = re.compile(r"(?:^|\s)(?:--private|just me|only me|private)(?=\s|$)", re.IGNORECASE)
_SKIP_SUBTYPES = {"bot_message", "message_changed", "message_deleted", "channel_join", "channel_leave"}
DM_ROOT = "dm"
Reply = Callable[[Message], Awaitable[object]]


class SlackBot:
    """Holds the answerer and state; `register` wires its handlers into a Bolt app."""

    def __init__(self, settings: Settings, state: BotState, answerer: Answerer, metrics: Metrics) -> None:
        self.settings = settings
        self.state = state
        self.answerer = answerer
        self.metrics = metrics
        self.inflight = InFlight()
        self._tasks: set[asyncio.Task] = set()
        self._slots = asyncio.Semaphore(settings.max_answers_in_flight)

    # --- posting ------------------------------------------------------------------------------

    async def post(self, client: AsyncWebClient, channel: str, message: Message, thread_ts: str | None) -> str | None:
        """chat.postMessage; if Slack refuses the table block, send the same answer without it."""
        kwargs: dict[str, Any] = {
            "channel": channel,
            "text": message.text,
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        try:
            response = await client.chat_postMessage(blocks=message.blocks, **kwargs)
        except SlackApiError as exc:
            self.metrics.slack_errors.labels("chat.postMessage", str(exc.response.get("error"))).inc()
            if exc.response.get("error") != "invalid_blocks" or not message.fallback_blocks:
                raise
            log.info("table block refused (%s); posting the fallback layout", exc.response.get("error"))
            response = await client.chat_postMessage(blocks=message.fallback_blocks, **kwargs)
        return response.get("ts")

    async def _answer(
        self, surface: str, client: AsyncWebClient, channel: str, user: str | None, text: str, thread_key: str,
        reply_thread: str | None, known_thread: Memory | None = None,
    ) -> None:  # fmt: skip
        if not await self.state.allow(user):
            self.metrics.requests.labels(surface, "rate_limited").inc()
            await self.post(client, channel, self.answerer.error(HeadroomError("too_fast")).message, reply_thread)
            return
        thread = known_thread or await self.state.thread(channel, thread_key)
        outcome = await self.answerer.respond(text, thread)
        await self.post(client, channel, outcome.message, reply_thread)
        await self._remember(channel, thread_key, outcome)
        self.metrics.requests.labels(surface, outcome.kind).inc()
        log.info("answered %s in %s", surface, channel, extra={"outcome": outcome.kind, "cached": outcome.cached})

    async def _first(self, surface: str, event_id: str | None, channel: str, ts: str) -> bool:
        REQUEST_ID.set(event_id or f"{channel}:{ts}")
        if await self.state.first_delivery(event_id, channel, ts):
            return True
        self.metrics.duplicates.inc()
        self.metrics.requests.labels(surface, "duplicate").inc()
        return False

    async def _remember(self, channel: str, thread_key: str, outcome: Outcome) -> None:
        if outcome.memory is not None:
            await self.state.save_thread(channel, thread_key, outcome.memory)

    # --- listeners ----------------------------------------------------------------------------

    async def on_mention(self, event: dict, body: dict, client: AsyncWebClient) -> None:
        channel, thread_ts = event.get("channel", ""), event.get("thread_ts") or event.get("ts")
        await self._spawn("mention", self._mention(event, body, client), self._poster(client, channel, thread_ts))

    def _poster(self, client: AsyncWebClient, channel: str, thread_ts: str | None) -> Reply:
        async def reply(message: Message) -> None:
            await self.post(client, channel, message, thread_ts)

        return reply

    async def _mention(self, event: dict, body: dict, client: AsyncWebClient) -> None:
        channel, ts = event["channel"], event["ts"]
        if not await self._first("mention", body.get("event_id"), channel, ts):
            return
        thread_ts = event.get("thread_ts") or ts
        await self._answer("mention", client, channel, event.get("user"), event.get("text", ""), thread_ts, thread_ts)

    async def on_message(self, event: dict, body: dict, client: AsyncWebClient, context: dict) -> None:
        # a failure is answered only where headroom would have answered: DMs and its own threads (known
        # once the message is accepted; _message sets `accepted`), never arbitrary channel chatter
        accepted: list[Reply] = []
        await self._spawn("message", self._message(event, body, client, context.get("bot_user_id"), accepted), accepted)

    async def _message(
        self, event: dict, body: dict, client: AsyncWebClient, bot_user: str | None, accepted: list[Reply]
    ) -> None:
        if event.get("subtype") in _SKIP_SUBTYPES or event.get("bot_id"):
            return
        channel, ts, text = event.get("channel"), event.get("ts"), event.get("text", "")
        if not channel or not ts:
            return
        is_dm = event.get("channel_type") == "im"
        if not is_dm and bot_user and f"<@{bot_user}>" in text:
            return  # the app_mention listener answers this one
        thread_ts = event.get("thread_ts")
        if is_dm:
            thread_key, reply_thread, thread = thread_ts or DM_ROOT, thread_ts, None
        else:
            if not thread_ts:
                return  # top-level channel chatter is not for us
            thread = await self.state.thread(channel, thread_ts)
            if thread is None:
                return  # a thread headroom has not answered: stay silent
            thread_key, reply_thread = thread_ts, thread_ts
        surface = "dm" if is_dm else "thread"
        if not await self._first(surface, body.get("event_id"), channel, ts):
            return
        accepted.append(self._poster(client, channel, reply_thread))
        await self._answer(surface, client, channel, event.get("user"), text, thread_key, reply_thread, thread)

    async def _spawn(
        self, surface: str, work: Coroutine[Any, Any, None], reply: Reply | list[Reply] | None
    ) -> None:
        """Run the answer after the acknowledgement has gone back; shutdown waits for it.

        At most `max_answers_in_flight` answers run at once per process: past that, the
        acknowledgement waits briefly (`backpressure_wait_s`, 50 ms) for a slot, so a burst
        slows intake a little instead of piling up answers that would all arrive late.
        Whatever goes wrong inside, the user still gets a reply (see `_guarded`).
        """
        try:
            await asyncio.wait_for(self._slots.acquire(), self.settings.backpressure_wait_s)
            slotted = True
        except TimeoutError:
            slotted = False  # never hold Slack's acknowledgement hostage: run over the limit
        self.inflight.__enter__()
        task = asyncio.create_task(self._guarded(surface, work, reply))
        self._tasks.add(task)

        def finished(done: asyncio.Task) -> None:
            self._tasks.discard(done)
            self.inflight.__exit__()
            if slotted:
                self._slots.release()

        task.add_done_callback(finished)

    async def _guarded(self, surface: str, work: Coroutine[Any, Any, None], reply: Reply | list[Reply] | None) -> None:
        """The bot's error boundary: an unexpected failure is logged with its traceback and a reference id,
        and the user gets a short reply naming that reference instead of silence."""
        try:
            await work
        except Exception:  # noqa: BLE001 - the boundary: every failure is logged and answered
            reference = REQUEST_ID.get() or uuid.uuid4().hex[:12]
            REQUEST_ID.set(reference)
            self.metrics.requests.labels(surface, "failed").inc()
            log.exception("answer failed (reference %s)", reference, extra={"reference": reference})
            replies = reply if isinstance(reply, list) else [reply] if reply else []
            for send in replies:
                try:
                    await send(self.answerer.error(HeadroomError("internal", reference=reference)).message)
                except Exception:  # noqa: BLE001 - Slack itself may be what failed
                    log.exception("could not tell the user about failure %s", reference)

    async def on_command(self, ack, command: dict, respond, client: AsyncWebClient) -> None:  # noqa: ANN001
        await ack()
        REQUEST_ID.set(command.get("trigger_id"))

        async def reply(message: Message) -> None:
            await respond(response_type="ephemeral", text=message.text, blocks=message.blocks)

        await self._spawn("command", self._command(command, respond, client), reply)

    async def _command(self, command: dict, respond, client: AsyncWebClient) -> None:  # noqa: ANN001
        text = command.get("text", "")
        private = bool(_PRIVATE.search(text))
        text = _PRIVATE.sub(" ", text).strip()
        channel, user = command.get("channel_id", ""), command.get("user_id")
        if not await self.state.allow(user):
            self.metrics.requests.labels("command", "rate_limited").inc()
            await respond(response_type="ephemeral", text=self.answerer.error(HeadroomError("too_fast")).message.text)
            return
        outcome = await self.answerer.respond(text, None)
        self.metrics.requests.labels("command", outcome.kind).inc()
        message = outcome.message
        if private or outcome.kind != "answer":
            await respond(response_type="ephemeral", text=message.text, blocks=message.blocks)
            return
        try:
            ts = await self.post(client, channel, message, None)
        except SlackApiError as exc:
            if exc.response.get("error") not in {"not_in_channel", "channel_not_found"}:
                raise
            await respond(response_type="in_channel", text=message.text, blocks=message.blocks)
            return
        if ts:
            await self._remember(channel, ts, outcome)

    async def on_button(self, ack, body: dict, action: dict, client: AsyncWebClient, respond) -> None:  # noqa: ANN001
        await ack()
        REQUEST_ID.set(action.get("action_ts"))

        async def reply(message: Message) -> None:
            await respond(response_type="ephemeral", replace_original=False, text=message.text, blocks=message.blocks)

        await self._spawn("button", self._button(body, action, client, respond), reply)

    async def _button(self, body: dict, action: dict, client: AsyncWebClient, respond) -> None:  # noqa: ANN001
        try:
            value = json.loads(action.get("value", ""))
            request = Request.model_validate(value["r"])
        except (ValueError, KeyError, TypeError, ValidationError):
            expired = self.answerer.error(HeadroomError("button_expired")).message
            await respond(response_type="ephemeral", replace_original=False, text=expired.text)
            return
        container = body.get("container", {})
        channel = container.get("channel_id") or body.get("channel", {}).get("id")
        thread_ts = container.get("thread_ts") or container.get("message_ts")
        previous = await self.state.thread(channel, thread_ts) if channel and thread_ts else None
        outcome = await self.answerer.replan(request, previous, more=bool(value.get("more")))
        self.metrics.requests.labels("button", outcome.kind).inc()
        if container.get("is_ephemeral") or not channel:
            await respond(
                response_type="ephemeral",
                replace_original=False,
                text=outcome.message.text,
                blocks=outcome.message.blocks,
            )
            return
        await self.post(client, channel, outcome.message, thread_ts)
        await self._remember(channel, thread_ts, outcome)

    async def on_home(self, event: dict, client: AsyncWebClient) -> None:
        await self._spawn("home", self._home(event, client), None)

    async def _home(self, event: dict, client: AsyncWebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        await client.views_publish(user_id=event["user"], view=self.answerer.slack.home(self.answerer.catalog))
        self.metrics.requests.labels("home", "answer").inc()

    def register(self, app: AsyncApp) -> AsyncApp:
        app.event("app_mention")(self.on_mention)
        app.event("message")(self.on_message)
        app.event("app_home_opened")(self.on_home)
        app.command("/headroom")(self.on_command)
        app.action(re.compile(r"^replan_"))(self.on_button)

        @app.error
        async def on_error(error: Exception, body: dict) -> None:
            kind = body.get("event", {}).get("type") or body.get("type") or body.get("command")
            self.metrics.requests.labels(str(kind), "failed").inc()
            log.error("listener failed for %s: %s", kind, error, exc_info=error)

        return app


def build_slack_app(
    settings: Settings, state: BotState, answerer: Answerer, metrics: Metrics
) -> tuple[AsyncApp, SlackBot]:
    app = AsyncApp(
        client=build_web_client(settings, metrics),
        signing_secret=settings.secret("slack_signing_secret"),
        # every listener acks and hands its work to a background task, so Bolt can answer the
        # HTTP request as soon as the listener returns (no 10 ms ack polling)
        process_before_response=True,
    )
    bot = SlackBot(settings, state, answerer, metrics)
    bot.register(app)
    return app, bot
