"""The store: expiry, SET NX, counters, and falling back when Redis fails."""

from __future__ import annotations

import asyncio

from bot.settings import Settings
from bot.state import BotState
from bot.store import MemoryStore, ResilientStore
from engine.request import Request
from engine.service import Memory


class BrokenStore(MemoryStore):
    """A Redis stand-in that fails until `healed`."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = True

    async def _check(self) -> None:
        if self.broken:
            raise ConnectionError("redis down")

    async def get(self, key):  # noqa: ANN001, ANN201
        await self._check()
        return await super().get(key)

    async def set(self, key, value, ttl_s):  # noqa: ANN001, ANN201
        await self._check()
        return await super().set(key, value, ttl_s)

    async def set_nx(self, key, value, ttl_s):  # noqa: ANN001, ANN201
        await self._check()
        return await super().set_nx(key, value, ttl_s)

    async def incr(self, key, ttl_s):  # noqa: ANN001, ANN201
        await self._check()
        return await super().incr(key, ttl_s)

    async def ping(self):  # noqa: ANN201
        await self._check()
        return True


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(coro)


def test_memory_store_expires_and_sets_once() -> None:
    store = MemoryStore()

    async def scenario() -> None:
        assert await store.set_nx("k", "1", 60)
        assert not await store.set_nx("k", "2", 60)
        await store.set("gone", "x", -1)
        assert await store.get("gone") is None
        assert [await store.incr("n", 60) for _ in range(3)] == [1, 2, 3]

    run(scenario())


def test_resilient_store_answers_from_memory_while_redis_is_down_and_recovers() -> None:
    primary = BrokenStore()
    store = ResilientStore(primary, retry_after_s=0.0)

    async def scenario() -> None:
        assert await store.set_nx("evt:1", "1", 60)
        assert not await store.set_nx("evt:1", "1", 60)  # still de-duplicated locally
        await store.set("thread:C:1", "{}", 60)
        assert await store.get("thread:C:1") == "{}"
        assert not await store.ping()
        primary.broken = False
        assert await store.ping()
        assert await store.set_nx("evt:2", "1", 60)
        assert await primary.get("evt:2") == "1"  # back on Redis

    run(scenario())
    assert store.outages >= 1


def test_thread_state_round_trips_as_json_and_tolerates_junk() -> None:
    state = BotState(MemoryStore(), Settings())
    request = Request(model="llama-3.3-70b", weights="fp8", families=("g6e",))

    async def scenario() -> None:
        await state.save_thread("C1", "1.0", Memory(request, "g6e.12xlarge"))
        loaded = await state.thread("C1", "1.0")
        assert loaded == Memory(request, "g6e.12xlarge")
        await state.store.set("thread:C1:2.0", "{not json", 60)
        assert await state.thread("C1", "2.0") is None

    run(scenario())


def test_deliveries_are_answered_once_per_event_and_per_message() -> None:
    state = BotState(MemoryStore(), Settings())

    async def scenario() -> None:
        assert await state.first_delivery("Ev1", "C1", "1.0")
        assert not await state.first_delivery("Ev1", "C1", "1.0")  # retry
        assert not await state.first_delivery("Ev2", "C1", "1.0")  # same message, other event

    run(scenario())


def test_rate_limit_counts_per_user_per_minute() -> None:
    state = BotState(MemoryStore(), Settings(rate_limit_per_minute=2))

    async def scenario() -> list[bool]:
        return [await state.allow("U1") for _ in range(3)] + [await state.allow("U2")]

    assert run(scenario()) == [True, True, False, True]
