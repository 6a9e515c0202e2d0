"""From a Slack message (and the thread it is in) to the reply: the conversation service, then Block Kit.

Independent of Bolt: listeners hand it text and thread memory, it hands back a Message and the
memory to keep. It adds what only a server needs: an answer cache (keyed by the normalised request
and a digest of the code, templates and data), sharing one computation between identical
questions in flight, and planning off the event loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.blocks import Message, SlackViews, check_limits
from bot.hub import HubReader
from bot.metrics import Metrics
from bot.state import BotState
from engine.catalog.loader import Catalog
from engine.catalog.resolve import resolve_model
from engine.charts import charts_for  # issue 15
from engine.errors import HeadroomError, ParseError
from engine.hub_model import REPO_ID, hub_spec, wanted_repo, with_models
from engine.notes import Note
from engine.request import Request
from engine.service import Intent, Memory, Turn, answer, diagnosis, understand

#: models read from the Hub that one process keeps in its catalog; past this the catalog starts again from the data
HUB_MODELS_KEPT = 32


@dataclass(frozen=True)
class Outcome:
    message: Message
    memory: Memory | None  # what the thread remembers now (None: keep what it had)
    cached: bool = False
    kind: str = "answer"  # answer | diagnosis | error | help | reset | chatter (nothing to post)


class Answerer:
    def __init__(
        self, catalog: Catalog, slack: SlackViews, state: BotState, answers_key: str, metrics: Metrics | None = None,
        hub: HubReader | None = None,
    ) -> None:  # fmt: skip
        self.catalog = catalog
        self.slack = slack
        self.state = state
        self.answers_key = answers_key  # digest of engine code + templates + data: a release never serves old answers
        self.metrics = metrics or Metrics()
        self._recent: dict[str, tuple[Message, str | None]] = {}
        self._pending: dict[str, asyncio.Future[Outcome]] = {}
        self.base_catalog = catalog  # self.catalog adds the models read from the Hub (bounded by HUB_MODELS_KEPT)
        self.hub = hub

    def use_catalog(self, catalog: Catalog, answers_key: str) -> None:
        """Swap in new data (a price refresh): the base Hub models are added to, the catalog and the answer-cache
        key change together, so no answer priced with the old data is cached under the new key."""
        self.base_catalog, self.catalog, self.answers_key = catalog, catalog, answers_key

    def hub_wanted(self, intent: Intent) -> str | None:
        """The Hub repo a message waits for: an id the catalog lacks, or one a thread remembers that this
        process has not read yet."""
        if intent.kind == "error":
            return wanted_repo(intent.error)
        model = intent.request.model if intent.kind == "ask" and intent.request else ""
        if not REPO_ID.match(model):
            return None
        try:
            resolve_model(self.catalog, model)
        except HeadroomError:
            return model
        return None

    def _hub_revision(self, model: str) -> str:
        if len(self.catalog.models) == len(self.base_catalog.models):
            return ""
        try:
            return resolve_model(self.catalog, model).spec.hub_revision or ""
        except HeadroomError:
            return ""

    async def with_hub(
        self, intent: Intent, text: str, memory: Memory | None, addressed: bool,
        progress: Callable[[str], Awaitable[None]],
    ) -> Intent:  # fmt: skip
        """When a message waits for a Hub repo: read it (`learn`) and understand the message again."""
        repo = self.hub_wanted(intent) if self.hub is not None else None
        if repo is None:
            return intent
        problem = await self.learn(repo, progress)
        if problem is None:
            return self.understand(text, memory, addressed)
        if problem.code == "hub_not_found" and intent.error:  # a typo of a catalog id: offer the closest names
            problem.suggestions = problem.suggestions or list(intent.error.suggestions)
        return Intent("error", error=problem)

    async def learn(self, repo: str, progress: Callable[[str], Awaitable[None]]) -> HeadroomError | None:
        """Read a repo (the shared store first, then the Hub through the disk cache; `progress(repo)` before a
        network read) and add it to this process's catalog; the error when it cannot be planned."""
        if self.hub is None:
            return None
        files = await self.state.hub_files(repo)
        try:
            if files is None:
                if self.hub.cached(repo, self.hub.ttl_s) is None:
                    await progress(repo)
                files = await asyncio.to_thread(self.hub.read, repo)
                await self.state.save_hub_files(repo, files)
            spec = hub_spec(files)
        except HeadroomError as exc:
            return exc
        kept = self.catalog if len(self.catalog.models) - len(self.base_catalog.models) < HUB_MODELS_KEPT else None
        self.catalog = with_models(kept or self.base_catalog, [spec])
        return None

    def error(self, exc: HeadroomError, kind: str = "error") -> Outcome:
        return Outcome(self.slack.error(exc), Memory() if kind == "reset" else None, kind=kind)

    def understand(self, text: str, memory: Memory | None, addressed: bool = True) -> Intent:
        """What a message means in its conversation; `addressed=False` for a thread reply not said to headroom
        (it may then be "chatter": nothing to answer)."""
        return understand(text, memory, self.catalog, addressed=addressed)

    async def respond(self, text: str, memory: Memory | None, addressed: bool = True) -> Outcome:
        """A new question, or a follow-up when the thread already has a request."""
        return await self.reply(self.understand(text, memory, addressed), memory)

    async def reply(self, intent: Intent, memory: Memory | None) -> Outcome:
        """The answer to an understood message (split from `understand` so the bot can rate-limit in between)."""
        if intent.kind == "chatter":
            return Outcome(Message(""), None, kind="chatter")
        if intent.kind == "help":
            return Outcome(self.slack.help(), None, kind="help")
        if intent.kind == "reset":
            return self.error(ParseError("start_over"), "reset")
        if intent.kind == "error":
            assert intent.error is not None
            return self.error(intent.error)
        if intent.kind == "diagnose":
            assert intent.paste is not None
            turn = await asyncio.to_thread(diagnosis, intent.paste, self.catalog, intent.overrides, intent.hints)
            assert turn.diagnosis is not None
            return Outcome(self.slack.diagnosis(turn.diagnosis), turn.memory, kind="diagnosis")
        assert intent.request is not None
        return await self.replan(intent.request, memory, unread=intent.unread, remarks=intent.remarks)

    async def warm_up(self) -> None:
        """Compile the templates and size every model once (~0.2 s), so the first question is as quick as the next."""
        for spec in self.catalog.models:
            answer(Request(model=spec.id), None, self.catalog)
        turn = answer(Request(model="llama-3.3-70b", weights="fp8"), None, self.catalog)
        self._render(turn, False)
        self.error(ParseError("unreadable"))

    async def replan(
        self, request: Request, memory: Memory | None, more: bool = False,
        unread: tuple[str, ...] = (), remarks: tuple[Note, ...] = (),
    ) -> Outcome:  # fmt: skip
        """Plan (from the cache when this exact request was answered before) and say what changed.

        Words not understood and a pasted command's remarks are part of the answer, so of its cache key.
        """
        said = json.dumps([list(unread), [[r.code, r.data] for r in remarks]], sort_keys=True, default=str)
        said += self._hub_revision(request.model)  # a Hub model's answer is as new as the commit it was read at
        catalog = self.catalog  # the key and the plan follow the same catalog, even if a refresh swaps it meanwhile
        key = self.state.answer_key(request, self.answers_key, ("more" if more else "") + said)
        is_follow_up = memory is not None and memory.request is not None and memory.request != request
        if is_follow_up:
            return await self._cached_or_fresh(catalog, request, memory, key, is_follow_up, more, unread, remarks)
        local = self._recent.get(key)
        if local:
            self.metrics.cache.labels("hit").inc()
            return Outcome(local[0], Memory(request, local[1]), cached=True)
        pending = self._pending.get(key)
        if pending:  # the same question is being answered right now: share that answer
            return await asyncio.shield(pending)
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            outcome = await self._cached_or_fresh(catalog, request, memory, key, is_follow_up, more, unread, remarks)
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

    async def _cached_or_fresh(
        self, catalog: Catalog, request: Request, memory: Memory | None, key: str, is_follow_up: bool, more: bool,
        unread: tuple[str, ...] = (), remarks: tuple[Note, ...] = (),
    ) -> Outcome:  # fmt: skip
        cached = await self.state.cached_answer(key)
        if cached and not is_follow_up:
            self.metrics.cache.labels("hit").inc()
            message = Message.from_json(cached["message"])
            self._remember_locally(key, message, cached.get("top"))
            return Outcome(message, Memory(request, cached.get("top")), cached=True)
        self.metrics.cache.labels("miss").inc()
        # CPU-bound (a few ms) and thread-safe: off the event loop, so it keeps acknowledging Slack
        turn, message = await asyncio.to_thread(self._compute, catalog, request, memory, more, unread, remarks)
        if turn.kind == "error":
            return Outcome(message, None, kind="error")
        top = turn.memory.top if turn.memory else None
        if turn.changes is None:
            self._remember_locally(key, message, top)
            await self.state.save_answer(key, {"message": message.to_json(), "top": top})
        return Outcome(message, turn.memory)

    def _compute(
        self, catalog: Catalog, request: Request, memory: Memory | None, more: bool, unread: tuple[str, ...],
        remarks: tuple[Note, ...],
    ) -> tuple[Turn, Message]:  # fmt: skip
        with self.metrics.planning_seconds.time():
            follows = memory is not None and memory.request is not None and memory.request != request
            turn = answer(request, memory if follows else None, catalog, unread, remarks)  # same question: no diff
            return turn, self._render(turn, more, catalog)

    def _render(self, turn: Turn, more: bool, catalog: Catalog | None = None) -> Message:
        if turn.kind == "error":
            assert turn.error is not None
            return self.slack.error(turn.error)
        assert turn.plan is not None and turn.request is not None
        charts = charts_for(turn.plan, turn.request, catalog or self.catalog, turn.changes)  # issue 15: + curve after a change
        message = self.slack.answer(turn.plan, turn.request, turn.changes, more, turn.unread, turn.remarks, charts)
        check_limits(message.blocks, deep=False)  # the fallback layout is checked when it is used
        if message.chart_blocks:  # issue 15: the charts' layout, tried first
            check_limits(message.chart_blocks, deep=False)
        return message

    def _remember_locally(self, key: str, message: Message, top: str | None) -> None:
        """A small in-process copy of recent answers, in front of the shared cache (same key, same content)."""
        if len(self._recent) >= 512:
            self._recent.pop(next(iter(self._recent)))
        self._recent[key] = (message, top)
