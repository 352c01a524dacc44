"""Catalog rows into the DB as "in backup, not local", and out again once restored.

A recovered session gets its real sessions row, its usage and tool rows (so
lists and totals are right at once) and placeholder `sources` rows that name
its files with `bytes_read = 0` and no `imported_at`: nothing reads them as
local bytes (the import's "already held" check wants `bytes_read = size`).
The `recovered` table marks the session and keeps its catalog, so a restore
that fails half-way can put the rows back without downloading anything.

Rows only ever get added here: a session the DB already knows is left alone,
which is what makes a rebuild safe to run on a DB that is only partly lost.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import zstandard

from core.local.db.database import Database, Transaction
from core.packing.manifest import Manifest
from core.recovery.catalog import SESSION_COLUMNS, SOURCE_COLUMNS, TOOL_COLUMNS, USAGE_COLUMNS

_PLACEHOLDERS = "SELECT id FROM sources WHERE session_id = ? AND imported_at IS NULL " \
    "AND bytes_read = 0"  # fmt: skip


def now() -> str:
    return datetime.now(UTC).isoformat()


class Batch:
    """Rows gathered in memory and written with a few `executemany`s: a rebuild of
    thousands of sessions must not pay a round trip to SQLite per row.

    Made inside the transaction that writes it (`open_batch`), which holds the DB's
    write lock, so the source ids it hands out cannot be taken meanwhile."""

    def __init__(self, sessions: set[str], paths: set[str], backups: set[tuple[str, str, str]],
                 next_source: int) -> None:  # fmt: skip
        self._sessions = sessions
        self._paths = paths
        self._backups = backups
        self._next = next_source
        self.rows: dict[str, list[list[Any]]] = {
            k: [] for k in ("phases", "sessions", "sources", "usage", "tools", "recovered",
                            "backups")
        }  # fmt: skip

    def known(self, session_id: str) -> bool:
        return session_id in self._sessions

    def add_session(
        self, doc: dict[str, Any] | None, manifest: Manifest | None, *, session_id: str,
        phase: str | None, target: str, tier: int, prefix: str | None,
    ) -> bool:  # fmt: skip
        """One session from its catalog (or, lacking one, its manifest alone); False when
        the DB already knows it."""
        if session_id in self._sessions:
            return False
        self._sessions.add(session_id)
        created = manifest.created_at.isoformat() if manifest is not None else now()
        if doc is not None:
            self.rows["sessions"].append(_session_row(doc["session"], created))
            self.add_rows(session_id, doc)
        else:  # no catalog (older than catalogs, or lost): the manifest's id, phase, files
            self.rows["sessions"].append(_session_row({"id": session_id, "phase": phase}, created))
        blob = None if doc is None else zstandard.ZstdCompressor().compress(orjson.dumps(doc))
        self.rows["recovered"].append([session_id, target, tier, prefix, blob, now()])
        return True

    def add_rows(self, session_id: str, doc: dict[str, Any]) -> None:
        ids: dict[str, int] = {}
        for src in doc.get("sources", []):
            path = str(src["path"])
            if path in self._paths:
                continue  # a file this DB holds under another session: never two rows for it
            self._paths.add(path)
            self._next += 1
            ids[path] = self._next
            self.rows["sources"].append(
                [self._next, session_id, *(src.get(c) for c in SOURCE_COLUMNS)]
            )
        fallback = next(iter(ids.values()), 0)
        self.rows["usage"] += [
            [session_id, ids.get(u.get("source") or "", fallback),
             *(u.get(c) for c in USAGE_COLUMNS)] for u in doc.get("usage", [])
        ]  # fmt: skip
        self.rows["tools"] += [
            [session_id, ids.get(t.get("source") or "", fallback),
             *(t.get(c) for c in TOOL_COLUMNS)] for t in doc.get("tool_calls", [])
        ]  # fmt: skip

    def add_backup(self, session_id: str, target: str, prefix: str, manifest_text: str,
                   manifest: Manifest) -> None:  # fmt: skip
        """The backup as `restore` and `verify` expect it; skipped when the DB has it."""
        if (session_id, prefix, manifest_text) in self._backups:
            return
        self._backups.add((session_id, prefix, manifest_text))
        raw = sum(f.size for f in manifest.files)
        stored = sum(f.stored_size for f in manifest.files) + len(manifest_text.encode())
        self.rows["backups"].append(
            [session_id, target, manifest.phase, prefix, manifest_text, raw, stored,
             manifest.created_at.isoformat(), now(), "ok"]
        )  # fmt: skip

    def add_phase(self, row: dict[str, Any]) -> None:
        self.rows["phases"].append(
            [row["name"], row.get("status") or "closed", row.get("created_at") or now(),
             row.get("closed_at")]
        )  # fmt: skip

    async def write(self, tx: Transaction) -> None:
        marks = ", ".join("?" * len(SESSION_COLUMNS))
        statements = (
            ("phases", "INSERT OR IGNORE INTO phases(name, status, created_at, closed_at) "
                       "VALUES (?,?,?,?)"),
            ("sessions", f"INSERT INTO sessions({', '.join(SESSION_COLUMNS)}) VALUES ({marks})"),
            ("sources", f"INSERT INTO sources(id, session_id, {', '.join(SOURCE_COLUMNS)}, "
                        f"bytes_read) VALUES (?, ?, {', '.join('?' * len(SOURCE_COLUMNS))}, 0)"),
            ("usage", f"INSERT OR IGNORE INTO usage(session_id, source_id, "
                      f"{', '.join(USAGE_COLUMNS)}) VALUES (?, ?, "
                      f"{', '.join('?' * len(USAGE_COLUMNS))})"),
            ("tools", f"INSERT OR IGNORE INTO tool_calls(session_id, source_id, "
                      f"{', '.join(TOOL_COLUMNS)}) VALUES (?, ?, "
                      f"{', '.join('?' * len(TOOL_COLUMNS))})"),
            ("recovered", "INSERT OR REPLACE INTO recovered(session_id, target, tier, prefix, "
                          "catalog, recovered_at) VALUES (?,?,?,?,?,?)"),
            ("backups", "INSERT INTO backups(session_id, target, phase, prefix, manifest, "
                        "raw_bytes, stored_bytes, created_at, verified_at, verify_status) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?)"),
        )  # fmt: skip
        for name, sql in statements:
            if self.rows[name]:
                await tx.executemany(sql, self.rows[name])
                self.rows[name] = []


async def open_batch(tx: Transaction, target: str | None = None) -> Batch:
    """A batch that knows what the DB holds already (three reads, whatever its size)."""
    sessions = {str(r[0]) for r in await tx.fetchall("SELECT id FROM sessions")}
    paths = {str(r[0]) for r in await tx.fetchall("SELECT path FROM sources")}
    backups = {
        (str(r[0]), str(r[1]), str(r[2]))
        for r in await tx.fetchall(
            "SELECT session_id, prefix, manifest FROM backups WHERE target = ?", (target,)
        )
    }
    top = await tx.fetchone("SELECT COALESCE(max(id), 0) FROM sources")
    return Batch(sessions, paths, backups, int(top[0]) if top else 0)


async def in_backup_only(db: Database, session_id: str) -> bool:
    """Recovered and not restored: the DB has its rows but none of its bytes."""
    row = await db.fetchone(
        "SELECT 1 FROM recovered WHERE session_id = ? AND restored_at IS NULL", (session_id,)
    )
    return row is not None


async def release(db: Database, session_ids: list[str]) -> None:
    """Drops the placeholders before a restore's import brings the real rows."""
    async with db.transaction() as tx:
        for sid in session_ids:
            if await tx.fetchone("SELECT 1 FROM recovered WHERE session_id = ? "
                                 "AND restored_at IS NULL", (sid,)) is None:  # fmt: skip
                continue
            ids = f"SELECT id FROM sources WHERE id IN ({_PLACEHOLDERS})"
            await tx.execute(f"DELETE FROM usage WHERE source_id IN ({ids})", (sid,))
            await tx.execute(f"DELETE FROM tool_calls WHERE source_id IN ({ids})", (sid,))
            await tx.execute(f"DELETE FROM sources WHERE id IN ({ids})", (sid,))


