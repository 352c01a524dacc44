"""Answers to the service's analytics queries, kept until a table they read is written.

The service is the only writer of its database (the workspace lock), and every
write is a transaction on the one `Database`, the batch writer's flushes and
the importer's batches included; so a per-table generation counter bumped on
each commit tells exactly when an answer went stale — no TTL, no guessing. A
read-only service does not own the database (another process writes it), so
it gets a disabled cache that always asks SQLite.

Answers are shared, not copied: callers must treat them as read-only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from core.cache.lru import Lru
from core.cache.tables import EVERYTHING, written_tables
from core.local.db.database import Database
from core.metrics.registry import Metrics

QUERY = "query"
"""The layer's name in the metrics."""

_T = TypeVar("_T")


def _weigh(entry: tuple[object, tuple[int, ...]]) -> int:
    value = entry[0]
    return 1 + (len(value) if isinstance(value, list | tuple | dict) else 0)


class QueryCache:
    def __init__(
        self,
        db: Database | None,
        metrics: Metrics | None = None,
        *,
        max_entries: int = 256,
        max_rows: int = 500_000,
        enabled: bool = True,
    ) -> None:
        """`db` is watched for commits; `max_rows` bounds the rows held over all answers."""
        self.metrics = metrics or Metrics()
        self.enabled = enabled
        self._generations: dict[str, int] = {}
        self._everything = 0
        self._answers: Lru[str, tuple[Any, tuple[int, ...]]] = Lru(
            max_entries=max_entries,
            max_weight=max_rows,
            weigh=_weigh,
            on_evict=lambda _k, _v: self.metrics.evicted(QUERY),
        )
        if db is not None and enabled:
            db.on_commit.append(self.committed)

    def committed(self, statements: Sequence[str]) -> None:
        """The database's commit hook: every table written moves on a generation."""
        for table in written_tables(statements):
            if table == EVERYTHING:
                self._everything += 1
            else:
                self._generations[table] = self._generations.get(table, 0) + 1

    def _stamp(self, tables: Iterable[str]) -> tuple[int, ...]:
        return (self._everything, *(self._generations.get(t, 0) for t in tables))

    async def get(
        self,
        name: str,
        args: object,
        tables: Sequence[str],
        compute: Callable[[], Awaitable[_T]],
    ) -> _T:
        """The answer to `name(args)`, computed again only after one of `tables` changed."""
        if not self.enabled:
            return await compute()
        key = f"{name}\x00{args!r}"
        stamp = self._stamp(tables)
        found = self._answers.get(key)
        hit = found is not None and found[1] == stamp
        self.metrics.hit(QUERY) if hit else self.metrics.miss(QUERY)
        if found is not None and hit:
            value: _T = found[0]
            return value
        value = await compute()
        # Stamped with the generations from *before* computing: a commit that landed
        # meanwhile makes the next lookup a miss rather than serve a stale answer.
        self._answers.put(key, (value, stamp))
        return value

    def clear(self) -> None:
        self._answers.clear()
