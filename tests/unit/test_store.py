"""The store: expiry, SET NX, counters, and falling back when Redis fails."""

from __future__ import annotations

import asyncio
import logging

import pytest

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

    async def delete_prefix(self, prefix):  # noqa: ANN001, ANN201
        await self._check()
        return await super().delete_prefix(prefix)

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
        await state.save_thread("T1", "C1", "1.0", Memory(request, "g6e.12xlarge"))
        loaded = await state.thread("T1", "C1", "1.0")
        assert loaded == Memory(request, "g6e.12xlarge")
        await state.store.set("thread:T1:C1:2.0", "{not json", 60)
        assert await state.thread("T1", "C1", "2.0") is None

    run(scenario())


def test_deliveries_are_answered_once_per_event_and_per_message() -> None:
    state = BotState(MemoryStore(), Settings())

    async def scenario() -> None:
        assert await state.first_delivery("Ev1", "C1", "1.0")
        assert not await state.first_delivery("Ev1", "C1", "1.0")  # retry
        assert not await state.first_delivery("Ev2", "C1", "1.0")  # same message, other event

    run(scenario())


def test_rate_limit_counts_per_user_per_minute_with_one_notice_then_silence() -> None:
    state = BotState(MemoryStore(), Settings(rate_limit_per_minute=2))

    async def scenario() -> list[str]:
        return [await state.admit("U1") for _ in range(5)] + [await state.admit("U2")]

    assert run(scenario()) == ["ok", "ok", "notice", "silent", "silent", "ok"]


def test_a_command_or_click_is_new_once_per_identity() -> None:
    state = BotState(MemoryStore(), Settings())

    async def scenario() -> list[bool]:
        return [await state.first_time("cmd", "1.2"), await state.first_time("cmd", "1.2"),
                await state.first_time("act", "1.2"), await state.first_time("act", "U1", "C1", "1.0", "9.9")]  # fmt: skip

    assert run(scenario()) == [True, False, True, True]


def test_forgetting_a_workspace_deletes_its_threads_only() -> None:
    state = BotState(MemoryStore(), Settings())
    memory = Memory(Request(model="llama-3.1-8b"), None)

    async def scenario() -> tuple[int, Memory | None, Memory | None, Memory | None]:
        await state.save_thread("TGONE", "C1", "1.0", memory)
        await state.save_thread("TGONE", "C2", "2.0", memory)
        await state.save_thread("TSTAY", "C1", "1.0", memory)
        await state.store.set("thread:C9:9.0", '{"request": null, "top": null}', 60)  # saved before keys had a team
        forgotten = await state.forget_team("TGONE")
        return (
            forgotten,
            await state.thread("TGONE", "C1", "1.0"),
            await state.thread("TSTAY", "C1", "1.0"),
            await state.thread("TSTAY", "C9", "9.0"),
        )

    forgotten, gone, kept, legacy = run(scenario())
    assert (forgotten, gone, kept, legacy) == (2, None, memory, Memory(None, None))


def test_a_key_seen_before_redis_restarted_empty_is_still_not_new(caplog: pytest.LogCaptureFixture) -> None:
    primary = MemoryStore()
    store = ResilientStore(primary, retry_after_s=0.0)

    async def scenario() -> list[bool]:
        first = await store.set_nx("evt:1", "1", 60)
        await primary.close()  # Redis restarted without its data
        return [first, await store.set_nx("evt:1", "1", 60), await store.set_nx("evt:2", "1", 60)]

    assert run(scenario()) == [True, False, True]


def test_an_outage_is_logged_once_and_its_end_once(caplog: pytest.LogCaptureFixture) -> None:
    primary = BrokenStore()
    store = ResilientStore(primary, retry_after_s=0.0)

    async def scenario() -> None:
        for _ in range(5):
            await store.get("x")
            await store.ping()
        primary.broken = False
        for _ in range(3):
            await store.get("x")
            await store.ping()

    with caplog.at_level(logging.INFO, logger="headroom.store"):
        run(scenario())
    messages = [r.getMessage() for r in caplog.records]
    assert sum("redis unavailable" in m for m in messages) == 1
    assert messages.count("redis is back") == 1
    assert store.outages == 1