async def settle(db: Database, session_ids: list[str]) -> list[str]:
    """After the import: restored sessions are marked; one with nothing imported gets its
    catalog rows back (listed and totalled again). Returns the ones that came back."""
    done = []
    async with db.transaction() as tx:
        for sid in session_ids:
            row = await tx.fetchone("SELECT catalog FROM recovered WHERE session_id = ? "
                                    "AND restored_at IS NULL", (sid,))  # fmt: skip
            if row is None:
                continue
            local = await tx.fetchone(
                "SELECT 1 FROM sources WHERE session_id = ? AND imported_at IS NOT NULL", (sid,)
            )
            if local is not None:
                await tx.execute("UPDATE recovered SET restored_at = ? WHERE session_id = ?",
                                 (now(), sid))  # fmt: skip
                done.append(sid)
            elif row[0] is not None:
                doc = orjson.loads(zstandard.ZstdDecompressor().decompress(row[0]))
                batch = await open_batch(tx)
                batch.add_rows(sid, doc)
                await batch.write(tx)
    return done


async def waiting_in_phase(db: Database, phase: str, sessions: list[str] | None) -> list[str]:
    """The phase's recovered sessions not yet restored (all, or those named)."""
    rows = await db.fetchall(
        "SELECT r.session_id FROM recovered r JOIN sessions s ON s.id = r.session_id "
        "WHERE s.phase = ? AND r.restored_at IS NULL",
        (phase,),
    )
    found = [str(r[0]) for r in rows]
    return found if sessions is None else [s for s in found if s in set(sessions)]


_REQUIRED = {"source": "unknown", "message_count": 0, "is_subagent": 0}


def _session_row(values: dict[str, Any], updated_at: str) -> list[Any]:
    """The row in column order, with the DB's NOT NULL columns filled in when the catalog
    leaves them out (a session known only by its manifest, or an older catalog)."""
    row = {**_REQUIRED, "updated_at": updated_at}
    row.update({k: v for k, v in values.items() if v is not None})
    return [row.get(c) for c in SESSION_COLUMNS]
