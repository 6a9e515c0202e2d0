"""A bounded, thread-safe memo: the engine's only kind of cache.

Every cache in the engine is one of these, owned by an object (the catalog, a served
model) rather than a module, so several threads can plan at once and memory stays
bounded however many distinct requests a long-running bot sees.
"""

from __future__ import annotations

import _thread  # threading.Lock is _thread's lock; importing threading costs a start-up ~0.6 ms (issue 14)
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class Memo:
    """Bounded key -> value store: when full, the oldest entries go first.

    Reads take no lock (one dict lookup is atomic); writes and evictions do. A missing value
    is computed outside the lock: two threads missing the same key may both compute it, and
    the values are equal (pure functions of the key), so the second simply replaces the first.
    """

    def __init__(self, maxsize: int = 4096) -> None:
        if maxsize < 1:
            raise ValueError("a memo holds at least one entry")
        self.maxsize = maxsize
        self._data: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = _thread.allocate_lock()

    def get(self, key: Hashable, compute: Callable[..., T], *args: Any) -> T:
        """The value for `key`, computing `compute(*args)` when missing (args, not a closure: hits allocate less)."""
        try:
            return self._data[key]  # type: ignore[return-value]
        except KeyError:
            pass
        value = compute(*args)
        with self._lock:
            self._data[key] = value
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._data)
