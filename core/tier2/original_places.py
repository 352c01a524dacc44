"""Where a session's backed-up files came from, for a restore that puts them back there.

A source file goes back to the path it was imported from; the session's state
snapshots (one tarball in the backup) go back into the workspace's `state/`
folder, compressed as the workspace keeps them. Everything is decided before a
byte is written: a file whose origin is unknown stops the restore with the
advice to pick a folder instead. A folder that is gone is made again (a project
folder deleted, or `~/.claude` wiped, is why most restores happen), except where
it would land on the computer's own disk in place of one that is not mounted
(`/media/me/usb/...` with the disk away, or a mount point the file system table
names, such as `/data`). A session recovered from a backup's catalog is refused
outright: its paths are the catalog's word (another computer's, or anyone's who
could change the backup), and a restore never writes where its data alone says.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from core.errors import BadInputError
from core.local.db.database import Database
from core.local.snapshots import compress_snapshot
from core.packing.compress import atomic_output
from core.packing.extract import safe_extract
from core.packing.manifest import ManifestFile

_ELSEWHERE = "restore into a folder instead: --to DIR"
REMOVABLE = (Path("/media"), Path("/run/media"), Path("/mnt"), Path("/Volumes"))
"""Where removable disks are mounted: a folder missing just below one of these (or
below a user's folder in it) is most likely a disk that is not plugged in."""
FSTAB = Path("/etc/fstab")
"""Disks mounted anywhere else (`/data`, `/srv/projects`) are listed here."""


@dataclass(frozen=True, slots=True)
class Places:
    files: dict[str, Path]
    """Manifest name → the path the file was imported from."""
    state_dir: Path


def free_name(path: Path) -> Path:
    """`name (restored N).ext`: restore never replaces a file unless told to."""
    n = 1
    while True:
        candidate = path.with_name(f"{path.stem} (restored {n}){path.suffix}")
        if not candidate.exists():
            return candidate
        n += 1


async def original_places(
    db: Database,
    session_id: str,
    entries: list[ManifestFile],
    state_dir: Path,
) -> Places:
    if await db.scalar("SELECT 1 FROM recovered WHERE session_id = ?", (session_id,)):
        # Its paths were read from a backup's catalog, not from this machine: they may be
        # another computer's, and a catalog someone altered could aim them anywhere.
        raise BadInputError(
            f"Session {session_id} was recovered from a backup: where its files came from is "
            "another catalog's word, not this machine's",
            hint=_ELSEWHERE,
        )
    rows = await db.fetchall("SELECT path FROM sources WHERE session_id = ?", (session_id,))
    paths = [Path(str(row[0])) for row in rows]
    return await asyncio.to_thread(
        _decided, session_id, paths, entries, state_dir, REMOVABLE, FSTAB
    )


def _decided(
    session_id: str,
    paths: list[Path],
    entries: list[ManifestFile],
    state_dir: Path,
    removable: tuple[Path, ...],
    fstab: Path,
) -> Places:
    by_name: dict[str, list[Path]] = {}
    for path in paths:
        by_name.setdefault(path.name, []).append(path)
    files: dict[str, Path] = {}
    for entry in entries:
        if entry.members:  # the snapshots' tarball
            if not state_dir.is_dir():
                raise BadInputError(f"The workspace has no state folder ({state_dir})",
                                    hint=_ELSEWHERE)  # fmt: skip
            continue
        found = by_name.get(entry.name, [])
        if len(found) != 1:
            raise BadInputError(
                f"Where {entry.name} came from is not known"
                if not found
                else f"{len(found)} files of session {session_id} were named {entry.name}",
                hint=_ELSEWHERE,
            )
        _can_make(found[0].parent, entry.name, removable, fstab)
        files[entry.name] = found[0]
    return Places(files, state_dir)


def _can_make(folder: Path, name: str, removable: tuple[Path, ...], fstab: Path) -> None:
    """Refuses a folder that cannot or should not be made again; the rest is made when
    its file is written."""
    if folder.is_dir():
        return
    existing = next(p for p in folder.parents if p.exists())  # `/` at the latest
    if not existing.is_dir():
        raise BadInputError(
            f"{name} came from {folder}, and a file is in the way at {existing}",
            hint=_ELSEWHERE,
        )
    if existing in removable or existing.parent in removable or _unmounted(existing, fstab):
        raise BadInputError(
            f"{name} came from {folder}, which is not here: its disk may not be mounted",
            hint="plug it in and run the restore again, or " + _ELSEWHERE,
        )


def _unmounted(folder: Path, fstab: Path) -> bool:
    """`folder` is where the file system table mounts a disk, and none is mounted there
    now: what is left is the empty folder on the computer's own disk."""
    return folder in mount_points(fstab) and not os.path.ismount(folder)


def mount_points(fstab: Path) -> set[Path]:
    """The folders a file system table mounts something on (not `/`, not swap); none
    when there is no table to read."""
    try:
        text = fstab.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    points = set()
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2 or not fields[1].startswith("/") or fields[1] == "/":
            continue
        # fstab writes a space in a path as \040 (and a tab as \011)
        points.add(Path(fields[1].replace("\\040", " ").replace("\\011", "\t")))
    return points


def snapshots_back(tarball: Path, entry: ManifestFile, state_dir: Path, *,
                   overwrite: bool) -> list[Path]:  # fmt: skip
    """Blocking. Each snapshot checked against its digest, then compressed back into the
    state folder under its own name (`….json.zst`), as the workspace writes it."""
    written = []
    with tempfile.TemporaryDirectory(prefix="tierkeeper-restore-") as tmp:
        members = safe_extract(tarball, Path(tmp), expected=entry.member_digests())
        for member in members:
            target = state_dir / f"{member.name}.zst"
            if target.exists() and not overwrite:
                target = free_name(target)
            blob = compress_snapshot(member.read_bytes())  # a snapshot is megabytes at most
            with atomic_output(target, md5=False) as out:
                out.write(blob)
            written.append(target)
    return written
