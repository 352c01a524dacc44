"""Bring recovered sessions back from Tier 2 into this workspace, checked, and re-import them.

The files land in `<workspace>/restored/<session>/` (each checked against the
manifest by `restore_session`) and are imported with what the catalog says
about them (format, role, session), not guessed from the folder they now sit
in: a Claude Code transcript keeps its project and a subagent its parent. The
placeholders go just before the import and the real rows replace them;
a session whose import brought nothing gets its catalog rows back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import zstandard

from core.local.db.database import Database
from core.local.importers import default_formats
from core.local.importers.base import Format
from core.local.importers.engine import ImportEngine
from core.local.importers.records import SessionMeta, SourceFile
from core.packing.crypto import Key
from core.recovery import apply
from core.remote.base import Store
from core.tier2.backup import restore_session

RESTORED = "restored"
"""The workspace folder restored sessions' files live in."""


@dataclass(slots=True)
class RestoreOutcome:
    restored: list[str] = field(default_factory=list)
    files: int = 0
    messages: int = 0
    failed: list[str] = field(default_factory=list)


def _meta(doc: dict[str, Any]) -> SessionMeta:
    s = doc["session"]
    return SessionMeta(
        id=str(s["id"]), source=str(s["source"]), source_id=s.get("source_id"),
        parent_id=s.get("parent_id"), project=s.get("project"), agent=s.get("agent"),
        title=s.get("title"), cwd=s.get("cwd"), git_branch=s.get("git_branch"),
        model=s.get("model"), started_at=s.get("started_at"), ended_at=s.get("ended_at"),
        is_subagent=bool(s.get("is_subagent")),
    )  # fmt: skip


def _work(doc: dict[str, Any] | None, written: Sequence[Path],
          formats: dict[str, Format]) -> list[tuple[Format, SourceFile]]:  # fmt: skip
    """Each restored file paired with the source row it was; files the catalog does not
    name as sources (the snapshots tarball's contents) are left as files."""
    if doc is None:
        return []
    by_name = {p.name: p for p in written}
    work = []
    for src in doc.get("sources", []):
        path = by_name.get(Path(str(src["path"])).name)
        fmt = formats.get(str(src["format"]))
        if path is None or fmt is None:
            continue
        work.append((fmt, SourceFile(str(path), str(src["format"]), str(src["kind"]),
                                     str(src["role"]), _meta(doc))))  # fmt: skip
    return work


async def restore_one(
    db: Database, store: Store, session_id: str, prefix: str, dest: Path, key: Key | None,
    outcome: RestoreOutcome,
) -> None:  # fmt: skip
    row = await db.fetchone("SELECT catalog FROM recovered WHERE session_id = ?", (session_id,))
    doc = None
    if row is not None and row[0] is not None:
        doc = orjson.loads(zstandard.ZstdDecompressor().decompress(row[0]))
    written = await restore_session(db, store, session_id, prefix, dest, overwrite=True, key=key)
    outcome.files += len(written)
    phase = await db.scalar("SELECT phase FROM sessions WHERE id = ?", (session_id,))
    formats = default_formats()
    work = _work(doc, written, formats)
    await apply.release(db, [session_id])
    engine = ImportEngine(db, formats, phase=phase, skip_known_content=doc is None)
    report = await (engine.run_files(work) if doc is not None else engine.run([str(dest)]))
    outcome.messages += report.rows_stored
    if await apply.settle(db, [session_id]):
        outcome.restored.append(session_id)
    else:
        problems = "; ".join(report.errors) or "nothing could be imported"
        outcome.failed.append(f"{session_id}: {problems}")
