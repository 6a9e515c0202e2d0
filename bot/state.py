"""What the bot remembers, as JSON in the store: answers, threads, deliveries seen, request counts.

The only place that builds keys or (de)serialises values; listeners never touch the store.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass

from pydantic import ValidationError

from bot.settings import Settings
from bot.store import Store
from engine.request import Request


@dataclass(frozen=True)
class ThreadState:
    """The previous request in a thread (None after 'start over'), and the instance its answer recommended."""

    request: Request | None
    top: str | None

    def to_json(self) -> str:
        request = self.request.model_dump(mode="json") if self.request else None
        return json.dumps({"request": request, "top": self.top})

    @classmethod
    def from_json(cls, raw: str) -> ThreadState | None:
        try:
            data = json.loads(raw)
            request = Request.model_validate(data["request"]) if data["request"] is not None else None
            return cls(request, data.get("top"))
        except (ValueError, KeyError, TypeError, ValidationError):
            return None  # state written by an incompatible version: start the thread afresh


class BotState:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    # --- de-duplication ---------------------------------------------------------------

    async def first_delivery(self, event_id: str | None, channel: str | None, ts: str | None) -> bool:
        """True once per event id AND once per message: retries and app_mention + message give one answer."""
        ttl = self.settings.dedupe_ttl_s
        if event_id and not await self.store.set_nx(f"evt:{event_id}", "1", ttl):
            return False
        if channel and ts and not await self.store.set_nx(f"msg:{channel}:{ts}", "1", ttl):
            return False
        return True

    # --- rate limit -------------------------------------------------------------------

    async def allow(self, user: str | None) -> bool:
        if not user:
            return True
        minute = int(time.time() // 60)
        count = await self.store.incr(f"rate:{user}:{minute}", 120)
        return count <= self.settings.rate_limit_per_minute

    # --- answer cache -----------------------------------------------------------------

    @staticmethod
    def answer_key(request: Request, catalog_version: str, template_version: str, variant: str = "") -> str:
        normalised = request.model_dump_json()
        digest = hashlib.sha256(f"{normalised}|{catalog_version}|{template_version}|{variant}".encode()).hexdigest()
        return f"answer:{digest[:40]}"

    async def cached_answer(self, key: str) -> dict | None:
        raw = await self.store.get(key)
        if raw is None:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    async def save_answer(self, key: str, answer: dict) -> None:
        await self.store.set(key, json.dumps(answer), self.settings.answer_cache_ttl_s)

    # --- threads ----------------------------------------------------------------------

    async def thread(self, channel: str, thread_ts: str) -> ThreadState | None:
        raw = await self.store.get(f"thread:{channel}:{thread_ts}")
        return ThreadState.from_json(raw) if raw else None

    async def clear_thread(self, channel: str, thread_ts: str) -> None:
        """'start over': the next message in the thread is a new question."""
        await self.save_thread(channel, thread_ts, ThreadState(None, None))

    async def save_thread(self, channel: str, thread_ts: str, state: ThreadState) -> None:
        await self.store.set(f"thread:{channel}:{thread_ts}", state.to_json(), self.settings.thread_ttl_days * 86400)
