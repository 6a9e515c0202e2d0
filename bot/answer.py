"""From a Slack message (and the thread it is in) to the reply: parse, plan, render, cache.

Independent of Bolt: listeners hand it text and thread state, it hands back a Message
and the request to remember for the thread.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from jinja2 import Environment
from pydantic import ValidationError

from bot.blocks import Message, answer_message, check_limits, error_message, help_message
from bot.metrics import Metrics
from bot.render import TEMPLATE_VERSION
from bot.state import BotState, ThreadState
from engine.catalog.loader import Catalog
from engine.conversation import StartOver, changes, follow_up
from engine.errors import HeadroomError, InvalidRequest
from engine.parse import ParseError, parse_request
from engine.ranking import plan as make_plan
from engine.request import Request

log = logging.getLogger("headroom.answer")

_HELP_WORDS = {"", "help", "?", "hi", "hello", "hey", "usage"}


@dataclass(frozen=True)
class Outcome:
    message: Message
    request: Request | None  # remember for the thread (None: keep what the thread had)
    top: str | None
    cached: bool = False
    kind: str = "answer"  # answer | error | help | reset


class Answerer:
    def __init__(self, catalog: Catalog, env: Environment, state: BotState, metrics: Metrics | None = None) -> None:
        self.catalog = catalog
        self.env = env
        self.state = state
        self.metrics = metrics or Metrics()
        self._parsed: dict[str, Request] = {}
        self._recent: dict[str, tuple[Message, str | None]] = {}
        self._pending: dict[str, asyncio.Future[Outcome]] = {}
        # one thread for the engine: its memo tables are shared, and answers are only ms of CPU
        self._engine = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine")

    async def respond(self, text: str, thread: ThreadState | None) -> Outcome:
        """A new question, or a follow-up when the thread already has a request."""
        if text.strip().lower() in _HELP_WORDS:
            return Outcome(help_message(), None, None, kind="help")
        try:
            if thread is None or thread.request is None:
                request = self._parse(text)
            else:
                request = self._follow_or_restart(text, thread)
        except StartOver as exc:
            return Outcome(error_message(str(exc)), None, None, kind="reset")
        except (ParseError, InvalidRequest, ValidationError) as exc:
            return self._error(exc)
        return await self.replan(request, thread)

    def _parse(self, text: str) -> Request:
        """parse_request, remembering the last few thousand texts (popular questions repeat)."""
        cached = self._parsed.get(text)
        if cached is None:
            cached = parse_request(text, self.catalog)
            if len(self._parsed) >= 4096:
                self._parsed.pop(next(iter(self._parsed)))
            self._parsed[text] = cached
        return cached

    async def warm_up(self) -> None:
        """Compile the templates, import lazily-loaded code and size every model once (~0.2 s),
        so the first question about any model is as quick as the next one."""
        for spec in self.catalog.models:
            make_plan(Request(model=spec.id), self.catalog)
        request = parse_request("llama 3.3 70b fp8 8k context", self.catalog)
        plan = make_plan(request, self.catalog)
        check_limits(answer_message(self.env, plan, request, ["warm-up"]).blocks)
        self._error(ParseError("warm-up"))

    def _follow_or_restart(self, text: str, thread: ThreadState) -> Request:
        try:
            return follow_up(text, thread.request, thread.top, self.catalog)
        except StartOver:
            raise
        except ParseError:
            # not a change to the last request: maybe a whole new question in the same thread
            return parse_request(text, self.catalog)

    async def replan(self, request: Request, previous: ThreadState | None, more: bool = False) -> Outcome:
        """Plan (from the cache when this exact request was answered before) and say what changed."""
        key = self.state.answer_key(request, self.catalog.digest, TEMPLATE_VERSION, "more" if more else "")
        is_follow_up = previous is not None and previous.request is not None and previous.request != request
        if not is_follow_up:
            local = self._recent.get(key)
            if local:
                self.metrics.cache.labels("hit").inc()
                return Outcome(local[0], request, local[1], cached=True)
            pending = self._pending.get(key)
            if pending:  # the same question is being answered right now: share that answer
                return await asyncio.shield(pending)
            future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
            self._pending[key] = future
            try:
                outcome = await self._cached_or_fresh(request, previous, key, is_follow_up, more)
            except Exception as exc:
                future.set_exception(exc)
                future.exception()  # retrieved: no "never retrieved" warning when nobody else waited
                raise
            except BaseException:
                future.cancel()
                raise
            else:
                future.set_result(outcome)
                return outcome
            finally:
                del self._pending[key]
        return await self._cached_or_fresh(request, previous, key, is_follow_up, more)

    async def _cached_or_fresh(
        self, request: Request, previous: ThreadState | None, key: str, is_follow_up: bool, more: bool
    ) -> Outcome:
        cached = await self.state.cached_answer(key)
        if cached and not is_follow_up:
            self.metrics.cache.labels("hit").inc()
            message = Message.from_json(cached["message"])
            self._remember_locally(key, message, cached.get("top"))
            return Outcome(message, request, cached.get("top"), cached=True)
        self.metrics.cache.labels("miss").inc()
        try:
            # CPU-bound (a few ms): on the engine thread, so the event loop keeps acknowledging Slack
            loop = asyncio.get_running_loop()
            top, delta, message = await loop.run_in_executor(
                self._engine, self._compute, request, previous, is_follow_up, more
            )
        except (HeadroomError, ValidationError) as exc:
            return self._error(exc)
        if not delta:
            self._remember_locally(key, message, top)
            await self.state.save_answer(key, {"message": message.to_json(), "top": top})
        return Outcome(message, request, top)

    def _compute(
        self, request: Request, previous: ThreadState | None, is_follow_up: bool, more: bool
    ) -> tuple[str | None, list[str] | None, Message]:
        with self.metrics.planning_seconds.time():
            plan = make_plan(request, self.catalog)
            top = plan.top.instance if plan.top else None
            delta = self._changes(previous, plan) if is_follow_up and previous else None
            message = answer_message(self.env, plan, request, delta, more)
            check_limits(message.blocks, deep=False)  # the fallback layout is checked when it is used
        return top, delta, message

    def _remember_locally(self, key: str, message: Message, top: str | None) -> None:
        """A small in-process copy of recent answers, in front of the shared cache (same key, same content)."""
        if len(self._recent) >= 512:
            self._recent.pop(next(iter(self._recent)))
        self._recent[key] = (message, top)

    def _changes(self, previous: ThreadState, plan) -> list[str] | None:  # noqa: ANN001
        if previous.request is None:
            return None
        try:
            before = make_plan(previous.request, self.catalog)
        except (HeadroomError, ValidationError):
            return None
        return changes(before, plan) or ["nothing in the answer changed"]

    @staticmethod
    def _error(exc: Exception) -> Outcome:
        if isinstance(exc, ParseError):
            message = error_message(str(exc), exc.suggestions, exc.understood)
        elif isinstance(exc, InvalidRequest):
            message = error_message(str(exc), exc.suggestions)
        elif isinstance(exc, ValidationError):
            problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
            message = error_message(f"That doesn't add up: {problems}")
        else:
            message = error_message(str(exc))
        return Outcome(message, None, None, kind="error")
