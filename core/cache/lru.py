"""A least-recently-used map bounded both by entry count and by total weight (bytes).

Both bounds matter: a byte bound alone lets millions of tiny entries pile up
their per-entry overhead, a count bound alone lets a few huge values take all
memory. `OrderedDict` gives O(1) lookup, move-to-end and pop-oldest, which is
all an LRU needs. Not thread-safe: its users live on the event loop.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Lru(Generic[K, V]):
    def __init__(
        self,
        *,
        max_entries: int,
        max_weight: int,
        weigh: Callable[[V], int] = lambda _: 1,
        on_evict: Callable[[K, V], None] | None = None,
    ) -> None:
        """`on_evict` hears of entries pushed out by the bounds (not of `pop` or `clear`)."""
        if max_entries < 0 or max_weight < 0:
            raise ValueError("bounds cannot be negative")
        self.max_entries = max_entries
        self.max_weight = max_weight
        self._weigh = weigh
        self._on_evict = on_evict
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self.weight = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[K]:
        """Oldest first; iterating does not count as use."""
        return iter(self._items)

    def get(self, key: K) -> V | None:
        """The value, now the most recently used; None when absent."""
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]

    def peek(self, key: K) -> V | None:
        """The value without counting a use."""
        item = self._items.get(key)
        return None if item is None else item[0]

    def fits(self, value: V) -> bool:
        return self.max_entries > 0 and self._weigh(value) <= self.max_weight

    def put(self, key: K, value: V) -> bool:
        """Stores `value` as most recently used, evicting the oldest entries as needed.

        A value heavier than the whole bound is not stored (returns False): taking it
        would only flush everything else and then be flushed itself."""
        self.pop(key)
        weight = self._weigh(value)
        if self.max_entries == 0 or weight > self.max_weight:
            return False
        self._items[key] = (value, weight)
        self.weight += weight
        while len(self._items) > self.max_entries or self.weight > self.max_weight:
            old_key, (old_value, old_weight) = self._items.popitem(last=False)
            self.weight -= old_weight
            self.evictions += 1
            if self._on_evict is not None:
                self._on_evict(old_key, old_value)
        return True

    def pop(self, key: K) -> V | None:
        item = self._items.pop(key, None)
        if item is None:
            return None
        self.weight -= item[1]
        return item[0]

    def clear(self) -> None:
        self._items.clear()
        self.weight = 0
