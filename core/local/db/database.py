"""Async access to the analytics DB.

One aiosqlite connection per service, in autocommit mode with explicit
transactions: a write lock serialises transactions so two coroutines never
interleave statements inside each other's BEGIN…COMMIT.

A statement makes one trip to the connection's thread, its fetch and cursor
close included (aiosqlite's cursor API makes three): with several jobs and
the window all asking small questions, the trips, not SQLite, were the cost.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from core.errors import CorruptDatabaseError, StorageFullError, TierkeeperError
from core.local.db.fixups import FIXUPS
from core.local.db.schema import LATEST, MIGRATIONS

Row = sqlite3.Row
Params = Sequence[Any] | dict[str, Any]
_T = TypeVar("_T")

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=5000",
    "PRAGMA temp_store=MEMORY",
    "PRAGMA cache_size=-32000",
)


def translate_error(exc: sqlite3.Error, path: Path) -> TierkeeperError:
    """Maps SQLite's errors onto ones that tell the user what to do."""
    text = str(exc).lower()
    if "disk is full" in text or ("disk i/o error" in text and "full" in text):
        return StorageFullError(
            f"The disk holding {path} is full; the last batch was not stored",
            hint="free some space and run the command again; nothing stored before is lost",
        )
    if "not a database" in text or "malformed" in text or "file is encrypted" in text:
        return CorruptDatabaseError(
            f"{path} is not a usable SQLite database ({exc})",
            hint="`tierkeeper recover` moves it aside (untouched) and rebuilds the catalog "
            "from your backups",
        )
    return TierkeeperError(f"Database error on {path}: {exc}")


