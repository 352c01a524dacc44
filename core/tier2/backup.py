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
import functools
import hashlib
import io
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from core.errors import BadInputError, NotFoundError
from core.local.db.database import Database
from core.local.db.read_pool import ReadPool
from core.local.packed_export import pack_source_with
from core.packing import IntegrityError, Packed
from core.packing.compress import content_sha256, decompress_file, file_sha256
from core.packing.crypto import Key, WrongKeyError, decrypt_file, encrypt_file
from core.packing.extract import make_folder, safe_extract
from core.packing.manifest import Manifest, ManifestFile
from core.recovery.catalog import stored_name as catalog_name
from core.recovery.catalog_stream import CatalogReader
from core.remote.base import (
    BlockingBatch,
    ObjectNotFound,
    PutSource,
    ResumeSlot,
    Store,
    blocking_batch,
)
from core.tier2 import backup_direct
from core.tier2.backup_rows import INSERT, BackupRows
from core.tier2.encryption import KeyMissingError
from core.tier2.manifest_landing import put_manifest
from core.tier2.original_places import Places, free_name, original_places, snapshots_back
from core.tier2.session_layout import (
    ENCRYPTED,
    MANIFEST,
    ONE_AT_A_TIME_ABOVE,
    ROOT,
    SNAPSHOTS,
    SNAPSHOTS_DIR,
    SourceRow,
    check_remote,
    pack_snapshots,
    sealed_by,
    session_facts,
    session_prefix,
    snapshot_names,
    stored_names,
    unchanged_since,
)

SlotFor = Callable[[str, str], ResumeSlot | None]
"""(key, packed SHA-256) → where that upload's resume handle is kept."""

__all__ = [
    "ENCRYPTED", "MANIFEST", "ROOT", "SNAPSHOTS", "SNAPSHOTS_DIR", "BackupResult", "SlotFor",
    "VerifyResult", "backup_session", "latest_backup", "put_checked", "restore_session",
    "session_prefix", "verify_backup",
]  # fmt: skip

FILES_AT_ONCE = 3
"""A session's files packed and uploaded at the same time (memory: a few MB each)."""
_T = TypeVar("_T")


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
    recorded: asyncio.Future[int] | None = None
    """With the job's `rows`: the backup's row id once written (`backup_id` is 0 until
    then); whatever counts the backup as recorded must await it."""


