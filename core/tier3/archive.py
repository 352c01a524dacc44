"""Archive a closed phase: Tier 2 backups → one tarball on the archive target → verified.

The order is the promise: the tarball is built only from Tier 2 backups that
passed their verify (and each member is checked against them on the way);
it is uploaded and checked against what the store reports; then the phase
manifest is written under `metadata/` and read back. Only a verified archive
is recorded, and only a recorded, verified archive lets Tier 2 retention
delete that phase's session folders.

A store that takes an object while it is produced (S3) gets the tarball as it
is built — its parts go up while later sessions are still being packed, and
the upload is completed only once the whole build checked out. Other stores
get a finished file. Either way the bytes are built once, in one pass.
"""

from __future__ import annotations

import asyncio
import io
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from core.config import EncryptionConfig
from core.errors import BadInputError, NotFoundError
from core.local.db.database import Database
from core.packing import IntegrityError, Packed
from core.packing.compress import HashingWriter
from core.packing.crypto import Key
from core.packing.manifest import Manifest, ManifestFile
from core.recovery.publish import publish_tier3_index, put_phase_catalog, render_phase_catalog
from core.remote.base import ObjectInfo, PutSource, ResumeSlot, Store, local_files
from core.remote.s3_objects import COMPOSITE_EXTRA
from core.tier2.backup import ENCRYPTED
from core.tier3.phase_pack import (
    Built,
    SessionSource,
    Sink,
    build_phase_tarball,
    build_tag,
    size_bound,
)
from core.tier3.seal_pipe import build_sealed
from core.tier3.stream_put import stream_control

METADATA = "metadata"


def tarball_key(phase: str) -> str:
    return f"{phase}.tar.zst"


def manifest_key(phase: str) -> str:
    return f"{METADATA}/{phase}_manifest.json"


@dataclass(frozen=True, slots=True)
class ArchiveResult:
    archive_id: int
    phase: str
    sessions: int
    raw_bytes: int
    stored_bytes: int
    key: str


def _now() -> str:
    return datetime.now(UTC).isoformat()


async def phase_sources(db: Database, phase: str, tier2: str) -> list[SessionSource]:
    """Every session of a closed phase, each with its newest verified Tier 2 backup."""
    row = await db.fetchone("SELECT status FROM phases WHERE name = ?", (phase,))
    if row is None:
        raise NotFoundError(f"No phase {phase!r}", hint="`tierkeeper phase list` shows them")
    if row[0] != "closed":
        raise BadInputError(
            f"Phase {phase!r} is still open", hint=f"close it first: tierkeeper phase close {phase}"
        )
    # every session with its newest verified backup there, in one query
    rows = await db.fetchall(
        """SELECT s.id, b.prefix, b.manifest FROM sessions s
           LEFT JOIN backups b ON b.id = (
               SELECT max(id) FROM backups
               WHERE session_id = s.id AND target = ? AND verify_status = 'ok')
           WHERE s.phase = ? ORDER BY s.id""",
        (tier2, phase),
    )
    if not rows:
        raise BadInputError(f"Phase {phase!r} has no sessions to archive")
    sources, missing = [], []
    for sid, prefix, manifest in rows:
        if manifest is None:
            missing.append(sid)
            continue
        sources.append(SessionSource(sid, str(prefix), Manifest.parse(str(manifest).encode())))
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise BadInputError(
            f"{len(missing)} session(s) of {phase!r} have no verified backup on {tier2}: {shown}",
            hint=f"run `tierkeeper backup --target {tier2}` first",
        )
    return sources


async def archive_phase(
    db: Database,
    phase: str,
    *,
    source: Store,
    source_name: str,
    archive: Store,
    archive_name: str,
    source_key: Key | None = None,
    archive_key: Key | None = None,
    resume: Callable[[str, str], ResumeSlot | None] | None = None,
    progress: Callable[[int], None] | None = None,
    encryption: EncryptionConfig | None = None,
    before_writing: Awaitable[None] | None = None,
) -> ArchiveResult:
    """`encryption`: the archive target's key settings, named (not the key) in its index.
    `before_writing`: a check that must pass before anything is written to the archive
    (that its index names no other key); it runs while the sources are read."""
    sources = await phase_sources(db, phase, source_name)
    loop = asyncio.get_running_loop()

    def fetch(key: str, dest: BinaryIO) -> None:  # called from the packing thread
        asyncio.run_coroutine_threadsafe(source.get(key, dest), loop).result()

    borrow = local_files(source)  # a folder target: read in place, no copy

    def moved(n: int) -> None:
        if progress is not None:
            loop.call_soon_threadsafe(progress, n)

    def produce(out: Sink) -> Built:  # on a worker thread
        def build(sink: Sink) -> Built:
            return build_phase_tarball(
                phase, sources, sink, fetch, key=source_key, progress=moved, borrow=borrow
            )

        return build(out) if archive_key is None else build_sealed(build, out, archive_key)

    # the sessions' catalog rows, readable without a thaw (core/recovery): rendered while
    # the tarball builds, put only once it is up, before the manifest
    rendering = asyncio.create_task(render_phase_catalog(db, phase, archive_key))
    try:
        if before_writing is not None:
            await before_writing
        return await _archive(
            db, phase, sources, produce, rendering, source_name=source_name,
            archive=archive, archive_name=archive_name, archive_key=archive_key,
            resume=resume, encryption=encryption,
        )  # fmt: skip
    finally:
        rendering.cancel()  # nothing to do once it is done
        await asyncio.gather(rendering, return_exceptions=True)  # its failure is seen


