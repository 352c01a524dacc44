"""Session backup to a Tier 2 store: pack → upload → verify → record.

Each of a session's source files is exported byte for byte from the DB,
compressed (hashes taken in the same pass), uploaded, and checked against the
digests the store reports back; the manifest goes last, so a manifest on the
remote always describes files that are all there. Only then is the backup
recorded. Restore trusts nothing but the manifest: every file is checked
against it before anything is written where the user asked.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.errors import BadInputError, NotFoundError
from core.local.db.database import Database
from core.local.export import session_sources
from core.local.packed_export import pack_source
from core.packing import IntegrityError, Packed
from core.packing.compress import decompress_file
from core.packing.crypto import Key, WrongKeyError, decrypt_file, encrypt_file
from core.packing.extract import safe_extract
from core.packing.manifest import Manifest, ManifestFile
from core.packing.tarball import pack_tree
from core.remote.base import ObjectInfo, ObjectNotFound, PutSource, ResumeSlot, Store
from core.tier2.encryption import KeyMissingError

SlotFor = Callable[[str, str], ResumeSlot | None]
"""(key, packed SHA-256) → where that upload's resume handle is kept."""

ROOT = "Tierkeeper"
MANIFEST = "manifest.json"
ENCRYPTED = ".enc"
"""Suffix of a stored file encrypted on this machine (see core/packing/crypto.py)."""
SNAPSHOTS = "snapshots.tar"
SNAPSHOTS_DIR = "snapshots"
"""Where a restore puts the session's state snapshots, under the destination folder."""


def session_prefix(phase: str | None, session_id: str) -> str:
    return f"{ROOT}/{phase or 'no-phase'}/sessions/session_{session_id}"


@dataclass(frozen=True, slots=True)
class BackupResult:
    backup_id: int
    session_id: str
    prefix: str
    files: int
    raw_bytes: int
    stored_bytes: int
    unchanged: bool = False
    """Nothing to do: the newest verified backup on this target holds these very bytes."""


async def previous_manifest(
    db: Database, session_id: str, target: str, prefix: str
) -> Manifest | None:
    """The newest verified backup of the session on the target, where it would go now."""
    row = await db.fetchone(
        "SELECT manifest FROM backups WHERE session_id = ? AND target = ? AND prefix = ? "
        "AND verify_status = 'ok' ORDER BY id DESC LIMIT 1",
        (session_id, target, prefix),
    )
    return None if row is None else Manifest.parse(str(row[0]).encode())


def _snapshot_names(snapshots: Sequence[Path]) -> set[str]:
    return {p.name.removesuffix(".zst") for p in snapshots}


async def _unchanged(
    db: Database, sources: list[tuple[int, str, str]], snapshots: Sequence[Path],
    previous: Manifest,
) -> bool:  # fmt: skip
    """Every source file already there with the same digest, and no snapshot it lacks."""
    held = {f.name: f for f in previous.files}
    for source_id, path, _role in sources:
        digest = await db.scalar("SELECT sha256 FROM sources WHERE id = ?", (source_id,))
        entry = held.get(Path(path).name)
        if entry is None or entry.sha256 != digest:
            return False
    tarball = held.get(SNAPSHOTS)
    backed = {m.name for m in tarball.members} if tarball is not None else set()
    return _snapshot_names(snapshots) <= backed


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _stored_names(paths: list[str]) -> list[str]:
    """`<file name>.zst`, numbered when two source files share a name."""
    seen: dict[str, int] = {}
    out = []
    for path in paths:
        name = Path(path).name
        n = seen.get(name, 0)
        seen[name] = n + 1
        out.append(f"{name}.zst" if n == 0 else f"{n}-{name}.zst")
    return out


def _check_remote(entry: ManifestFile, info: ObjectInfo) -> list[str]:
    problems = []
    if info.size != entry.stored_size:
        problems.append(f"{entry.stored_name}: size {info.size}, expected {entry.stored_size}")
    if info.sha256 is not None and info.sha256 != entry.stored_sha256:
        problems.append(f"{entry.stored_name}: SHA-256 reported by the store differs")
    if info.md5 is not None and info.md5 != entry.stored_md5:
        problems.append(f"{entry.stored_name}: MD5 reported by the store differs")
    return problems