async def _together(work: list[Awaitable[_T]]) -> list[_T]:
    """Runs `work` concurrently; results in order. The first failure cancels the rest and
    is raised as itself (callers and the job match on its type, not on a group)."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_awaited(w)) for w in work]
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [t.result() for t in tasks]


async def _awaited(work: Awaitable[_T]) -> _T:
    return await work


async def _writing(folder: BlockingBatch | None, work: Awaitable[_T], path: Path) -> _T:
    """Disk errors writing into a folder target's scratch are that target's errors: a
    full or unplugged backup disk, not a crash."""
    try:
        return await work
    except OSError as err:
        where = err.filename
        if folder is None or not path.is_relative_to(folder.root):
            raise
        if where is not None and not Path(os.fsdecode(where)).is_relative_to(folder.root):
            raise  # a local file (a snapshot being unpacked): not the target's
        raise folder.write_error(err, path) from err


def _local_dir() -> str:
    return tempfile.mkdtemp(prefix="tierkeeper-backup-")


def _now() -> str:
    return datetime.now(UTC).isoformat()


async def put_checked(
    store: Store,
    prefix: str,
    name: str,
    stored: str,
    path: Path,
    packed: Packed,
    *,
    progress: Callable[[int], None] | None,
    slot_for: SlotFor | None,
    hint: str,
) -> ManifestFile:
    """Uploads one packed file and compares what the store says it holds with what was
    sent: a manifest never lists a file the store did not confirm."""
    object_key = f"{prefix}/{stored}"
    info = await store.put(
        object_key,
        PutSource(path, packed.size, packed.sha256, packed.md5),
        progress,
        resume=slot_for(object_key, packed.sha256) if slot_for is not None else None,
    )
    entry = ManifestFile.from_packed(name, stored, packed).model_copy(
        update={"remote_md5": info.md5, "remote_sha256": info.sha256}
    )
    problems = check_remote(entry, info)
    if problems:
        raise IntegrityError(
            "The store reports something other than what was uploaded: " + "; ".join(problems),
            hint=hint,
        )
    return entry


async def backup_session(
    db: Database,
    store: Store,
    target: str,
    session_id: str,
    *,
    slot_for: SlotFor | None = None,
    progress: Callable[[int], None] | None = None,
    snapshots: Sequence[Path] | Callable[[], Sequence[Path]] = (),
    key: Key | None = None,
    reads: ReadPool | None = None,
    rows: BackupRows | None = None,
) -> BackupResult:
    """`snapshots` (the session's `.json.zst` state files, or what lists them, called in
    a worker thread) go into one tarball, decompressed and compressed again with
    long-distance matching: successive snapshots of one session are near-duplicates,
    and a long window makes each one after the first cost almost nothing.

    `reads` (the job's, kept across its sessions) reads the session's stored
    bytes and rows in worker threads; without one, this call opens its own.
    `rows` (the job's) writes the backup's row in the background: see
    `BackupResult.recorded`.

    A folder target takes the one-thread path (core/tier2/backup_direct.py);
    other stores, long sessions and a folder that fails transiently, this one."""
    listed = snapshots if callable(snapshots) else functools.partial(list, snapshots)
    to = backup_direct.route(store)
    if to is not None:
        pool = reads if reads is not None else ReadPool(db.path)
        try:
            done = await backup_direct.back_up(to, pool, target, session_id, listed, key)
        finally:
            if pool is not reads:
                pool.close()
        if done is not None:
            return await _recorded(db, target, session_id, done, progress, rows)
    return await _backup_async(
        db, store, target, session_id, slot_for=slot_for, progress=progress,
        snapshots=await asyncio.to_thread(listed), key=key, reads=reads, rows=rows,
    )  # fmt: skip


async def _recorded(
    db: Database,
    target: str,
    session_id: str,
    done: backup_direct.Done,
    progress: Callable[[int], None] | None,
    rows: BackupRows | None,
) -> BackupResult:
    if done.unchanged:
        return BackupResult(0, session_id, done.prefix, 0, 0, 0, unchanged=True)
    if progress is not None:
        progress(done.moved)
    data = done.manifest
    raw = sum(e.size for e in done.entries)
    stored_bytes = sum(e.stored_size for e in done.entries) + len(data)
    now = _now()
    params = (session_id, target, done.phase, done.prefix, data.decode(), raw, stored_bytes,
              now, now, "ok")  # fmt: skip
    if rows is not None:
        return BackupResult(0, session_id, done.prefix, len(done.entries), raw, stored_bytes,
                            recorded=rows.add(params))  # fmt: skip
    backup_id = await db.execute(INSERT, params)
    return BackupResult(backup_id, session_id, done.prefix, len(done.entries), raw, stored_bytes)


async def _backup_async(
    db: Database,
    store: Store,
    target: str,
    session_id: str,
    *,
    slot_for: SlotFor | None,
    progress: Callable[[int], None] | None,
    snapshots: Sequence[Path],
    key: Key | None,
    reads: ReadPool | None,
    rows: BackupRows | None,
) -> BackupResult:
    """Each file a task of its own, through the store's async protocol: what a remote
    whose cost is round trips (Drive) needs, many in flight at once."""
    facts = await db.call(lambda conn: session_facts(conn, session_id, target))
    if facts is None:
        raise NotFoundError(f"No session {session_id!r}", hint="`tierkeeper sessions` lists them")
    phase, backup_only, sources, held = facts
    prefix = session_prefix(phase, session_id)
    if backup_only:  # recovered, not restored: its bytes are remote only, nothing to send
        return BackupResult(0, session_id, prefix, 0, 0, 0, unchanged=True)
    if not sources and not snapshots:
        raise BadInputError(f"Session {session_id} has no stored files to back up")
    previous = None if held is None else Manifest.parse(held.encode())
    if previous is not None and unchanged_since(sources, snapshots, previous):
        return BackupResult(0, session_id, prefix, 0, 0, 0, unchanged=True)
    # Snapshots pruned from Tier 1 after an earlier backup are still in its tarball:
    # keep that tarball (same key) rather than replace it with fewer snapshots.
    old_tar = previous.file(SNAPSHOTS) if previous is not None else None
    keep_old_tar = old_tar is not None and snapshot_names(snapshots) <= {
        m.name for m in old_tar.members
    }
    names = stored_names([s.path for s in sources] + [SNAPSHOTS])  # never two alike
    # Packed files go where the store can take them without a copy (a folder target's
    # own disk); plaintext that is not what gets stored (before encryption, snapshots
    # unpacked for the tarball) stays local. Folders are made and removed off the event
    # loop: on a busy disk a removal waits for the journal, and every session with it.
    folder = blocking_batch(store)  # a folder target: scratch on its own disk
    made: list[Path] = []
    own_reads = ReadPool(db.path) if reads is None else None
    pool = reads or own_reads
    assert pool is not None

    async def new_dir(make: Callable[[], str | Path]) -> Path:
        made.append(Path(await asyncio.to_thread(make)))
        return made[-1]

    try:
        outbox = await new_dir(folder.scratch if folder is not None else _local_dir)
        private = key is not None or (bool(snapshots) and not keep_old_tar)
        work = await new_dir(_local_dir) if folder is not None and private else outbox
        packs = work if key is not None else outbox

        async def upload(
            name: str, stored: str, packed_path: Path, packed: Packed, *, counted: bool = True
        ) -> ManifestFile:
            if key is not None:  # what leaves the machine is ciphertext; digests are of it
                sealed = outbox / (packed_path.name + ENCRYPTED)
                info_enc = await _writing(
                    folder, asyncio.to_thread(encrypt_file, packed_path, sealed, key), sealed
                )
                await asyncio.to_thread(packed_path.unlink)
                packed_path, stored = sealed, stored + ENCRYPTED
                packed = Packed(packed.raw_size, packed.raw_sha256, info_enc.size,
                                info_enc.sha256, info_enc.md5, packed.members)  # fmt: skip
            entry = await put_checked(
                store, prefix, name, stored, packed_path, packed,
                progress=progress if counted else None, slot_for=slot_for,
                hint="run the backup again; if it persists, check the target",
            )  # fmt: skip
            if big:  # else the whole folder goes at the end, in one call
                await asyncio.to_thread(packed_path.unlink)
            return entry

        async def source_file(source: SourceRow, stored: str) -> ManifestFile:
            async with files_at_once:
                packed_path = packs / stored
                packing = asyncio.to_thread(
                    pack_source_with, pool, source.id, source.kind, packed_path
                )
                packed = await _writing(folder, packing, packed_path)
                return await upload(Path(source.path).name, stored, packed_path, packed)

        async def catalog_file() -> None:
            """Not in the manifest: it describes the session, and lists no data."""
            async with files_at_once:
                path = packs / catalog_name(None)
                packing = asyncio.to_thread(CatalogReader(pool).write, session_id, path)
                packed = await _writing(folder, packing, path)
                await upload(path.name, path.name, path, packed, counted=False)

        async def snapshot_tarball() -> ManifestFile:
            async with files_at_once:
                tarball = packs / names[-1]
                packing = asyncio.to_thread(pack_snapshots, list(snapshots), work, tarball)
                packed = await _writing(folder, packing, tarball)
                return await upload(SNAPSHOTS, tarball.name, tarball, packed)

        # The session's files (and its catalog) go up together: on a folder target most
        # of their cost is fsyncs, and fsyncs in flight together share the disk's journal
        # commits. The manifest waits for them all: a manifest on the remote always
        # describes files (and a catalog) that are all there.
        # A long session goes one step at a time instead: its own files dwarf the
        # fsyncs, and the peak memory stays that of one step (the catalog's, mostly).
        big = sum(s.size for s in sources) > ONE_AT_A_TIME_ABOVE
        files_at_once = asyncio.Semaphore(1 if big else FILES_AT_ONCE)
        work_items: list[Awaitable[ManifestFile | None]] = [
            source_file(source, stored) for source, stored in zip(sources, names[:-1], strict=True)
        ]
        if snapshots and not keep_old_tar:
            work_items.append(snapshot_tarball())
        if not big:
            work_items.append(catalog_file())
        entries = [e for e in await _together(work_items) if e is not None]
        if big:
            await catalog_file()
        if keep_old_tar and old_tar is not None:
            entries.append(old_tar)
        manifest = Manifest(
            session_id=session_id,
            phase=phase,
            files=tuple(entries),
            **sealed_by(key),
        )
        data = manifest.to_bytes()
        manifest_path = outbox / MANIFEST
        await _writing(folder, asyncio.to_thread(manifest_path.write_bytes, data), manifest_path)
        await put_manifest(store, f"{prefix}/{MANIFEST}", manifest_path, data)
    finally:
        if own_reads is not None:
            own_reads.close()
        for path in made:
            await asyncio.to_thread(shutil.rmtree, path, ignore_errors=True)
    raw = sum(e.size for e in entries)
    stored_bytes = sum(e.stored_size for e in entries) + len(data)
    now = _now()
    params = (session_id, target, phase, prefix, data.decode(), raw, stored_bytes, now, now,
              "ok")  # fmt: skip
    if rows is not None:
        return BackupResult(0, session_id, prefix, len(entries), raw, stored_bytes,
                            recorded=rows.add(params))  # fmt: skip
    backup_id = await db.execute(INSERT, params)
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
    """Re-stat every artifact against the manifest, and the manifest on the target against
    the one recorded; `deep` downloads and hashes them too."""
    row = await db.fetchone("SELECT session_id, prefix, manifest FROM backups WHERE id = ?",
                            (backup_id,))  # fmt: skip
    if row is None:
        raise NotFoundError(f"No backup {backup_id}")
    recorded = str(row[2]).encode()
    manifest = Manifest.parse(recorded)
    problems: list[str] = []
    # The manifest is what a restore reads first: a backup whose files are all sound is
    # still lost if it is damaged or gone, and a failed verify has the next backup redo it.
    plain = manifest.encryption == "none"
    checks = [(entry, plain) for entry in manifest.files] + [(_as_entry(recorded), False)]
    for entry, readable in checks:
        key = f"{row[1]}/{entry.stored_name}"
        try:
            info = await store.stat(key)
        except ObjectNotFound:
            problems.append(f"{entry.stored_name}: missing from the target")
            continue
        problems += check_remote(entry, info)
        if deep and not problems:
            problems += await _deep_check(store, key, entry, plain=readable)
    status = "ok" if not problems else "failed"
    await db.execute(
        "UPDATE backups SET verified_at = ?, verify_status = ?, verify_error = ? WHERE id = ?",
        (_now(), status, "; ".join(problems) or None, backup_id),
    )
    return VerifyResult(backup_id, str(row[0]), not problems, problems)


def _as_entry(manifest: bytes) -> ManifestFile:
    """The manifest file itself as an entry to check: stored as it is, uncompressed."""
    sha256 = hashlib.sha256(manifest).hexdigest()
    return ManifestFile(
        name=MANIFEST, size=len(manifest), sha256=sha256, stored_name=MANIFEST,
        stored_size=len(manifest), stored_sha256=sha256,
        stored_md5=hashlib.md5(manifest, usedforsecurity=False).hexdigest(),
    )  # fmt: skip


async def _deep_check(store: Store, key: str, entry: ManifestFile, *, plain: bool) -> list[str]:
    """The stored bytes against their digest, then (`plain`: not encrypted) what they
    decompress to against the original file's: a backup whose frames were copied from
    the DB is checked here against the digest the import took of the file itself."""
    with tempfile.TemporaryDirectory(prefix="tierkeeper-verify-") as tmp:
        path = Path(tmp) / entry.stored_name
        with open(path, "wb") as fh:  # noqa: ASYNC230 - a local temp file
            await store.get(key, fh)
        digest = await asyncio.to_thread(file_sha256, path)
        if digest != entry.stored_sha256:
            return [f"{entry.stored_name}: content does not match its recorded digest (damaged)"]
        if not plain or entry.members or entry.sha256 is None:
            return []  # a tarball's members are checked by their own digests at restore
        try:
            raw = await asyncio.to_thread(content_sha256, path)
        except IntegrityError as exc:
            return [str(exc)]
    if raw != entry.sha256:
        return [f"{entry.stored_name}: decompresses to other bytes than the file backed up"]
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
    dest: Path | None,
    *,
    file: str | None = None,
    overwrite: bool = False,
    key: Key | None = None,
    state_dir: Path | None = None,
) -> list[Path]:
    """Downloads, checks against the manifest, and writes into `dest` (never outside it),
    or with `dest` None back where each file came from (core/tier2/original_places.py;
    the snapshots into `state_dir`, the workspace's).

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
    places = None
    if dest is None:
        if state_dir is None:
            raise BadInputError("Say where the files go", hint="add --to DIR")
        places = await original_places(db, session_id, entries, state_dir)
    else:
        await asyncio.to_thread(make_folder, dest)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="tierkeeper-restore-") as tmp:
        for entry in entries:
            there = _destination(entry, dest, places)
            if there is not None and await asyncio.to_thread(_holds, there, entry.sha256):
                written.append(there)  # restored before, or never lost: no copy beside it
                continue
            packed = Path(tmp) / entry.stored_name
            with open(packed, "wb") as fh:  # noqa: ASYNC230 - a local temp file
                await store.get(f"{prefix}/{entry.stored_name}", fh)
            if manifest.encryption != "none":
                assert key is not None  # checked above
                packed = await asyncio.to_thread(_unseal, packed, entry, key)
            if entry.members and places is not None:
                written += await asyncio.to_thread(
                    snapshots_back, packed, entry, places.state_dir, overwrite=overwrite
                )
                continue
            if entry.members:  # a tarball: its files, each checked against the manifest
                assert dest is not None
                folder = dest / SNAPSHOTS_DIR
                if folder.exists() and not overwrite:
                    folder = free_name(folder)
                written += await asyncio.to_thread(
                    safe_extract, packed, folder, expected=entry.member_digests(),
                    overwrite=overwrite,
                )  # fmt: skip
                continue
            # names were checked safe when the manifest was parsed
            target = there
            assert target is not None
            if places is not None:
                await asyncio.to_thread(make_folder, target.parent)  # decided above
            if target.exists() and not overwrite:
                target = free_name(target)
            await asyncio.to_thread(decompress_file, packed, target, expect_sha256=entry.sha256)
            written.append(target)
    return written


def _destination(entry: ManifestFile, dest: Path | None, places: Places | None) -> Path | None:
    """Where a single file of the backup goes (None for the snapshots' tarball)."""
    if entry.members:
        return None
    if places is not None:
        return places.files[entry.name]
    assert dest is not None
    return dest / entry.name


def _holds(path: Path, sha256: str | None) -> bool:
    """Blocking. Whether `path` is a file with exactly these bytes already."""
    if sha256 is None:
        return False
    try:
        return path.is_file() and file_sha256(path) == sha256.lower()
    except OSError:
        return False


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
