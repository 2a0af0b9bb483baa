"""A cache within a size in bytes, the first kept dropped first: what the messages kept between a
thread's turns live in (decoded: storage/serde.py; converted: wire.py).

First in, first out rather than least recently used: a hit then costs a dict lookup and nothing
else, and a hot entry dropped is kept again at its next miss. Reading takes no lock (a dict
lookup is atomic); keeping does, as LangGraph's synchronous API decodes on worker threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """`cost(key, value)`: the bytes an entry holds, an estimate. `hits` and `misses` are counted
    by the caller, which alone knows whether what it found serves (metrics read them)."""

    def __init__(self, limit: int, cost: Callable[[K, V], int]):
        self.limit = limit
        self.size = 0
        self.hits = self.misses = 0
        self._cost = cost
        self._kept: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        return self._kept.get(key)

    def keep(self, key: K, value: V) -> None:
        """Keep `value` under `key` (the newest; replacing what was there), then drop the first
        kept while the entries cost more than `limit`."""
        with self._lock:
            if (old := self._kept.pop(key, None)) is not None:
                self.size -= self._cost(key, old)
            self._kept[key] = value
            self.size += self._cost(key, value)
            while self.size > self.limit and self._kept:
                gone, value = self._kept.popitem(last=False)
                self.size -= self._cost(gone, value)

    def __len__(self) -> int:
        return len(self._kept)
