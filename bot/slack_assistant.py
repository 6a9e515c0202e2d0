"""Slack's assistant panel (Agents & AI Apps) on Bolt's `AsyncAssistant`: greeting, prompts, status, title.

A thread opened in the panel is a DM thread, so its messages go through the same conversation
service and thread memory as any DM (`SlackBot._answer`): acknowledged at once, answered from the
queue, de-duplicated, rate-limited, behind the same error boundary. What the panel adds -- suggested
prompts, a status while the answer is computed, a title from the understood request -- is best
effort: a workspace without the feature, or a Slack that refuses a call, still gets the answer, and
mentions, DMs and /headroom never depend on it. Only threads Slack opened in the panel
(`assistant_thread_started`) get a status and a title; other DM thread replies are plain DMs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import aiohttp
from slack_bolt.async_app import AsyncAssistant
from slack_sdk.errors import SlackApiError

from bot.answer_queue import Job, ReplyTarget
from bot.blocks import Message, escape
from bot.blocks import _section as section
from bot.slack_app import team_of, text_of
from bot.slack_files import text_files
from bot.slack_interactive import _dict
from engine.catalog.resolve import resolve_model
from engine.errors import HeadroomError
from engine.request import Request
from engine.service import Intent

if TYPE_CHECKING:
    from bot.slack_app import SlackBot

log = logging.getLogger("headroom.slack")


class AssistantPanel:
    """The panel's listeners; they share the bot's queue, state, answerer and Web API client."""

    def __init__(self, bot: SlackBot) -> None:
        self.bot = bot
        self.words = bot.answerer.slack.views.macros("assistant.j2")

    def middleware(self) -> AsyncAssistant:
        # our own context listener: Bolt's default stores the context through extra Web API calls
        assistant = AsyncAssistant()
        assistant.thread_started(self.on_thread_started)
        assistant.thread_context_changed(self.on_context_changed)
        assistant.user_message(self.on_user_message)
        return assistant

    def model_name(self, request: Request) -> str:
        try:
            return resolve_model(self.bot.answerer.catalog, request.model).spec.name
        except HeadroomError:
            return request.model.split("/")[-1]

    async def _best_effort(self, method: str, call: Awaitable[Any]) -> bool:
        """A panel-only call: refused or unreachable, it is counted and logged, and the answer goes on."""
        try:
            await call
        except SlackApiError as exc:
            error = exc.response.get("error")
            self.bot.metrics.slack_error(method, error)
            log.info("Slack refused %s (%s); answering without it", method, str(error)[:64])
            return False
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.bot.metrics.slack_error(method, "http_error")
            log.info("%s did not go through (%s); answering without it", method, type(exc).__name__)
            return False
        return True

    # --- a thread opens, or the user looks at another channel ----------------------------------

    async def on_thread_started(self, body: dict, payload: dict) -> None:
        self._thread_event(body, payload, greet=True)

    async def on_context_changed(self, body: dict, payload: dict) -> None:
        self._thread_event(body, payload, greet=False)

    def _thread_event(self, body: dict, payload: dict, greet: bool) -> None:
        thread = _dict(payload.get("assistant_thread"))
        channel, thread_ts = text_of(thread.get("channel_id")), text_of(thread.get("thread_ts"))
        if not channel or not thread_ts:
            return
        viewing = text_of(_dict(thread.get("context")).get("channel_id"))
        team, event_id = team_of(body), text_of(body.get("event_id")) or None
        work = partial(self._opened, team=team, channel=channel, thread_ts=thread_ts, viewing=viewing, greet=greet,
                       event_id=event_id)  # fmt: skip
        self.bot.enqueue("assistant", f"assistant:{channel}:{thread_ts}:{event_id}", event_id, work)

    async def _opened(self, job: Job, team: str | None, channel: str, thread_ts: str, viewing: str, greet: bool,
                      event_id: str | None) -> None:  # fmt: skip
        bot = self.bot
        if not await bot.state.first_delivery(event_id, None, None):
            bot.metrics.count("assistant", "duplicate")
            return
        if greet:
            await bot.state.mark_assistant_thread(team, channel, thread_ts)
            text = str(self.words.greeting())
            await bot.send(job, ReplyTarget(channel, thread_ts), Message(escape(text), [section(text)]))
        await self._best_effort("assistant.threads.setSuggestedPrompts", bot.client.assistant_threads_setSuggestedPrompts(
            channel_id=channel, thread_ts=thread_ts, title=str(self.words.prompts_title),
            prompts=await self.prompts(team, viewing)))  # fmt: skip
        if greet:
            bot.metrics.count("assistant", "help")

    async def prompts(self, team: str | None, viewing: str) -> list[dict[str, str]]:
        """Three first questions; looking at a channel where a model was sized, that model again first."""
        prompts = [{"title": str(p["title"]), "message": str(p["message"])} for p in self.words.prompts]
        last = await self.bot.state.last_request(team, viewing) if viewing else None
        if last is not None:
            name = self.model_name(last)
            prompts.insert(0, {"title": str(self.words.channel_prompt_title(name)),
                               "message": str(self.words.channel_prompt(name, last))})  # fmt: skip
        return prompts[:4]  # Slack shows at most four

    # --- a message in a panel thread -----------------------------------------------------------

    async def on_user_message(self, body: dict, payload: dict) -> None:
        event = payload
        channel, ts, text = text_of(event.get("channel")), text_of(event.get("ts")), text_of(event.get("text"))
        thread_ts = text_of(event.get("thread_ts"))
        if not channel or not ts or not thread_ts or not (text.strip() or text_files(event)):
            return
        team, event_id = team_of(body), text_of(body.get("event_id")) or None
        work = partial(self._message, event=event, team=team, event_id=event_id)
        self.bot.enqueue("assistant", f"{channel}:{ts}", event_id or f"{channel}:{ts}", work)

    async def _message(self, job: Job, event: dict, team: str | None, event_id: str | None) -> None:
        bot = self.bot
        channel, ts, thread_ts = text_of(event.get("channel")), text_of(event.get("ts")), text_of(event.get("thread_ts"))
        in_panel = await bot.state.is_assistant_thread(team, channel, thread_ts)
        surface = "assistant" if in_panel else "dm"
        if not await bot.first(surface, event_id, channel, ts):
            return
        target = ReplyTarget(channel, thread_ts)
        job.replies.append(target)
        working = partial(self._working, channel, thread_ts) if in_panel else None
        await bot._answer(job, surface, team, event, thread_ts, target, before_reply=working)

    async def _working(self, channel: str, thread_ts: str, intent: Intent | None) -> None:
        """While the answer is computed: a status, and the thread's title from the understood request (None: the
        answer arrived as an edit of the Hub's interim message, which does not end the status: clear it)."""
        client = self.bot.client
        if intent is None:
            await self._best_effort("assistant.threads.setStatus", client.assistant_threads_setStatus(
                channel_id=channel, thread_ts=thread_ts, status=""))  # fmt: skip
            return
        if intent.kind not in {"ask", "diagnose"}:
            return
        await self._best_effort("assistant.threads.setStatus", client.assistant_threads_setStatus(
            channel_id=channel, thread_ts=thread_ts, status=str(self.words.status())))  # fmt: skip
        if intent.request is not None:
            title = str(self.words.title(self.model_name(intent.request), intent.request))
            await self._best_effort("assistant.threads.setTitle", client.assistant_threads_setTitle(
                channel_id=channel, thread_ts=thread_ts, title=title[:255]))  # fmt: skip

    # --- App Home -------------------------------------------------------------------------------

    def home_blocks(self, app_id: str, team: str | None) -> list[dict]:
        """App Home's way into the panel: a link that opens a conversation with headroom."""
        query = {"app": app_id, **({"team": team} if team else {})}
        url = "https://slack.com/app_redirect?" + urlencode(query) if app_id else "https://slack.com/app_redirect"
        return [{"type": "divider"}, section(str(self.words.home_link(url)))]
