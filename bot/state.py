"""What the bot remembers, as JSON in the store: answers, threads, deliveries seen, request counts.

The only place that builds keys or (de)serialises values; listeners never touch the store.
"""

from __future__ import annotations

import hashlib
import json
import time

from pydantic import ValidationError

from bot.settings import Settings
from bot.store import Store
from engine.request import Request
from engine.service import Memory


def memory_to_json(memory: Memory) -> str:
    request = memory.request.model_dump(mode="json") if memory.request else None
    return json.dumps({"request": request, "top": memory.top})


def memory_from_json(raw: str) -> Memory | None:
    """A thread's memory; None when it was written by an incompatible version (the thread starts afresh)."""
    try:
        data = json.loads(raw)
        request = Request.model_validate(data["request"]) if data["request"] is not None else None
        top = data.get("top")
        return Memory(request, top if isinstance(top, str) else None)
    except (ValueError, KeyError, TypeError, ValidationError):
        return None


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
    def answer_key(request: Request, release: str, variant: str = "") -> str:
        """Same request, same code, templates and data (`release`, a digest of them all) -> same answer."""
        normalised = request.model_dump_json()
        digest = hashlib.sha256(f"{normalised}|{release}|{variant}".encode()).hexdigest()
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

    async def thread(self, channel: str, thread_ts: str) -> Memory | None:
        raw = await self.store.get(f"thread:{channel}:{thread_ts}")
        return memory_from_json(raw) if raw else None

    async def save_thread(self, channel: str, thread_ts: str, memory: Memory) -> None:
        """Memory() after 'start over': the thread is still headroom's, and its next message is a new question."""
        await self.store.set(f"thread:{channel}:{thread_ts}", memory_to_json(memory), self.settings.thread_ttl_days * 86400)