async def backup_session(
    db: Database,
    store: Store,
    target: str,
    session_id: str,
    *,
    slot_for: SlotFor | None = None,
    progress: Callable[[int], None] | None = None,
    snapshots: Sequence[Path] = (),
    key: Key | None = None,
) -> BackupResult:
    """`snapshots` (the session's `.json.zst` state files) go into one tarball,
    decompressed and compressed again with long-distance matching: successive
    snapshots of one session are near-duplicates, and a long window makes
    each one after the first cost almost nothing."""
    row = await db.fetchone("SELECT phase FROM sessions WHERE id = ?", (session_id,))
    if row is None:
        raise NotFoundError(f"No session {session_id!r}", hint="`tierkeeper sessions` lists them")
    phase = row[0]
    sources = await session_sources(db, session_id)
    if not sources and not snapshots:
        raise BadInputError(f"Session {session_id} has no stored files to back up")
    prefix = session_prefix(phase, session_id)
    previous = await previous_manifest(db, session_id, target, prefix)
    if previous is not None and await _unchanged(db, sources, snapshots, previous):
        return BackupResult(0, session_id, prefix, 0, 0, 0, unchanged=True)
    # Snapshots pruned from Tier 1 after an earlier backup are still in its tarball:
    # keep that tarball (same key) rather than replace it with fewer snapshots.
    old_tar = previous.file(SNAPSHOTS) if previous is not None else None
    keep_old_tar = old_tar is not None and _snapshot_names(snapshots) <= {
        m.name for m in old_tar.members
    }
    names = _stored_names([p for _, p, _ in sources] + [SNAPSHOTS])  # never two alike
    entries: list[ManifestFile] = []
    with tempfile.TemporaryDirectory(prefix="tierkeeper-backup-") as tmp:
        work = Path(tmp)

        async def upload(name: str, stored: str, packed_path: Path, packed: Packed) -> None:
            if key is not None:  # what leaves the machine is ciphertext; digests are of it
                sealed = packed_path.with_name(packed_path.name + ENCRYPTED)
                info_enc = await asyncio.to_thread(encrypt_file, packed_path, sealed, key)
                await asyncio.to_thread(packed_path.unlink)
                packed_path, stored = sealed, stored + ENCRYPTED
                packed = Packed(packed.raw_size, packed.raw_sha256, info_enc.size,
                                info_enc.sha256, info_enc.md5, packed.members)  # fmt: skip
            object_key = f"{prefix}/{stored}"
            info = await store.put(
                object_key,
                PutSource(packed_path, packed.size, packed.sha256, packed.md5),
                progress,
                resume=slot_for(object_key, packed.sha256) if slot_for is not None else None,
            )
            entry = ManifestFile.from_packed(name, stored, packed).model_copy(
                update={"remote_md5": info.md5, "remote_sha256": info.sha256}
            )
            problems = _check_remote(entry, info)
            if problems:
                raise IntegrityError(
                    "The store reports something other than what was uploaded: "
                    + "; ".join(problems),
                    hint="run the backup again; if it persists, check the target",
                )
            entries.append(entry)
            packed_path.unlink()

        for (source_id, path, _role), stored in zip(sources, names[:-1], strict=True):
            packed_path = work / stored
            packed = await pack_source(db, source_id, packed_path)
            await upload(Path(path).name, stored, packed_path, packed)
        if keep_old_tar and old_tar is not None:
            entries.append(old_tar)
        elif snapshots:
            tarball = work / names[-1]
            packed = await asyncio.to_thread(_pack_snapshots, list(snapshots), work, tarball)
            await upload(SNAPSHOTS, tarball.name, tarball, packed)
        manifest = Manifest(
            session_id=session_id,
            phase=phase,
            files=tuple(entries),
            **_sealed_by(key),
        )
        data = manifest.to_bytes()
        manifest_path = work / MANIFEST
        manifest_path.write_bytes(data)
        await store.put(
            f"{prefix}/{MANIFEST}",
            PutSource(
                manifest_path,
                len(data),
                hashlib.sha256(data).hexdigest(),
                hashlib.md5(data, usedforsecurity=False).hexdigest(),
            ),
        )
    # read the manifest back: what a restore will see
    back = io.BytesIO()
    await store.get(f"{prefix}/{MANIFEST}", back)
    if back.getvalue() != data:
        raise IntegrityError("The manifest read back from the store differs from the one written")
    raw = sum(e.size for e in entries)
    stored_bytes = sum(e.stored_size for e in entries) + len(data)
    backup_id = await db.execute(
        """INSERT INTO backups(session_id, target, phase, prefix, manifest, raw_bytes,
           stored_bytes, created_at, verified_at, verify_status) VALUES (?,?,?,?,?,?,?,?,?,?)""",
        (session_id, target, phase, prefix, data.decode(), raw, stored_bytes, _now(), _now(),
         "ok"),
    )  # fmt: skip
    return BackupResult(backup_id, session_id, prefix, len(entries), raw, stored_bytes)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    backup_id: int
    session_id: str
    ok: bool
    problems: list[str]