async def _archive(
    db: Database,
    phase: str,
    sources: list[SessionSource],
    produce: Callable[[Sink], Built],
    rendering: asyncio.Task[bytes],
    *,
    source_name: str,
    archive: Store,
    archive_name: str,
    archive_key: Key | None,
    resume: Callable[[str, str], ResumeSlot | None] | None,
    encryption: EncryptionConfig | None,
) -> ArchiveResult:
    key = tarball_key(phase) + (ENCRYPTED if archive_key is not None else "")
    stored_name = key
    streaming = stream_control(archive)
    if streaming is not None:
        tag = build_tag(
            phase, sources, sealed_with=archive_key.key_id if archive_key is not None else None
        )
        built, reported = await streaming.put_stream(
            key, produce, tag=tag, size_bound=size_bound(sources),
            resume=resume(key, tag) if resume is not None else None,
        )  # fmt: skip
        packed = _packed(built, reported.size, reported.sha256, reported.md5)
    else:
        with tempfile.TemporaryDirectory(prefix="tierkeeper-phase-") as tmp:
            packed_path = Path(tmp) / key
            packed = await asyncio.to_thread(_produce_file, produce, packed_path)
            reported = await archive.put(
                key,
                PutSource(packed_path, packed.size, packed.sha256, packed.md5),
                resume=resume(key, packed.sha256) if resume is not None else None,
            )
    entry = ManifestFile.from_packed(f"{phase}.tar", stored_name, packed).model_copy(
        update={"remote_md5": reported.md5, "remote_sha256": reported.sha256}
    )
    _check(entry, reported.size, reported.sha256, reported.md5)
    sealed_by = (
        {"format_version": 2, "encryption": "aes-256-gcm", "key_id": archive_key.key_id}
        if archive_key is not None
        else {}
    )
    await put_phase_catalog(archive, phase, archive_key, await rendering)
    manifest = Manifest(phase=phase, long_distance=True, files=(entry,), **sealed_by)
    data = manifest.to_bytes()
    await _put_bytes(archive, manifest_key(phase), data)
    back = io.BytesIO()
    await archive.get(manifest_key(phase), back)
    if back.getvalue() != data:
        raise IntegrityError("The phase manifest read back from the archive differs")
    # the tarball cannot be read back (Deep Archive): what the store reports must do
    stat = await archive.stat(key)
    _check(entry, stat.size, stat.sha256, stat.md5)
    _check_composite(entry, reported, stat)
    archive_id = await db.execute(
        """INSERT INTO archives(phase, target, source_target, key, manifest_key, manifest,
           sessions, raw_bytes, stored_bytes, created_at, verified_at, verify_status)
           VALUES (?,?,?,?,?,?,?,?,?,?,?,?)""",
        (phase, archive_name, source_name, key, manifest_key(phase), data.decode(),
         len(sources), packed.raw_size, packed.size, _now(), _now(), "ok"),
    )  # fmt: skip
    await publish_tier3_index(db, archive, archive_name, encryption, archive_key)
    return ArchiveResult(archive_id, phase, len(sources), packed.raw_size, packed.size, key)


def _check(entry: ManifestFile, size: int, sha256: str | None, md5: str | None) -> None:
    problems = []
    if size != entry.stored_size:
        problems.append(f"size {size}, expected {entry.stored_size}")
    if sha256 is not None and sha256 != entry.stored_sha256:
        problems.append("the SHA-256 the archive reports differs")
    if md5 is not None and entry.stored_md5 is not None and md5 != entry.stored_md5:
        problems.append("the MD5 the archive reports differs")
    if problems:
        raise IntegrityError(
            f"The archive of {entry.name} is not what was uploaded: " + "; ".join(problems),
            hint="archive the phase again; Tier 2 was left untouched",
        )


def _check_composite(entry: ManifestFile, reported: ObjectInfo, stat: ObjectInfo) -> None:
    """A streamed upload knows the checksum S3 must have computed from its parts."""
    sent = reported.extra.get(COMPOSITE_EXTRA)
    if sent is not None and stat.extra.get(COMPOSITE_EXTRA) != sent:
        raise IntegrityError(
            f"The archive of {entry.name} is not what was uploaded: the checksum the "
            "archive reports for its parts differs",
            hint="archive the phase again; Tier 2 was left untouched",
        )


def _packed(built: Built, size: int, sha256: str | None, md5: str | None) -> Packed:
    if sha256 is None:
        raise IntegrityError("The archive store did not report the digests of what it sent")
    return Packed(built.raw_size, None, size, sha256, md5 or "", built.members)


def _produce_file(produce: Callable[[Sink], Built], path: Path) -> Packed:
    """For a store that needs the finished file (no fsync: it is a temp file)."""
    with open(path, "wb") as fh:
        out = HashingWriter(fh)
        built = produce(out)
    return Packed(built.raw_size, None, out.size, out.sha256, out.md5, built.members)


async def _put_bytes(store: Store, key: str, data: bytes) -> None:
    with tempfile.NamedTemporaryFile(prefix="tierkeeper-manifest-") as fh:
        fh.write(data)
        fh.flush()
        await store.put(
            key,
            PutSource.of_bytes(Path(fh.name), data, keep_readable=True),
        )  # fmt: skip
