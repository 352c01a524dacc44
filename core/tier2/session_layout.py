"""Where a session's backup lives on a target and what it is made of: the names, the
facts read from the DB to decide it, and the checks both backup paths share (the
async one in backup.py, the one-thread one for folders in backup_direct.py)."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from core.packing import Packed
from core.packing.compress import decompress_file
from core.packing.crypto import Key
from core.packing.manifest import Manifest, ManifestFile
from core.packing.tarball import pack_tree
from core.remote.base import ObjectInfo

ROOT = "Tierkeeper"
MANIFEST = "manifest.json"
ENCRYPTED = ".enc"
"""Suffix of a stored file encrypted on this machine (see core/packing/crypto.py)."""
SNAPSHOTS = "snapshots.tar"
SNAPSHOTS_DIR = "snapshots"
"""Where a restore puts the session's state snapshots, under the destination folder."""
ONE_AT_A_TIME_ABOVE = 32 << 20
"""Source bytes above which a session's files and catalog go one after another."""


def session_prefix(phase: str | None, session_id: str) -> str:
    return f"{ROOT}/{phase or 'no-phase'}/sessions/session_{session_id}"


def snapshot_names(snapshots: Sequence[Path]) -> set[str]:
    return {p.name.removesuffix(".zst") for p in snapshots}


@dataclass(frozen=True, slots=True)
class SourceRow:
    id: int
    path: str
    kind: str
    sha256: str | None
    size: int


def session_facts(
    conn: sqlite3.Connection, session_id: str, target: str
) -> tuple[str | None, bool, list[SourceRow], str | None] | None:
    """(phase, in backup only, source files, newest verified manifest on the target where
    the session would go now) in one trip to the DB thread; None for an unknown session."""
    row = conn.execute(
        "SELECT phase, EXISTS(SELECT 1 FROM recovered WHERE session_id = s.id "
        "AND restored_at IS NULL) FROM sessions s WHERE id = ?",
        (session_id,),
    ).fetchone()
    if row is None:
        return None
    phase = row[0]
    sources = [
        SourceRow(int(r[0]), str(r[1]), str(r[2]), r[3], int(r[4] or 0))
        for r in conn.execute(
            "SELECT id, path, kind, sha256, size FROM sources WHERE session_id = ? "
            "ORDER BY role, path",
            (session_id,),
        )
    ]
    held = conn.execute(
        "SELECT manifest FROM backups WHERE session_id = ? AND target = ? AND prefix = ? "
        "AND verify_status = 'ok' ORDER BY id DESC LIMIT 1",
        (session_id, target, session_prefix(phase, session_id)),
    ).fetchone()
    return phase, bool(row[1]), sources, None if held is None else str(held[0])


def session_prefixes(conn: sqlite3.Connection, session_ids: Sequence[str]) -> list[str]:
    """Where the sessions' backups go, in one query: the folders a job can have a store
    make before it starts (`folder_maker` in core/remote/base.py). Only sessions with
    files here: one known only from a backup has nothing to send, and its folder would
    stay empty (a session with snapshots alone gets its folder as it is written)."""
    rows = conn.execute(
        "SELECT id, phase FROM sessions s WHERE id IN (SELECT value FROM json_each(?)) "
        "AND EXISTS(SELECT 1 FROM sources WHERE session_id = s.id) "
        "AND NOT EXISTS(SELECT 1 FROM recovered WHERE session_id = s.id "
        "AND restored_at IS NULL)",
        (orjson.dumps(list(session_ids)).decode(),),
    )
    return [session_prefix(r[1], str(r[0])) for r in rows]


def unchanged_since(
    sources: list[SourceRow], snapshots: Sequence[Path], previous: Manifest
) -> bool:
    """Every source file already there with the same digest, and no snapshot it lacks."""
    held = {f.name: f for f in previous.files}
    for source in sources:
        entry = held.get(Path(source.path).name)
        if entry is None or entry.sha256 != source.sha256:
            return False
    tarball = held.get(SNAPSHOTS)
    backed = {m.name for m in tarball.members} if tarball is not None else set()
    return snapshot_names(snapshots) <= backed


def stored_names(paths: list[str]) -> list[str]:
    """`<file name>.zst`, numbered when two source files share a name."""
    seen: dict[str, int] = {}
    out = []
    for path in paths:
        name = Path(path).name
        n = seen.get(name, 0)
        seen[name] = n + 1
        out.append(f"{name}.zst" if n == 0 else f"{n}-{name}.zst")
    return out


def check_remote(entry: ManifestFile, info: ObjectInfo) -> list[str]:
    problems = []
    if info.size != entry.stored_size:
        problems.append(f"{entry.stored_name}: size {info.size}, expected {entry.stored_size}")
    if info.sha256 is not None and info.sha256 != entry.stored_sha256:
        problems.append(f"{entry.stored_name}: SHA-256 reported by the store differs")
    if info.md5 is not None and entry.stored_md5 is not None and info.md5 != entry.stored_md5:
        problems.append(f"{entry.stored_name}: MD5 reported by the store differs")
    return problems


def sealed_by(key: Key | None) -> dict[str, Any]:
    if key is None:
        return {}
    return {"format_version": 2, "encryption": "aes-256-gcm", "key_id": key.key_id}


def pack_snapshots(snapshots: list[Path], work: Path, dst: Path) -> Packed:
    plain = work / SNAPSHOTS_DIR
    plain.mkdir()
    files: list[tuple[str, Path]] = []
    for snap in snapshots:
        name = snap.name.removesuffix(".zst")
        decompress_file(snap, plain / name)
        files.append((name, plain / name))
    packed = pack_tree(files, dst, level=3, long_distance=True)
    shutil.rmtree(plain)
    return packed
