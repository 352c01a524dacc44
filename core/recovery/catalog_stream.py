"""A session's catalog written straight from the DB file into a zstd frame on disk.

Every backup of a session writes its catalog (core/recovery/catalog.py). Built
as Python dicts on the event loop, a long session's thousands of usage and
tool rows cost more time and memory than packing its files; here SQLite renders
each row as JSON itself (`json_object`, keys in sorted order, so the bytes are
the canonical form `catalog.encode` writes) and the rows stream through a
read-only connection (the job's pool) into the compressor, a few hundred at a
time, in a worker thread: the service's connection and the event loop stay free.
"""

from __future__ import annotations

import functools
import hashlib
import sqlite3
import threading
from pathlib import Path
from typing import IO, cast

import orjson
import zstandard

from core.errors import BadInputError
from core.local.db.read_pool import ReadPool
from core.local.db.schema import MIGRATIONS
from core.packing import Packed
from core.packing.compress import HashingWriter
from core.recovery.catalog import (
    CATALOG_VERSION,
    KIND_PHASE,
    KIND_SESSION,
    SESSION_COLUMNS,
    SOURCE_COLUMNS,
    TOOL_COLUMNS,
    USAGE_COLUMNS,
)

_ROWS_AT_ONCE = 512


def _json_object(alias: str, table: str, columns: tuple[str, ...], *, tied: bool) -> str:
    """`json_object(...)` of the columns (plus `source`, the file's path) in key order."""
    keys = sorted((*columns, "source") if tied else columns)
    text = _text_columns(table)
    parts = [f"'{k}', {'s.path' if tied and k == 'source' else _value(f'{alias}.{k}', k in text)}"
             for k in keys]  # fmt: skip
    return f"json_object({', '.join(parts)})"


def _value(column: str, text: bool) -> str:
    """SQLite writes a REAL with 15 digits; 17 give back the very double Python would.
    A TEXT column never holds a REAL (its affinity turns numbers into text), so it goes
    as it is: the check on every value was a third of the queries' time."""
    if text:
        return column
    return (
        f"CASE typeof({column}) WHEN 'real' THEN json(printf('%!.17g', {column})) ELSE {column} END"
    )


@functools.cache
def _text_columns(table: str) -> frozenset[str]:
    """The table's TEXT columns, read from the schema itself (every migration applied to
    an empty DB in memory), so a column whose type changes is never taken for text."""
    conn = sqlite3.connect(":memory:")
    try:
        for step in MIGRATIONS:
            conn.executescript(step)
        return frozenset(
            str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")
            if str(r[2]).upper() == "TEXT"
        )  # fmt: skip
    finally:
        conn.close()


_QUERIES_LOCK = threading.Lock()


def _queries() -> dict[str, str]:
    """Made on first use (reading the schema costs a few milliseconds), once: a backup's
    first sessions ask from several threads at the same moment."""
    with _QUERIES_LOCK:
        return _made_queries()


@functools.cache
def _made_queries() -> dict[str, str]:
    return {
        "session": f"SELECT {_json_object('x', 'sessions', SESSION_COLUMNS, tied=False)} "
        "FROM sessions x WHERE id = ?",
        "sources": f"SELECT {_json_object('x', 'sources', SOURCE_COLUMNS, tied=False)} "
        "FROM sources x WHERE session_id = ? ORDER BY path",
        "usage": f"SELECT {_json_object('x', 'usage', USAGE_COLUMNS, tied=True)} FROM usage x "
        "LEFT JOIN sources s ON s.id = x.source_id AND s.session_id = x.session_id "
        "WHERE x.session_id = ? ORDER BY x.message_key, x.request_id",
        "tool_calls": f"SELECT {_json_object('x', 'tool_calls', TOOL_COLUMNS, tied=True)} "
        "FROM tool_calls x "
        "LEFT JOIN sources s ON s.id = x.source_id AND s.session_id = x.session_id "
        "WHERE x.session_id = ? ORDER BY x.source_id, x.tool_use_id",
    }


