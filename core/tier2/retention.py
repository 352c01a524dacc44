"""Tier 1 retention: a session's raw workspace files go once a verified backup holds them.

The workspace keeps the raw files (activity log, state snapshots) of the newest
`keep` sessions that have any; older ones are deleted, one file at a time, only when the
latest backup of their session that passed its verify lists that very file
with the same SHA-256 as the one on disk. A log appended to after its backup,
a session never backed up, a backup that failed its verify: all keep their
files. The analytics DB and the handoff notes are never pruned here, and
nothing outside the workspace (an agent's own transcripts) ever is.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from core.errors import BadInputError
from core.local.db.database import Database
from core.local.snapshots import SnapshotStore
from core.packing.compress import content_sha256, file_sha256
from core.packing.manifest import Manifest
from core.tier2.backup import SNAPSHOTS
from core.workspace import Workspace


@dataclass(frozen=True, slots=True)
class Pruned:
    session_id: str
    path: Path
    size: int


def _sha256(path: Path, *, zstd: bool = False) -> str:
    return content_sha256(path) if zstd else file_sha256(path)


def _local_files(ws: Workspace, session_id: str) -> list[tuple[str, Path, bool]]:
    """(name in the manifest, file, is zstd) for the session's raw workspace files."""
    found: list[tuple[str, Path, bool]] = []
    log = ws.log_path(session_id)
    if log.exists():
        found.append((log.name, log, False))
    try:
        snaps = SnapshotStore(ws.state).list(session_id)
    except BadInputError:  # an id no snapshot can carry
        snaps = []
    found += [(f"{SNAPSHOTS}/{s.path.name.removesuffix('.zst')}", s.path, True) for s in snaps]
    return found


def _backed_up(manifest: Manifest) -> dict[str, str]:
    """name → SHA-256 of every original the manifest holds (tarball members as tar/member)."""
    names: dict[str, str] = {}
    for entry in manifest.files:
        if entry.sha256 is not None:  # None only for a phase tarball, never in Tier 2
            names[entry.name] = entry.sha256
        for member in entry.members:
            names[f"{entry.name}/{member.name}"] = member.sha256
    return names


def _prune_session(ws: Workspace, session_id: str, manifest: Manifest) -> list[Pruned]:
    held = _backed_up(manifest)
    pruned: list[Pruned] = []
    for name, path, zstd in _local_files(ws, session_id):
        expected = held.get(name)
        if expected is None:
            continue
        try:
            if _sha256(path, zstd=zstd) != expected:
                continue  # changed since the backup: keep it for the next one
            size = path.stat().st_size
            path.unlink()
        except (OSError, BadInputError):
            continue  # unreadable or damaged: never delete what could not be checked
        pruned.append(Pruned(session_id, path, size))
    return pruned


async def prune_local(db: Database, ws: Workspace, keep: int) -> list[Pruned]:
    rows = await db.fetchall(
        "SELECT id FROM sessions ORDER BY coalesce(ended_at, started_at) DESC, id DESC"
    )
    pruned: list[Pruned] = []
    kept = 0
    for row in rows:
        session_id = str(row[0])
        if not await asyncio.to_thread(_local_files, ws, session_id):
            continue  # imported from elsewhere, or pruned already: not counted
        if kept < keep:
            kept += 1
            continue
        found = await db.fetchone(
            "SELECT manifest FROM backups WHERE session_id = ? AND verify_status = 'ok' "
            "ORDER BY id DESC LIMIT 1",
            (session_id,),
        )
        if found is None:
            continue
        manifest = Manifest.parse(str(found[0]).encode())
        pruned += await asyncio.to_thread(_prune_session, ws, session_id, manifest)
    return pruned
