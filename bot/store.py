"""Key-value storage for the bot: one interface, a Redis implementation, an in-memory one.

Values are strings (JSON, written by bot/state.py); keys are built there too. The
resilient wrapper keeps the bot answering when Redis is down: it falls back to the
in-process store, logs one warning per outage (and one "redis is back" when it answers
again), and keeps its own memory of first deliveries authoritative: a Slack retry that
arrives after Redis restarted empty is still recognised by the process that saw the first.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Protocol

log = logging.getLogger("headroom.store")


class Store(Protocol):
    async def get(self, key: str) -> str | None: ...
    async def set(self, key: str, value: str, ttl_s: int) -> None: ...
    async def set_nx(self, key: str, value: str, ttl_s: int) -> bool: ...
    async def incr(self, key: str, ttl_s: int) -> int: ...
    async def delete_prefix(self, prefix: str) -> int: ...
    async def items(self, prefix: str) -> dict[str, str]: ...
    async def ping(self) -> bool: ...
    async def close(self) -> None: ...


class MemoryStore:
    """In-process store with expiry and a size cap (oldest keys go first)."""

    def __init__(self, max_keys: int = 50_000) -> None:
        self._data: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._max_keys = max_keys

    def _live(self, key: str) -> str | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[1] < time.monotonic():
            del self._data[key]
            return None
        return item[0]

    def _put(self, key: str, value: str, ttl_s: int) -> None:
        self._data[key] = (value, time.monotonic() + ttl_s)
        self._data.move_to_end(key)
        while len(self._data) > self._max_keys:
            self._data.popitem(last=False)

    async def get(self, key: str) -> str | None:
        return self._live(key)

    async def set(self, key: str, value: str, ttl_s: int) -> None:
        self._put(key, value, ttl_s)

    async def set_nx(self, key: str, value: str, ttl_s: int) -> bool:
        if self._live(key) is not None:
            return False
        self._put(key, value, ttl_s)
        return True

    async def incr(self, key: str, ttl_s: int) -> int:
        current = self._live(key)
        value = int(current or 0) + 1
        if current is None:
            self._put(key, str(value), ttl_s)
        else:
            self._data[key] = (str(value), self._data[key][1])
        return value

    async def delete_prefix(self, prefix: str) -> int:
        doomed = [key for key in self._data if key.startswith(prefix)]
        for key in doomed:
            del self._data[key]
        return len(doomed)

    async def items(self, prefix: str) -> dict[str, str]:
        """Every live key under `prefix` and its value (feedback export)."""
        found = {key: self._live(key) for key in list(self._data) if key.startswith(prefix)}
        return {key: value for key, value in found.items() if value is not None}

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._data.clear()


class RedisStore:
    """Redis (or ElastiCache) through redis-py's asyncio client, with short timeouts."""

    def __init__(self, url: str, timeout_s: float = 0.5, prefix: str = "headroom:") -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, decode_responses=True
        )
        self._prefix = prefix

    async def get(self, key: str) -> str | None:
        value = await self._redis.get(self._prefix + key)
        return value if value is None or isinstance(value, str) else value.decode()

    async def set(self, key: str, value: str, ttl_s: int) -> None:
        await self._redis.set(self._prefix + key, value, ex=ttl_s)

    async def set_nx(self, key: str, value: str, ttl_s: int) -> bool:
        return bool(await self._redis.set(self._prefix + key, value, ex=ttl_s, nx=True))

    async def incr(self, key: str, ttl_s: int) -> int:
        value = int(await self._redis.incr(self._prefix + key))
        if value == 1:  # first hit of the window starts its clock (EXPIRE NX needs Redis 7)
            await self._redis.expire(self._prefix + key, ttl_s)
        return value

    async def delete_prefix(self, prefix: str) -> int:
        """SCAN (never KEYS: it would block Redis) and UNLINK in batches; `prefix` holds no glob characters."""
        deleted, batch = 0, []
        async for key in self._redis.scan_iter(match=self._prefix + prefix + "*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                deleted += int(await self._redis.unlink(*batch))
                batch = []
        if batch:
            deleted += int(await self._redis.unlink(*batch))
        return deleted

    async def items(self, prefix: str) -> dict[str, str]:
        """SCAN for the keys, MGET their values in batches; keys come back without the store's prefix."""
        found: dict[str, str] = {}
        batch: list[str] = []

        async def read() -> None:
            for key, value in zip(batch, await self._redis.mget(batch), strict=True):
                if value is not None:
                    found[key[len(self._prefix):]] = value if isinstance(value, str) else value.decode()
            batch.clear()

        async for key in self._redis.scan_iter(match=self._prefix + prefix + "*", count=500):
            batch.append(key if isinstance(key, str) else key.decode())
            if len(batch) >= 500:
                await read()
        if batch:
            await read()
        return found

    async def ping(self) -> bool:
        return bool(await self._redis.ping())

    async def close(self) -> None:
        await self._redis.aclose()


class ResilientStore:
    """Redis first; on any Redis error, the local store (and one warning per outage), retried after a pause."""

    def __init__(
        self,
        primary: Store,
        local: MemoryStore | None = None,
        retry_after_s: float = 1.0,
        on_error=None,  # noqa: ANN001
    ) -> None:
        self.primary = primary
        self.on_error = on_error  # called with the operation name, e.g. for a metric
        self.local = local or MemoryStore()
        self._retry_after_s = retry_after_s
        self._down_until = 0.0
        self._down = False  # in an outage: from the first failure to the first success after it
        self.outages = 0

    @property
    def degraded(self) -> bool:
        return time.monotonic() < self._down_until

    def _failed(self, operation: str, exc: Exception) -> None:
        if self.on_error:
            self.on_error(operation)
        if not self._down:
            self._down = True
            self.outages += 1
            log.warning("redis unavailable (%s: %s); answering from the local store", operation, type(exc).__name__)
        self._down_until = time.monotonic() + self._retry_after_s

    def _succeeded(self) -> None:
        self._down_until = 0.0
        if self._down:
            self._down = False
            log.info("redis is back")

    async def _try(self, operation: str, call):  # noqa: ANN001, ANN202 - thin dispatch helper
        if self.degraded:
            return _FAILED
        try:
            result = await call()
        except Exception as exc:  # noqa: BLE001 - any Redis failure means: use the local store
            self._failed(operation, exc)
            return _FAILED
        self._succeeded()
        return result

    async def get(self, key: str) -> str | None:
        value = await self._try("get", lambda: self.primary.get(key))
        if value is _FAILED or value is None:
            return await self.local.get(key)
        return value

    async def set(self, key: str, value: str, ttl_s: int) -> None:
        await self.local.set(key, value, ttl_s)
        await self._try("set", lambda: self.primary.set(key, value, ttl_s))

    async def set_nx(self, key: str, value: str, ttl_s: int) -> bool:
        """First time for `key`? This process's memory wins when it has seen the key: a Redis that
        restarted empty (or a write that never reached it during an outage) must not make a
        duplicate look new."""
        if await self.local.get(key) is not None:
            return False
        first = await self._try("set_nx", lambda: self.primary.set_nx(key, value, ttl_s))
        if first is _FAILED:
            return await self.local.set_nx(key, value, ttl_s)
        await self.local.set(key, value, ttl_s)
        return bool(first)

    async def incr(self, key: str, ttl_s: int) -> int:
        value = await self._try("incr", lambda: self.primary.incr(key, ttl_s))
        return await self.local.incr(key, ttl_s) if value is _FAILED else int(value)

    async def delete_prefix(self, prefix: str) -> int:
        local = await self.local.delete_prefix(prefix)
        remote = await self._try("delete", lambda: self.primary.delete_prefix(prefix))
        return local if remote is _FAILED else max(local, int(remote))

    async def items(self, prefix: str) -> dict[str, str]:
        remote = await self._try("get", lambda: self.primary.items(prefix))
        return await self.local.items(prefix) if remote is _FAILED else dict(remote)

    async def ping(self) -> bool:
        try:
            ok = await self.primary.ping()
        except Exception as exc:  # noqa: BLE001
            self._failed("ping", exc)
            return False
        self._succeeded()
        return ok

    async def close(self) -> None:
        await self.primary.close()


_FAILED = object()


def build_store(
    redis_url: str | None,
    timeout_s: float = 0.5,
    retry_after_s: float = 1.0,
    on_error=None,  # noqa: ANN001
) -> Store:
    """Redis when REDIS_URL is set (resilient), otherwise in-memory (logged: state is per process)."""
    if not redis_url:
        log.info("REDIS_URL is not set: using an in-memory store (cache and threads live in this process only)")
        return MemoryStore()
    log.info("using Redis for cache, threads and de-duplication")
    return ResilientStore(RedisStore(redis_url, timeout_s), retry_after_s=retry_after_s, on_error=on_error)