class _Out:
    """Plain JSON in, hashed; handed on to the compressor."""

    def __init__(self, compressor: zstandard.ZstdCompressionWriter) -> None:
        self._z = compressor
        self.raw = hashlib.sha256()
        self.raw_size = 0

    def write(self, data: bytes) -> None:
        self.raw.update(data)
        self.raw_size += len(data)
        self._z.write(data)


class CatalogReader:
    """Writes catalogs through the job's read connections (see core/local/db/read_pool)."""

    def __init__(self, pool: ReadPool) -> None:
        self._pool = pool

    def write(self, session_id: str, dst: Path) -> Packed:
        """Blocking. The same document as `catalog.session_catalog`, in one checksummed
        zstd frame at `dst`; digests of the JSON and of the stored bytes in one pass."""
        with self._pool.borrow() as conn:
            return _write(conn, session_id, dst)


def _write(conn: sqlite3.Connection, session_id: str, dst: Path) -> Packed:
    conn.execute("BEGIN")  # one snapshot of the session across the four queries
    with open(dst, "wb") as fh:
        stored = HashingWriter(fh)
        cctx = zstandard.ZstdCompressor(level=3, write_checksum=True)
        with cctx.stream_writer(cast(IO[bytes], stored), closefd=False) as z:
            out = _Out(z)
            _session(conn, session_id, out)
    return Packed(out.raw_size, out.raw.hexdigest(), stored.size, stored.sha256, stored.md5)


def write_phase(pool: ReadPool, phase: str, sink: IO[bytes]) -> None:
    """Blocking. The phase catalog (`catalog.phase_catalog` of every session of the
    phase, canonical JSON) as one checksummed zstd frame into `sink`, rendered a few
    hundred rows at a time: an archive makes it while its tarball is being built, and
    a phase's rows as Python dicts would sit in memory beside the compressor's."""
    with pool.borrow() as conn:
        conn.execute("BEGIN")  # one snapshot of the whole phase
        ids = [str(r[0]) for r in conn.execute(
            "SELECT id FROM sessions WHERE phase = ? ORDER BY id", (phase,))]  # fmt: skip
        cctx = zstandard.ZstdCompressor(level=3, write_checksum=True)
        with cctx.stream_writer(sink, closefd=False) as z:
            out = _Out(z)
            head = {"catalog_version": CATALOG_VERSION, "kind": KIND_PHASE, "phase": phase}
            out.write(orjson.dumps(head, option=orjson.OPT_SORT_KEYS)[:-1] + b',"sessions":[')
            for n, session_id in enumerate(ids):  # by id, as `phase_catalog` sorts them
                if n:
                    out.write(b",")
                _session(conn, session_id, out)
            out.write(b"]}")


def _session(conn: sqlite3.Connection, session_id: str, out: _Out) -> None:
    """One session's catalog object, keys in sorted order as the canonical form has them."""
    queries = _queries()
    row = conn.execute(queries["session"], (session_id,)).fetchone()
    if row is None:
        raise BadInputError(f"No session {session_id!r} to describe")
    head = {"catalog_version": CATALOG_VERSION, "kind": KIND_SESSION}
    out.write(orjson.dumps(head, option=orjson.OPT_SORT_KEYS)[:-1])
    out.write(b',"session":' + str(row[0]).encode())
    out.write(b',"session_id":' + orjson.dumps(session_id))
    for name in ("sources", "tool_calls", "usage"):
        out.write(f',"{name}":['.encode())
        _rows(conn.execute(queries[name], (session_id,)), out)
        out.write(b"]")
    out.write(b"}")


def _rows(cursor: sqlite3.Cursor, out: _Out) -> None:
    first = True
    while batch := cursor.fetchmany(_ROWS_AT_ONCE):
        text = ",".join(r[0] for r in batch).encode()
        out.write(text if first else b"," + text)
        first = False
