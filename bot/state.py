"""What the bot remembers, as JSON in the store: answers, threads, deliveries seen, request counts.

The only place that builds keys or (de)serialises values; listeners never touch the store.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from typing import Literal

from pydantic import ValidationError

from bot.hub import SUMMARY_VERSION
from bot.settings import Settings
from bot.store import Store
from engine.diagnose import reading_from_json, reading_to_json
from engine.hub_model import HubFiles
from engine.request import Request
from engine.service import Memory


def memory_to_json(memory: Memory) -> str:
    request = memory.request.as_data() if memory.request else None
    paste = reading_to_json(memory.paste) if memory.paste else None  # redacted by the reader: no secrets
    return json.dumps({"request": request, "top": memory.top, "paste": paste})


def memory_from_json(raw: str) -> Memory | None:
    """A thread's memory; None when it was written by an incompatible version (the thread starts afresh)."""
    try:
        data = json.loads(raw)
        request = Request.from_data(data["request"]) if data["request"] is not None else None
        top = data.get("top")
        paste = reading_from_json(data["paste"]) if isinstance(data.get("paste"), dict) else None
        return Memory(request, top if isinstance(top, str) else None, paste)
    except (ValueError, KeyError, TypeError, ValidationError):
        return None


Admission = Literal["ok", "notice", "silent"]
_KEY_PART = re.compile(r"[^A-Za-z0-9_.-]")


def _part(value: str | None) -> str:
    """A Slack id as a key segment: no separators or glob characters, whatever a payload carries."""
    return _KEY_PART.sub("_", value or "")[:64] or "_"


class BotState:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    # --- de-duplication ---------------------------------------------------------------

    async def first_delivery(self, event_id: str | None, channel: str | None, ts: str | None) -> bool:
        """True once per event id AND once per message: retries and app_mention + message give one answer."""
        ttl = self.settings.dedupe_ttl_s
        if event_id and not await self.store.set_nx(f"evt:{_part(event_id)}", "1", ttl):
            return False
        if channel and ts and not await self.store.set_nx(f"msg:{_part(channel)}:{_part(ts)}", "1", ttl):
            return False
        return True

    async def first_time(self, kind: str, *identity: str | None) -> bool:
        """True once per (kind, identity) within the de-duplication TTL (longer than Slack's 5-minute
        signature window): a replayed slash command or button click is answered once."""
        digest = hashlib.sha256("\x1f".join(part or "" for part in identity).encode()).hexdigest()[:32]
        return await self.store.set_nx(f"{kind}:{digest}", "1", self.settings.dedupe_ttl_s)

    # --- rate limit -------------------------------------------------------------------

    async def admit(self, user: str | None) -> Admission:
        """ "ok" within the per-minute limit; past it, "notice" exactly once per user and minute (one
        'asking faster' reply), then "silent": what the bot posts stays bounded whatever is sent."""
        if not user:
            return "ok"
        minute = int(time.time() // 60)
        count = await self.store.incr(f"rate:{_part(user)}:{minute}", 120)
        limit = self.settings.rate_limit_per_minute
        return "ok" if count <= limit else "notice" if count == limit + 1 else "silent"

    # --- answer cache -----------------------------------------------------------------

    @staticmethod
    def answer_key(request: Request, release: str, variant: str = "") -> str:
        """Same request, same code, templates and data (`release`, a digest of them all) -> same answer."""
        normalised = request.as_json()
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

    # --- models read from the Hub (issue 12) ---------------------------------------------

    @staticmethod
    def _hub_key(repo: str) -> str:
        return f"hub:v{SUMMARY_VERSION}:{hashlib.sha256(repo.lower().encode()).hexdigest()[:32]}"

    async def hub_files(self, repo: str) -> HubFiles | None:
        """A repo's files as read from the Hub by any worker (None: not read within hub_cache_ttl_s)."""
        raw = await self.store.get(self._hub_key(repo))
        try:
            return HubFiles.model_validate_json(raw) if raw else None
        except ValidationError:
            return None

    async def save_hub_files(self, repo: str, files: HubFiles) -> None:
        await self.store.set(self._hub_key(repo), files.model_dump_json(), self.settings.hub_cache_ttl_s)

    # --- threads ----------------------------------------------------------------------
    # keys are per workspace (`thread:{team}:{channel}:{ts}`), so uninstalling forgets a workspace's
    # threads with one prefix delete; threads saved before keys had the team are still read

    async def thread(self, team: str | None, channel: str, thread_ts: str) -> Memory | None:
        raw = await self.store.get(f"thread:{_part(team)}:{_part(channel)}:{_part(thread_ts)}")
        if raw is None:
            raw = await self.store.get(f"thread:{channel}:{thread_ts}")  # legacy key, gone after thread_ttl_days
        return memory_from_json(raw) if raw else None

    async def save_thread(self, team: str | None, channel: str, thread_ts: str, memory: Memory) -> None:
        """Memory() after 'start over': the thread is still headroom's, and its next message is a new question."""
        key = f"thread:{_part(team)}:{_part(channel)}:{_part(thread_ts)}"
        await self.store.set(key, memory_to_json(memory), self.settings.thread_ttl_days * 86400)
        if memory.request is not None:  # the assistant panel offers a channel's last sized model again
            await self.store.set(f"last:{_part(team)}:{_part(channel)}", memory.request.as_json(),
                                 self.settings.thread_ttl_days * 86400)  # fmt: skip

    async def forget_team(self, team: str | None) -> int:
        """Everything headroom remembers about a workspace's conversations (on uninstall or revoked tokens)."""
        for kind in ("last", "assistant"):
            await self.store.delete_prefix(f"{kind}:{_part(team)}:")
        return await self.store.delete_prefix(f"thread:{_part(team)}:")

    # --- the assistant panel and feedback ---------------------------------------------

    async def last_request(self, team: str | None, channel: str) -> Request | None:
        """The last request sized in a channel (any of its threads), or None."""
        raw = await self.store.get(f"last:{_part(team)}:{_part(channel)}")
        try:
            return Request.from_data(json.loads(raw)) if raw else None
        except (ValueError, TypeError):
            return None

    async def mark_assistant_thread(self, team: str | None, channel: str, thread_ts: str) -> None:
        """A thread Slack opened in the assistant panel: its answers get a status and a title."""
        key = f"assistant:{_part(team)}:{_part(channel)}:{_part(thread_ts)}"
        await self.store.set(key, "1", self.settings.thread_ttl_days * 86400)

    async def is_assistant_thread(self, team: str | None, channel: str, thread_ts: str) -> bool:
        return await self.store.get(f"assistant:{_part(team)}:{_part(channel)}:{_part(thread_ts)}") is not None

    async def save_feedback(self, identity: tuple[str, ...], record: str) -> None:
        """One person's latest feedback of one kind on one answer (a changed mind replaces it)."""
        digest = hashlib.sha256("\x1f".join(identity).encode()).hexdigest()[:32]
        await self.store.set(f"feedback:{digest}", record, self.settings.feedback_ttl_days * 86400)

    async def feedback(self) -> list[str]:
        """Every stored feedback record (JSON), for `headroom feedback export`."""
        return list((await self.store.items("feedback:")).values())
