"""The Slack surfaces on Bolt (async): mentions, DMs, thread follow-ups, App Home, workspace events.

Listeners only translate and acknowledge: they drop what is not for headroom (hidden message
subtypes, bots, channel chatter) on the spot, and queue the rest as a `Job` (bot/answer_queue.py),
so an acknowledgement never waits for answer work. Each job runs inside `_guarded`, the bot's
error boundary: the user gets exactly one reply, whatever fails. Slash commands and buttons
live in bot/slack_interactive.py.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.answer import Answerer, Outcome
from bot.answer_queue import AnswerQueue, Job, ReplyTarget
from bot.blocks import Message
from bot.chart_upload import PictureUpload  # issue 15
from bot.logs import REQUEST_ID
from bot.metrics import Metrics
from bot.posting import Poster, layouts
from bot.settings import Settings
from bot.slack_files import attached_text, text_files
from bot.slack_web import build_web_client
from bot.state import BotState
from engine.errors import HeadroomError
from engine.service import Intent, Memory

log = logging.getLogger("headroom.slack")
#: what a call to Slack raises when it fails (refused, 5xx past the retries, connection lost, timed out)
SLACK_FAILURES = (SlackApiError, aiohttp.ClientError, TimeoutError)

#: message subtypes a person typed (a thread reply also sent to the channel, a file with a comment);
#: everything else -- edits, deletions, joins, `message_replied`, `tombstone`, `assistant_app_thread`,
#: `ekm_access_denied`, bots -- is not a question and gets nothing
_ANSWERED_SUBTYPES = frozenset({None, "thread_broadcast", "file_share"})
_USER_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")
_SLACK_ID = re.compile(r"[^A-Za-z0-9]")
DM_ROOT = "dm"
#: workspace events that end headroom's welcome there: its thread memory is forgotten
FAREWELLS = ("app_uninstalled", "tokens_revoked")
EVENTS = ("app_mention", "message", "app_home_opened", *FAREWELLS)


def text_of(value: object) -> str:
    """A payload field that should be text; anything else reads as empty."""
    return value if isinstance(value, str) else ""


def team_of(body: dict) -> str | None:
    team = body.get("team")
    return text_of(body.get("team_id")) or text_of(team.get("id") if isinstance(team, dict) else team) or None


def safe_id(value: str | None) -> str:
    """A Slack id for a log line: letters and digits only."""
    return _SLACK_ID.sub("", value or "")[:32] or "-"


def addressed_in_thread(text: str, bot_user: str | None) -> bool:
    """A thread reply is said to headroom when it asks something ("?") and names no one else."""
    others = [user for user in _USER_MENTION.findall(text) if user != bot_user]
    return "?" in text and not others


class SlackBot:
    """Holds the answerer, state, queue and Web API client; `register` wires its handlers into a Bolt app.

    Answers use the app's one client (pooled connections), not the per-request copy Bolt hands to
    listeners: a queued job keeps only the few fields it needs."""

    def __init__(
        self, settings: Settings, state: BotState, answerer: Answerer, metrics: Metrics, client: AsyncWebClient
    ) -> None:
        self.settings = settings
        self.state = state
        self.answerer = answerer
        self.metrics = metrics
        self.client = client
        self.poster = Poster(metrics, PictureUpload(answerer.slack.views, metrics))  # issue 15
        self.queue = AnswerQueue(
            self._guarded, settings.max_answers_in_flight, settings.answer_quiet_s, settings.answer_max_defer_s
        )
        self.inflight = self.queue.inflight

    # --- jobs, replies and the error boundary -----------------------------------------------------

    def enqueue(self, surface: str, key: str, request_id: str | None, work: Callable[[Job], Awaitable[None]],
                replies: list[ReplyTarget] | None = None) -> None:  # fmt: skip
        self.queue.submit(Job(surface, key, request_id or key, work, replies if replies is not None else []))

    async def send(self, job: Job | None, target: ReplyTarget, message: Message) -> str | None:
        """Post (with the posting ladder) to a channel or a response_url; the job counts as answered."""
        if target.response_url:
            await self.poster.respond(target.response_url, message, session=getattr(self.client, "session", None),
                                      response_type=target.response_type, replace_original=target.replace_original)  # fmt: skip
            ts = None
        else:
            ts = await self.poster.post(self.client, target.channel, message, target.thread_ts)
        if job is not None:
            job.replied = True
        return ts

    async def _guarded(self, job: Job) -> None:
        """The bot's error boundary: an unexpected failure is logged with its traceback and a reference id,
        and a user who has not had a reply yet gets one naming that reference -- never a second one."""
        REQUEST_ID.set(job.request_id)
        try:
            await job.work(job)
        except Exception as exc:  # noqa: BLE001 - the boundary: every failure is logged and answered
            reference = job.request_id or uuid.uuid4().hex[:12]
            self.metrics.count(job.surface, "failed")
            log.error("answer failed (reference %s): %s", reference, describe(exc), exc_info=exc,
                      extra={"reference": reference})  # fmt: skip
            if job.replied:
                return
            for target in job.replies:
                try:
                    await self.send(
                        None, target, self.answerer.error(HeadroomError("internal", reference=reference)).message
                    )
                except Exception as second:  # noqa: BLE001 - Slack itself may be what failed
                    log.warning("could not tell the user about failure %s: %s", reference, describe(second))
                else:
                    return

    async def limited(self, job: Job, surface: str, user: str | None, target: ReplyTarget) -> bool:
        """Past the per-user limit: one 'asking faster' notice per minute, then silence."""
        admission = await self.state.admit(user)
        if admission == "ok":
            return False
        self.metrics.count(surface, "rate_limited")
        if admission == "notice":
            await self.send(job, target, self.answerer.error(HeadroomError("too_fast")).message)
        return True

    async def first(self, surface: str, event_id: str | None, channel: str | None, ts: str | None) -> bool:
        if await self.state.first_delivery(event_id, channel, ts):
            return True
        self.metrics.duplicates.inc()
        self.metrics.count(surface, "duplicate")
        return False

    async def remember(self, team: str | None, channel: str, thread_key: str, outcome: Outcome) -> None:
        if outcome.memory is not None:
            await self.state.save_thread(team, channel, thread_key, outcome.memory)

    # --- mentions, DMs and threads ----------------------------------------------------------------

    async def on_event(self, event: dict, body: dict, context: dict) -> None:
        kind = event.get("type")
        if kind == "app_mention":
            await self.on_mention(event, body)
        elif kind == "message":
            await self.on_message(event, body, context)
        elif kind == "app_home_opened":
            await self.on_home(event, body)
        elif kind in FAREWELLS:
            await self.on_farewell(event, body)

    async def on_mention(self, event: dict, body: dict) -> None:
        channel, ts = text_of(event.get("channel")), text_of(event.get("ts"))
        if not channel or not ts:
            return
        event_id, team = text_of(body.get("event_id")) or None, team_of(body)
        thread_ts = text_of(event.get("thread_ts")) or ts

        async def work(job: Job) -> None:
            if await self.first("mention", event_id, channel, ts):
                await self._answer(job, "mention", team, event, thread_ts, ReplyTarget(channel, thread_ts))

        key = f"{channel}:{ts}"  # a mention is always headroom's: a failure is answered in its thread
        self.enqueue("mention", key, event_id or key, work, [ReplyTarget(channel, thread_ts)])

    async def on_message(self, event: dict, body: dict, context: dict) -> None:
        if event.get("bot_id") or event.get("subtype") not in _ANSWERED_SUBTYPES:
            return
        channel, ts, text = text_of(event.get("channel")), text_of(event.get("ts")), text_of(event.get("text"))
        if not channel or not ts or not (text.strip() or text_files(event)):
            return  # an empty message, a file that is not text: nothing to answer
        bot_user = context.get("bot_user_id")
        is_dm = event.get("channel_type") == "im"
        if not is_dm and bot_user and f"<@{bot_user}>" in text:
            return  # the app_mention listener answers this one
        thread_ts = text_of(event.get("thread_ts")) or None
        if not is_dm and not thread_ts:
            return  # top-level channel chatter is not for us
        surface, event_id, team = "dm" if is_dm else "thread", text_of(body.get("event_id")) or None, team_of(body)

        async def work(job: Job) -> None:
            thread = None
            if not is_dm:
                thread = await self.state.thread(team, channel, thread_ts or "")
                if thread is None:
                    return  # a thread headroom has not answered: stay silent
            if not await self.first(surface, event_id, channel, ts):
                return
            target = ReplyTarget(channel, thread_ts)
            job.replies.append(target)  # a failure is answered only where headroom answers: DMs and its threads
            addressed = is_dm or addressed_in_thread(text, bot_user)
            await self._answer(job, surface, team, event, thread_ts or DM_ROOT, target, thread, addressed)

        key = f"{channel}:{ts}"
        self.enqueue(surface, key, event_id or key, work)

    async def _answer(
        self, job: Job, surface: str, team: str | None, event: dict, thread_key: str, target: ReplyTarget,
        known_thread: Memory | None = None, addressed: bool = True,
        before_reply: Callable[[Intent | None], Awaitable[None]] | None = None,  # the panel's status (None: clear it)
    ) -> None:  # fmt: skip
        channel, user, text = text_of(event.get("channel")), text_of(event.get("user")), text_of(event.get("text"))
        if text_files(event):  # a pasted log often comes as a snippet: read it with the words
            token = self.settings.secret("slack_bot_token")
            session = getattr(self.client, "session", None)
            text = f"{text}\n{await attached_text(event, session, token, self.settings.slack_api_url)}"
        thread = known_thread or await self.state.thread(team, channel, thread_key)
        intent = self.answerer.understand(text, thread, addressed)
        if intent.kind == "chatter":  # said in the thread, not to headroom: stay out of it
            self.metrics.count(surface, "chatter")
            return
        if await self.limited(job, surface, user or None, target):
            return
        # issue 12: a model the catalog lacks is read from the Hub first; an interim message says so, then becomes the answer
        interim: list[str] = []
        intent = await self.answerer.with_hub(
            intent, text, thread, addressed, lambda repo: self._interim(target, repo, interim)
        )
        if before_reply is not None:
            await before_reply(intent)
        outcome = await self.answerer.reply(intent, thread)
        if not await self._replace_interim(job, target, interim, outcome.message):
            await self.send(job, target, outcome.message)
        elif before_reply is not None:  # an edited message, unlike a new one, leaves the panel's status showing
            await before_reply(None)
        await self.remember(team, channel, thread_key, outcome)
        self.metrics.count(surface, outcome.kind)
        log.info(
            "answered %s in %s", surface, safe_id(channel), extra={"outcome": outcome.kind, "cached": outcome.cached}
        )

    async def _interim(self, target: ReplyTarget, repo: str, posted: list[str]) -> None:
        """issue 12: "Reading <repo> from the Hugging Face Hub…" in the thread while the Hub is read (best-effort:
        when Slack refuses it, the answer is posted as usual)."""
        text = str(self.answerer.slack.views.macros("hub.j2").reading(repo))
        try:
            ts = await self.poster.post(self.client, target.channel, Message(text), target.thread_ts)
        except SLACK_FAILURES as exc:
            log.warning("the Hub interim message failed (%s); the answer is posted instead", type(exc).__name__)
            return
        if ts:
            posted.append(ts)

    async def _replace_interim(self, job: Job, target: ReplyTarget, posted: list[str], message: Message) -> bool:
        """The interim message becomes the answer (chat.update); False when there was none or Slack refused."""
        for _, blocks, text in layouts(message) if posted else []:  # the posting ladder: blocks, fallback, plain text
            try:
                await self.client.chat_update(channel=target.channel, ts=posted[0], text=text, blocks=blocks)
            except SLACK_FAILURES:
                continue
            job.replied = True
            return True
        return False

    # --- App Home and workspace events ------------------------------------------------------------

    async def on_home(self, event: dict, body: dict) -> None:
        user = text_of(event.get("user"))
        if event.get("tab", "home") != "home" or not user:
            return

        async def work(job: Job) -> None:
            if not await self.state.first_delivery(text_of(body.get("event_id")) or None, None, None):
                return
            view = self.answerer.slack.home(self.answerer.catalog)
            view["blocks"] += self.panel.home_blocks(text_of(body.get("api_app_id")), team_of(body))  # issue 15
            await self.client.views_publish(user_id=user, view=view)
            self.metrics.count("home", "answer")

        event_id = text_of(body.get("event_id"))
        self.enqueue("home", f"home:{user}:{event_id}", event_id or None, work)

    async def on_farewell(self, event: dict, body: dict) -> None:
        """Uninstalled, or its tokens revoked: forget the workspace's threads (and say so in the log)."""
        team, kind = team_of(body), text_of(event.get("type"))

        async def work(job: Job) -> None:
            forgotten = await self.state.forget_team(team)
            log.warning("Slack sent %s for workspace %s: forgot its %d threads", kind, safe_id(team), forgotten)
            self.metrics.count("event", "ignored")

        self.enqueue("event", f"{kind}:{team}", text_of(body.get("event_id")) or None, work)

    def outside_bolt(self, body: dict[str, Any]) -> bool:
        """Deliveries Bolt has no listener shape for (`app_rate_limited` is not an event_callback):
        handled here, True when answered."""
        if body.get("type") != "app_rate_limited":
            return False
        log.warning("Slack is holding back events for workspace %s (over 30,000 an hour)", safe_id(team_of(body)))
        self.metrics.count("event", "rate_limited")
        return True

    def register(self, app: AsyncApp) -> AsyncApp:
        from bot.slack_interactive import Interactive

        interactive = Interactive(self)
        # three listeners, the busiest first: Bolt tries each listener's matcher in turn, and each
        # try costs tens of microseconds of the acknowledgement
        app.command("/headroom")(interactive.on_command)
        app.action(re.compile(r"^replan_"))(interactive.on_button)
        app.event(re.compile(f"^(?:{'|'.join(EVENTS)})$"))(self.on_event)
        # issue 15: the assistant panel (Bolt middleware, before these listeners) and feedback on answers
        from bot.slack_assistant import AssistantPanel
        from bot.slack_feedback import FeedbackListeners

        self.panel = AssistantPanel(self)
        app.assistant(self.panel.middleware())
        FeedbackListeners(self).register(app)

        @app.error
        async def on_error(error: Exception, body: dict) -> None:
            # a signed request whose listener failed before queueing: labels from fixed sets, no body in the log
            surface = "command" if "command" in body else "button" if body.get("type") == "block_actions" else "event"
            self.metrics.count(surface, "failed")
            log.error("listener failed for a %s: %s", surface, describe(error), exc_info=error)

        return app


def describe(exc: BaseException) -> str:
    """An exception in one clear line, also when it has no message (a timeout's str() is empty)."""
    if isinstance(exc, TimeoutError):
        return f"{type(exc).__name__}: a Slack or Redis call did not answer in time"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def build_slack_app(
    settings: Settings, state: BotState, answerer: Answerer, metrics: Metrics
) -> tuple[AsyncApp, SlackBot]:
    client = build_web_client(settings, metrics)
    app = AsyncApp(
        client=client,
        signing_secret=settings.secret("slack_signing_secret"),
        # bot/http_guard.py verifies each request's signature over its raw bytes before Bolt sees it
        # (Socket Mode requests are not signed); Bolt gets the verified payload re-encoded
        request_verification_enabled=False,
        # every listener acks and queues its work, so Bolt can answer the HTTP request as soon as the
        # listener returns (no 10 ms ack polling)
        process_before_response=True,
    )
    bot = SlackBot(settings, state, answerer, metrics, client)
    bot.register(app)
    return app, bot
