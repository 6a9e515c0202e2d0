"""Answer work, kept off the acknowledgement path: a queue, a few workers, lower priority than intake.

A listener acknowledges Slack and `submit`s a job; it never waits for a slot. Workers take jobs
in arrival order, but only once the intake has been quiet for `quiet_s` (no request arrived:
every request already in the event loop has been acknowledged) or the oldest job has waited
`max_defer_s`. So during a burst the event loop spends its time acknowledging (Slack's 3-second
deadline), answers follow right after, and under a flood longer than `max_defer_s` answers still
get their turn. At most `workers` answers are worked on at once.

`InFlight` counts the requests being answered by their identity (a message's channel and ts, a
command's trigger): Slack's retries and an @mention's twin `message` event are one answer, so
shutdown waits for, and reports, each answer once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.blocks import Message

log = logging.getLogger("headroom.answers")

Reply = Callable[[Message], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class ReplyTarget:
    """Where a message to the user goes: a channel (and thread), or a response_url."""

    channel: str = ""
    thread_ts: str | None = None
    response_url: str = ""
    response_type: str = "ephemeral"
    replace_original: bool | None = None


@dataclass(slots=True)
class Job:
    """One request's answer work, small while it waits (a few hundred bytes: thousands may queue in a burst).
    `replied` turns true once the user got a message, so the error boundary never adds a second one;
    `replies` are where a failure may be answered."""

    surface: str
    key: str
    request_id: str
    work: Callable[[Job], Awaitable[None]]
    replies: list[ReplyTarget] = field(default_factory=list)
    replied: bool = False
    queued_at: float = field(default_factory=time.monotonic)


class InFlight:
    """Requests queued or being answered, counted once per identity, so shutdown can wait for them."""

    def __init__(self) -> None:
        self._keys: Counter[str] = Counter()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def count(self) -> int:
        return len(self._keys)

    def enter(self, key: str) -> None:
        self._keys[key] += 1
        self._idle.clear()

    def exit(self, key: str) -> None:
        self._keys[key] -= 1
        if self._keys[key] <= 0:
            del self._keys[key]
        if not self._keys:
            self._idle.set()

    async def drain(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True


class AnswerQueue:
    """Jobs in, `run(job)` called for each by at most `workers` workers, after the intake goes quiet."""

    def __init__(self, run: Callable[[Job], Awaitable[None]], workers: int, quiet_s: float, max_defer_s: float) -> None:
        self._run = run
        self._size = max(1, workers)
        self._quiet_s = quiet_s
        self._max_defer_s = max_defer_s
        self._jobs: deque[Job] = deque()
        self._waiting = asyncio.Event()
        self._turn = asyncio.Lock()
        self._workers: list[asyncio.Task] = []
        self.inflight = InFlight()
        self.last_arrival = 0.0

    def arrived(self) -> None:
        """A request came in (any request, signed or not): answers wait until they stop for a moment."""
        self.last_arrival = time.monotonic()

    def submit(self, job: Job) -> None:
        """Never waits: the acknowledgement goes back to Slack whatever the queue holds."""
        self.inflight.enter(job.key)
        self._jobs.append(job)
        self._waiting.set()
        if not self._workers:
            loop = asyncio.get_running_loop()
            self._workers = [loop.create_task(self._work()) for _ in range(self._size)]

    async def _next(self) -> Job:
        async with self._turn:  # one idle worker at a time watches the intake; the others wait for the turn
            while True:
                if not self._jobs:
                    self._waiting.clear()
                    await self._waiting.wait()
                    continue
                now = time.monotonic()
                quiet_for = now - self.last_arrival
                waited = now - self._jobs[0].queued_at
                if quiet_for >= self._quiet_s or waited >= self._max_defer_s:
                    return self._jobs.popleft()
                await asyncio.sleep(min(self._quiet_s - quiet_for, self._max_defer_s - waited))

    async def _work(self) -> None:
        while True:
            job = await self._next()
            try:
                await self._run(job)
            except Exception:  # noqa: BLE001 - `run` is the error boundary; this only keeps the worker alive
                log.exception("answer worker survived an error outside the error boundary")
            finally:
                self.inflight.exit(job.key)

    async def close(self) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