async def verify_backup(
    db: Database, store: Store, backup_id: int, *, deep: bool = False
) -> VerifyResult:
    """Re-stat every artifact against the manifest; `deep` downloads and hashes them too."""
    row = await db.fetchone("SELECT session_id, prefix, manifest FROM backups WHERE id = ?",
                            (backup_id,))  # fmt: skip
    if row is None:
        raise NotFoundError(f"No backup {backup_id}")
    manifest = Manifest.parse(str(row[2]).encode())
    problems: list[str] = []
    for entry in manifest.files:
        key = f"{row[1]}/{entry.stored_name}"
        try:
            info = await store.stat(key)
        except ObjectNotFound:
            problems.append(f"{entry.stored_name}: missing from the target")
            continue
        problems += _check_remote(entry, info)
        if deep and not problems:
            problems += await _deep_check(store, key, entry)
    status = "ok" if not problems else "failed"
    await db.execute(
        "UPDATE backups SET verified_at = ?, verify_status = ?, verify_error = ? WHERE id = ?",
        (_now(), status, "; ".join(problems) or None, backup_id),
    )
    return VerifyResult(backup_id, str(row[0]), not problems, problems)


async def _deep_check(store: Store, key: str, entry: ManifestFile) -> list[str]:
    with tempfile.TemporaryFile() as fh:
        await store.get(key, fh)
        fh.seek(0)
        digest = await asyncio.to_thread(lambda: hashlib.file_digest(fh, "sha256").hexdigest())
    if digest != entry.stored_sha256:
        return [f"{entry.stored_name}: content does not match the manifest (damaged)"]
    return []


async def latest_backup(db: Database, session_id: str, target: str) -> int:
    value = await db.scalar(
        "SELECT max(id) FROM backups WHERE session_id = ? AND target = ?", (session_id, target)
    )
    if value is None:
        raise NotFoundError(
            f"Session {session_id} has no backup on {target}",
            hint="run `tierkeeper backup` first",
        )
    return int(value)


async def restore_session(
    db: Database,
    store: Store,
    session_id: str,
    prefix: str,
    dest: Path,
    *,
    file: str | None = None,
    overwrite: bool = False,
    key: Key | None = None,
) -> list[Path]:
    """Downloads, checks against the manifest, and writes into `dest` (never outside it).

    An encrypted backup needs `key`; the wrong key is refused before anything is written."""
    buf = io.BytesIO()
    await store.get(f"{prefix}/{MANIFEST}", buf)
    manifest = Manifest.parse(buf.getvalue())
    if manifest.session_id != session_id:
        raise IntegrityError(f"The manifest at {prefix} belongs to {manifest.session_id!r}")
    entries = [e for e in manifest.files if file is None or e.name == file]
    if not entries:
        raise NotFoundError(f"The backup of {session_id} has no file named {file!r}")
    _check_key(manifest, key)
    await asyncio.to_thread(dest.mkdir, parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="tierkeeper-restore-") as tmp:
        for entry in entries:
            packed = Path(tmp) / entry.stored_name
            with open(packed, "wb") as fh:  # noqa: ASYNC230 - a local temp file
                await store.get(f"{prefix}/{entry.stored_name}", fh)
            if manifest.encryption != "none":
                assert key is not None  # checked above
                packed = await asyncio.to_thread(_unseal, packed, entry, key)
            if entry.members:  # a tarball: its files, each checked against the manifest
                folder = dest / SNAPSHOTS_DIR
                if folder.exists() and not overwrite:
                    folder = _free_name(folder)
                written += await asyncio.to_thread(
                    safe_extract, packed, folder, expected=entry.member_digests(),
                    overwrite=overwrite,
                )  # fmt: skip
                continue
            target = dest / entry.name  # names were checked safe when the manifest was parsed
            if target.exists() and not overwrite:
                target = _free_name(target)
            await asyncio.to_thread(decompress_file, packed, target, expect_sha256=entry.sha256)
            written.append(target)
    return written


def _sealed_by(key: Key | None) -> dict[str, Any]:
    if key is None:
        return {}
    return {"format_version": 2, "encryption": "aes-256-gcm", "key_id": key.key_id}


def _pack_snapshots(snapshots: list[Path], work: Path, dst: Path) -> Packed:
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


def _check_key(manifest: Manifest, key: Key | None) -> None:
    if manifest.encryption == "none":
        return
    if key is None:
        raise KeyMissingError(
            f"The backup of {manifest.session_id} is encrypted and no key was given",
            hint="unlock the target first: `tierkeeper target unlock NAME`",
        )
    if key.key_id != manifest.key_id:
        raise WrongKeyError(
            f"The backup of {manifest.session_id} was encrypted with key {manifest.key_id}, "
            f"not with this target's key {key.key_id}",
            hint="unlock with the passphrase (or recovery kit) it was made with",
        )


def _unseal(sealed: Path, entry: ManifestFile, key: Key) -> Path:
    plain = sealed.with_name(entry.stored_name.removesuffix(ENCRYPTED))
    decrypt_file(sealed, plain, key)
    sealed.unlink()
    return plain


def _free_name(path: Path) -> Path:
    """`name (restored N).ext`: restore never replaces a file unless told to."""
    n = 1
    while True:
        candidate = path.with_name(f"{path.stem} (restored {n}){path.suffix}")
        if not candidate.exists():
            return candidate
        n += 1