class Database:
    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._write_lock = asyncio.Lock()
        self.on_query: Callable[[str, float], None] | None = None
        """Told ("read" | "tx", seconds) after each read and each transaction (lock
        wait included): the metrics registry's hook, None when nobody counts."""
        self.on_commit: list[Callable[[Sequence[str]], None]] = []
        """Told the statements of each committed transaction: the query cache's signal."""

    @classmethod
    async def open(cls, path: Path, *, migrate: bool = True) -> Database:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        db = cls(conn, path)
        try:
            for pragma in PRAGMAS:
                await conn.execute(pragma)
            if migrate:
                await db.migrate()
        except sqlite3.Error as exc:
            await conn.close()
            raise translate_error(exc, path) from exc
        except BaseException:
            await conn.close()
            raise
        return db

    async def close(self) -> None:
        await self._conn.close()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # schema -----------------------------------------------------------------
    async def user_version(self) -> int:
        row = await self.fetchone("PRAGMA user_version")
        return int(row[0]) if row else 0

    async def migrate(self, target: int = LATEST) -> int:
        """Brings the schema to `target`; returns the version found before."""
        found = await self.user_version()
        if found > LATEST:
            raise CorruptDatabaseError(
                f"{self.path} was written by a newer Tierkeeper (schema {found} > {LATEST})",
                hint="upgrade Tierkeeper to open it",
            )
        for version in range(found, target):
            async with self.transaction() as conn:
                await conn.executescript_in_tx(MIGRATIONS[version])
                fixup = FIXUPS.get(version + 1)
                if fixup is not None:
                    await fixup(conn)
                await conn.execute(f"PRAGMA user_version={version + 1}")
        return found

    # access -----------------------------------------------------------------
    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        start = time.perf_counter()
        async with self._write_lock:
            tx = Transaction(self._conn, self.path)
            try:
                # Inside the try: a task cancelled while BEGIN is in flight still
                # gets its ROLLBACK queued behind it on the connection's thread.
                await self._conn.execute("BEGIN IMMEDIATE")
                yield tx
                await self._conn.execute("COMMIT")
                self._committed(tx.statements, start)
            except sqlite3.Error as exc:
                await self._rollback()
                raise translate_error(exc, self.path) from exc
            except BaseException:
                await self._rollback()
                raise

    async def _rollback(self) -> None:
        try:
            await asyncio.shield(self._conn.execute("ROLLBACK"))
        except (sqlite3.Error, asyncio.CancelledError):
            pass

    async def execute(self, sql: str, params: Params = ()) -> int:
        """A single write in its own transaction (BEGIN, the write and COMMIT in one
        trip to the connection's thread); returns lastrowid."""
        rowid: int = await self._one_trip_write(
            sql, lambda: _on_thread(self._conn, _write_alone, sql, params)
        )
        return rowid

    async def insert_many(self, sql: str, rows: Sequence[Params]) -> list[int]:
        """Several inserts in one transaction and one trip to the connection's thread;
        their rowids in order. For rows that arrive together (a backup's sessions)."""
        rowids: list[int] = await self._one_trip_write(
            sql,
            lambda: self._conn._execute(_insert_all, self._conn._conn, sql, rows),  # type: ignore[no-untyped-call]
        )
        return rowids

    async def _one_trip_write(self, sql: str, trip: Callable[[], Awaitable[_T]]) -> _T:
        """A write that commits on the connection's thread in one trip. A caller that is
        cancelled meanwhile does not stop it: it commits all the same, and whoever listens
        for commits must still hear of it."""
        start = time.perf_counter()
        async with self._write_lock:
            work = asyncio.ensure_future(trip())
            try:
                result = await asyncio.shield(work)
            except asyncio.CancelledError:
                work.add_done_callback(lambda w: self._after(w, [sql], start))
                raise
            except sqlite3.Error as exc:
                raise translate_error(exc, self.path) from exc
        self._committed([sql], start)
        return result

    async def call(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """`fn(connection)` on the connection's own thread: several reads that belong
        together in one trip. Reads only; a write goes through `transaction`."""
        start = time.perf_counter()
        try:
            result: _T = await self._conn._execute(fn, self._conn._conn)  # type: ignore[no-untyped-call]
        except sqlite3.Error as exc:
            raise translate_error(exc, self.path) from exc
        if self.on_query is not None:
            self.on_query("read", time.perf_counter() - start)
        return result

    def _after(self, work: asyncio.Future[Any], statements: list[str], start: float) -> None:
        if not work.cancelled() and work.exception() is None:
            self._committed(statements, start)

    def _committed(self, statements: Sequence[str], start: float) -> None:
        for hook in self.on_commit:
            hook(statements)
        if self.on_query is not None:
            self.on_query("tx", time.perf_counter() - start)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        start = time.perf_counter()
        try:
            rows = await _on_thread(self._conn, _fetch_all, sql, params)
        except sqlite3.Error as exc:
            raise translate_error(exc, self.path) from exc
        if self.on_query is not None:
            self.on_query("read", time.perf_counter() - start)
        return rows

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        start = time.perf_counter()
        try:
            row = await _on_thread(self._conn, _fetch_one, sql, params)
        except sqlite3.Error as exc:
            raise translate_error(exc, self.path) from exc
        if self.on_query is not None:
            self.on_query("read", time.perf_counter() - start)
        return row

    async def scalar(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    async def checkpoint(self) -> None:
        """The PRAGMA answers with a row: its statement is run to the end and closed, or
        the connection's next COMMIT fails with "SQL statements in progress"."""
        async with self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)") as cursor:
            await cursor.fetchall()


class Transaction:
    """Statements inside one BEGIN…COMMIT; errors roll the whole of it back."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self.statements: list[str] = []
        """What was sent, for `Database.on_commit`."""

    async def execute(self, sql: str, params: Params = ()) -> int:
        self.statements.append(sql)
        return await _on_thread(self._conn, _write, sql, params)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        self.statements.append(sql)
        await self._conn.executemany(sql, rows)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return await _on_thread(self._conn, _fetch_all, sql, params)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        return await _on_thread(self._conn, _fetch_one, sql, params)

    async def executescript_in_tx(self, script: str) -> None:
        """Runs a multi-statement script without the implicit COMMIT of executescript."""
        for statement in _split_sql(script):
            self.statements.append(statement)
            await self._conn.execute(statement)


async def _on_thread(
    conn: aiosqlite.Connection, fn: Callable[..., _T], sql: str, params: Params
) -> _T:
    """`fn(raw connection, sql, params)` on the connection's own thread, in one trip."""
    return await conn._execute(fn, conn._conn, sql, params)  # type: ignore[no-untyped-call,no-any-return]


def _fetch_all(raw: sqlite3.Connection, sql: str, params: Params) -> list[Row]:
    cur = raw.execute(sql, params)
    try:
        return cur.fetchall()
    finally:
        cur.close()


def _fetch_one(raw: sqlite3.Connection, sql: str, params: Params) -> Row | None:
    cur = raw.execute(sql, params)
    try:
        row: Row | None = cur.fetchone()
        return row
    finally:
        cur.close()


def _write(raw: sqlite3.Connection, sql: str, params: Params) -> int:
    cur = raw.execute(sql, params)
    try:
        return int(cur.lastrowid or 0)
    finally:
        cur.close()


def _write_alone(raw: sqlite3.Connection, sql: str, params: Params) -> int:
    raw.execute("BEGIN IMMEDIATE")
    try:
        rowid = _write(raw, sql, params)
        raw.execute("COMMIT")
    except BaseException:
        if raw.in_transaction:
            raw.execute("ROLLBACK")
        raise
    return rowid


def _insert_all(raw: sqlite3.Connection, sql: str, rows: Sequence[Params]) -> list[int]:
    raw.execute("BEGIN IMMEDIATE")
    try:
        rowids = [_write(raw, sql, params) for params in rows]
        raw.execute("COMMIT")
    except BaseException:
        if raw.in_transaction:
            raw.execute("ROLLBACK")
        raise
    return rowids


def _split_sql(script: str) -> list[str]:
    """Splits on statement boundaries, keeping trigger bodies whole."""
    out: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out
