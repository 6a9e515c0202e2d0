"""/headroom and the re-plan buttons: acknowledged at once, answered from the queue, each exactly once.

Slack sends every slash command and click with a signature that stays valid for 5 minutes, so an
identical request replayed in that window is the same request: it is recognised by its trigger id
(or response_url) or by the click's action ts, user and message, and answered once. A button's
value comes back from the user's client, so it is read as untrusted text: too long or too deeply
nested, and it is simply an expired button.
"""

from __future__ import annotations

import re
from functools import partial
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError

from bot.answer_queue import Job, ReplyTarget
from bot.blocks import MAX_BUTTON_VALUE
from bot.http_guard import json_object
from bot.slack_app import team_of, text_of
from engine.constraints import Invalid
from engine.errors import HeadroomError
from engine.request import Request
from engine.service import Intent

if TYPE_CHECKING:
    from bot.slack_app import SlackBot

_PRIVATE = re.compile(r"(?:^|\s)(?:--private|just me|only me|private)(?=\s|$)", re.IGNORECASE)
MAX_BUTTON_DEPTH = 6  # {"r": {..., "families": [...]}, "more": ...} is 3 deep


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def button_request(value: object) -> tuple[Request, bool] | None:
    """The request a button carries and whether it asks for more rows; None for anything headroom didn't write."""
    data = json_object(value, MAX_BUTTON_VALUE, MAX_BUTTON_DEPTH)
    if data is None:
        return None
    try:
        return Request.from_data(data["r"]), bool(data.get("more"))
    except (KeyError, TypeError, Invalid):
        return None


#: the slash command's fields an answer uses: a queued command keeps only these
_COMMAND_FIELDS = ("text", "channel_id", "user_id", "team_id", "trigger_id", "response_url")


class Interactive:
    """Slash command and button listeners, sharing the bot's queue, state and posting."""

    def __init__(self, bot: SlackBot) -> None:
        self.bot = bot

    # --- /headroom ----------------------------------------------------------------------------

    async def on_command(self, ack, command: dict) -> None:  # noqa: ANN001
        await ack()
        fields = {name: text_of(command.get(name)) for name in _COMMAND_FIELDS}
        trigger, url = fields["trigger_id"], fields["response_url"]
        failure = [ReplyTarget(response_url=url)] if url else []
        self.bot.enqueue("command", f"cmd:{trigger or url}", trigger or None, partial(self._command, fields=fields),
                         failure)  # fmt: skip

    async def _command(self, job: Job, fields: dict[str, str]) -> None:
        bot = self.bot
        url = fields["response_url"]
        if not await bot.state.first_time("cmd", fields["trigger_id"] or url):
            bot.metrics.duplicates.inc()
            bot.metrics.count("command", "duplicate")
            return
        text = fields["text"]
        private = bool(_PRIVATE.search(text))
        text = _PRIVATE.sub(" ", text).strip()
        channel = fields["channel_id"]
        ephemeral = ReplyTarget(response_url=url)
        intent = bot.answerer.understand(text, None)
        if await bot.limited(job, "command", fields["user_id"] or None, ephemeral):
            return
        intent = await bot.answerer.with_hub(intent, text, None, True, _quiet)  # issue 12: a model from the Hub
        outcome = await bot.answerer.reply(intent, None)
        bot.metrics.count("command", outcome.kind)
        if private or outcome.kind not in {"answer", "diagnosis"} or not channel:
            await bot.send(job, ephemeral, outcome.message)
            return
        try:
            ts = await bot.send(job, ReplyTarget(channel), outcome.message)
        except SlackApiError as exc:
            if exc.response.get("error") not in {"not_in_channel", "channel_not_found"}:
                raise
            await bot.send(job, ReplyTarget(response_url=url, response_type="in_channel"), outcome.message)
            return
        if ts:
            await bot.remember(fields["team_id"] or None, channel, str(ts), outcome)

    # --- buttons ------------------------------------------------------------------------------

    async def on_button(self, ack, body: dict, action: dict) -> None:  # noqa: ANN001
        await ack()
        container = _dict(body.get("container"))
        click = {
            "user": text_of(_dict(body.get("user")).get("id")),
            "channel": text_of(container.get("channel_id")) or text_of(_dict(body.get("channel")).get("id")),
            "message_ts": text_of(container.get("message_ts")),
            "thread_ts": text_of(container.get("thread_ts")) or text_of(container.get("message_ts")),
            "ephemeral": "1" if container.get("is_ephemeral") else "",
            "action_ts": text_of(action.get("action_ts")),
            "action_id": text_of(action.get("action_id")),
            "value": text_of(action.get("value")) if len(text_of(action.get("value"))) <= MAX_BUTTON_VALUE else "",
            "team": team_of(body) or "",
            "response_url": text_of(body.get("response_url")),
        }  # fmt: skip
        identity = "|".join(click[k] for k in ("user", "channel", "message_ts", "action_ts", "action_id"))
        url = click["response_url"]
        failure = [ReplyTarget(response_url=url, replace_original=False)] if url else []
        self.bot.enqueue("button", "act:" + identity, click["action_ts"] or None, partial(self._button, click=click),
                         failure)  # fmt: skip

    async def _button(self, job: Job, click: dict[str, str]) -> None:
        bot = self.bot
        identity = [click[k] for k in ("user", "channel", "message_ts", "action_ts", "action_id")]
        if not await bot.state.first_time("act", *identity):
            bot.metrics.duplicates.inc()
            bot.metrics.count("button", "duplicate")
            return
        ephemeral = ReplyTarget(response_url=click["response_url"], replace_original=False)
        carried = button_request(click["value"])
        if carried is None:
            bot.metrics.count("button", "expired")
            await bot.send(job, ephemeral, bot.answerer.error(HeadroomError("button_expired")).message)
            return
        request, more = carried
        if await bot.limited(job, "button", click["user"] or None, ephemeral):
            return
        channel, thread_ts, team = click["channel"], click["thread_ts"], click["team"] or None
        previous = await bot.state.thread(team, channel, thread_ts) if channel and thread_ts else None
        repo = bot.answerer.hub_wanted(Intent("ask", request))  # issue 12: a Hub model this process hasn't read
        if repo:
            await bot.answerer.learn(repo, _quiet)
        outcome = await bot.answerer.replan(request, previous, more=more)
        bot.metrics.count("button", outcome.kind)
        if click["ephemeral"] or not channel:
            await bot.send(job, ephemeral, outcome.message)
            return
        await bot.send(job, ReplyTarget(channel, thread_ts or None), outcome.message)
        if thread_ts:
            await bot.remember(team, channel, thread_ts, outcome)


async def _quiet(repo: str) -> None:
    """No interim message where the answer goes to a response_url (issue 12)."""
