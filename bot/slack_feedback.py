"""Clicks on an answer's 👍/👎 and "Did it fit?", and the form it opens: acknowledged at once, stored once.

Every click and form arrives signed (bot/http_guard.py refuses anything else before it is parsed),
but what it carries comes back from the user's client: it is read with `bot.feedback.read_carried`
and a value headroom did not write is counted as expired and dropped. A replayed click (same user,
message and action ts) or a form submitted twice is stored once. One person's latest vote on one
answer, and their latest report on one request and suggestion, replace the earlier ones.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError

from bot.answer_queue import Job, ReplyTarget
from bot.blocks import Message
from bot.feedback import (
    FEEDBACK_ACTION,
    FIT_ACTION,
    FIT_VIEW,
    MAX_METADATA,
    VOTES,
    Answered,
    FeedbackRecord,
    LogFigures,
    fit_form,
    form_answers,
    read_carried,
    thanks,
)
from bot.slack_app import text_of
from bot.slack_interactive import _dict
from engine.paste_reader import read_paste

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from bot.slack_app import SlackBot

log = logging.getLogger("headroom.slack")

#: what a pasted log says about the outcome when the form does not
_LOG_OUTCOME = {"healthy_startup": "fits", "cuda_oom": "oom", "no_cache_blocks": "oom", "kv_too_small_for_max_len": "oom",
                "unsupported_on_gpu": "no_start", "nccl_or_p2p": "no_start", "unsupported_model": "no_start"}  # fmt: skip


class FeedbackListeners:
    def __init__(self, bot: SlackBot) -> None:
        self.bot = bot
        self.words = bot.answerer.slack.views.macros("assistant.j2")

    def register(self, app: AsyncApp) -> None:
        app.action(FEEDBACK_ACTION)(self.on_thumbs)
        app.action(FIT_ACTION)(self.on_fit_button)
        app.view(FIT_VIEW)(self.on_form)

    def _click(self, body: dict, action: dict) -> dict[str, str]:
        container = _dict(body.get("container"))
        return {
            "user": text_of(_dict(body.get("user")).get("id")),
            "channel": text_of(container.get("channel_id")) or text_of(_dict(body.get("channel")).get("id")),
            "message_ts": text_of(container.get("message_ts")),
            "action_ts": text_of(action.get("action_ts")),
            "value": text_of(action.get("value")),
            "trigger": text_of(body.get("trigger_id")),
            "response_url": text_of(body.get("response_url")),
        }

    def _job(self, kind: str, click: dict[str, str], work: partial) -> Job:
        key = f"{kind}:" + "|".join(click[k] for k in ("user", "channel", "message_ts", "action_ts"))
        url = click["response_url"]
        failure = [ReplyTarget(response_url=url, replace_original=False)] if url else []
        return Job("feedback", key, click["action_ts"] or key, work, failure)

    async def _first(self, kind: str, *identity: str) -> bool:
        if await self.bot.state.first_time(kind, *identity):
            return True
        self.bot.metrics.duplicates.inc()
        self.bot.metrics.count("feedback", "duplicate")
        return False

    def _expired(self) -> None:
        self.bot.metrics.count("feedback", "expired")

    # --- 👍 / 👎 ---------------------------------------------------------------------------------

    async def on_thumbs(self, ack, body: dict, action: dict) -> None:  # noqa: ANN001
        await ack()
        click = self._click(body, action)
        self.bot.queue.submit(self._job("thumbs", click, partial(self._thumbs, click=click)))

    async def _thumbs(self, job: Job, click: dict[str, str]) -> None:
        job.replied = True  # a vote gets no message: Slack shows the chosen thumb itself
        if not await self._first("fb", *(click[k] for k in ("user", "channel", "message_ts", "action_ts", "value"))):
            return
        answered = read_carried(click["value"])
        if answered is None or answered.v not in VOTES:
            return self._expired()
        await self._store(("thumbs", click["user"], click["channel"], click["message_ts"]),
                          FeedbackRecord.now(kind="thumbs", value=answered.v, **self._about(answered)))  # fmt: skip
        self.bot.metrics.feedback_stored("thumbs", answered.v)

    # --- "Did it fit?" ---------------------------------------------------------------------------

    async def on_fit_button(self, ack, body: dict, action: dict) -> None:  # noqa: ANN001
        await ack()
        click = self._click(body, action)
        # at once, not queued: the trigger_id expires 3 s after the click, and the queue may be busy with answers
        await self.bot._guarded(self._job("fit", click, partial(self._open_form, click=click)))

    async def _open_form(self, job: Job, click: dict[str, str]) -> None:
        if not await self._first("fit", *(click[k] for k in ("user", "channel", "message_ts", "action_ts"))):
            return
        answered = read_carried(click["value"])
        if answered is None or not click["trigger"]:
            return self._expired()
        name = self.bot.panel.model_name(answered.r)
        try:
            await self.bot.client.views_open(trigger_id=click["trigger"],
                                             view=fit_form(self.words, answered, name, click["value"]))  # fmt: skip
        except SlackApiError as exc:
            error = exc.response.get("error")
            self.bot.metrics.slack_error("views.open", error)
            if error != "expired_trigger_id" or not click["response_url"]:
                raise
            # too late for this click (Slack was slow to deliver it): say so, privately, rather than fail
            target = ReplyTarget(response_url=click["response_url"], replace_original=False)
            await self.bot.send(job, target, Message(str(self.words.fit_click_again)))
            return
        job.replied = True

    async def on_form(self, ack, body: dict, view: dict) -> None:  # noqa: ANN001
        outcome, held, pasted = form_answers(view)
        if not (outcome or held or pasted.strip()):
            await ack(response_action="errors", errors={"outcome": str(self.words.fit_form["empty"])})
            return
        metadata = text_of(view.get("private_metadata"))
        answered = read_carried(metadata, MAX_METADATA)  # read twice (here and in the job): a few microseconds
        if answered is None:
            await ack()
        else:
            await ack(response_action="update", view=thanks(self.words, answered, (outcome, held, pasted)))
        user, view_id = text_of(_dict(body.get("user")).get("id")), text_of(view.get("id"))
        work = partial(self._report, user=user, view_id=view_id, metadata=metadata, answers=(outcome, held, pasted))
        self.bot.enqueue("feedback", f"form:{user}:{view_id}", view_id or None, work)

    async def _report(self, job: Job, user: str, view_id: str, metadata: str,
                      answers: tuple[str, int | None, str]) -> None:  # fmt: skip
        job.replied = True  # the form closes on submission: nothing more to say
        if not await self._first("form", user, view_id):
            return
        answered = read_carried(metadata, MAX_METADATA)
        if answered is None:
            return self._expired()
        outcome, held, pasted = answers
        figures = LogFigures.of(read_paste(pasted)) if pasted.strip() else None  # only the figures are kept
        value = outcome or (_LOG_OUTCOME.get(figures.kind, "") if figures else "")
        record = FeedbackRecord.now(kind="outcome", value=value, held=held, log=figures, **self._about(answered))
        await self._store(("outcome", user, metadata), record)
        metrics = self.bot.metrics
        if value:
            metrics.feedback_stored("outcome", value)
        if held:
            metrics.feedback_stored("held", "reported")
        if figures:
            metrics.feedback_stored("log", figures.kind)

    # --- storing ---------------------------------------------------------------------------------

    def _about(self, answered: Answered) -> dict:
        """What every record holds about the answer: the request as the engine understood it, the suggestion, the release."""
        return {"request": answered.r.as_data(exclude_defaults=True), "suggested": answered.t,
                "digest": self.bot.answerer.answers_key}  # fmt: skip

    async def _store(self, identity: tuple[str, ...], record: FeedbackRecord) -> None:
        await self.bot.state.save_feedback(identity, record.model_dump_json(exclude_none=True))
        log.info("feedback stored", extra={"outcome": f"{record.kind}:{record.value or '-'}"})
