"""A phase's review to Tier 2: `Tierkeeper/<phase>/review/`, verified like a backup.

Tier 2 keeps a phase's review for good, long after its sessions went to the
archive (see core/tier3/tier2_retention.py, which leaves this folder alone), so
the review must be readable on its own: the report and the charts are stored
as they are (a person can open them on Drive), only `phase_analytics.db` is
compressed (`.db.zst`). On an encrypted target every file is sealed with the
target's key (`.enc`), as the session backups are.

Each file is checked against the digests the store reports back, and the
review's manifest goes last and is proven landed (core/tier2/manifest_landing.py):
a manifest on the target always describes files that are all there.

A review written again (`tierkeeper review PHASE` after the phase was closed)
replaces the uploaded one under the same keys. The old manifest is removed
first, since the files it vouches for are about to change, and the files the
new review no longer has (charts gone, no HTML this time) are removed once the
new manifest is in place, so the folder holds exactly one review.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.errors import NotFoundError
from core.packing import Packed
from core.packing.compress import compress_file
from core.packing.crypto import Key, encrypt_file
from core.packing.manifest import Manifest, ManifestFile
from core.remote.base import ObjectNotFound, Store
from core.tier2.backup import ENCRYPTED, MANIFEST, ROOT, SlotFor, put_checked
from core.tier2.manifest_landing import put_manifest

REVIEW_DIR = "review"
COMPRESSED = frozenset({"phase_analytics.db"})
"""Files worth compressing: the report and PNG charts gain little and stay readable."""


def review_prefix(phase: str) -> str:
    return f"{ROOT}/{phase}/{REVIEW_DIR}"


@dataclass(frozen=True, slots=True)
class ReviewUpload:
    prefix: str
    files: list[str]
    """Stored names under the prefix, the manifest last."""
    raw_bytes: int
    stored_bytes: int


def review_files(folder: Path) -> list[str]:
    """The review's files, as relative POSIX names, in the order they are written:
    the metadata (which vouches for the others) last, as the review itself does."""
    if not (folder / "phase_metadata.json").is_file():
        raise NotFoundError(
            f"No review in {folder}", hint="write it first: `tierkeeper review PHASE`"
        )
    charts = sorted(f"charts/{p.name}" for p in (folder / "charts").glob("*.png"))
    named = ["phase_analytics.db", "phase_insights.md", "phase_insights.html"]
    return charts + [n for n in named if (folder / n).is_file()] + ["phase_metadata.json"]


def _digests(path: Path) -> Packed:
    sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return Packed(size, sha.hexdigest(), size, sha.hexdigest(), md5.hexdigest())


def _prepare(src: Path, name: str, work: Path, key: Key | None) -> tuple[str, Path, Packed]:
    """(stored name, file to upload, its digests): compressed and sealed as the target wants."""
    stored, path = name, src
    if name in COMPRESSED:
        stored, path = f"{name}.zst", work / f"{src.name}.zst"
        packed = compress_file(src, path, level=9)
    else:
        packed = _digests(src)
    if key is not None:
        sealed = work / f"{path.name}{ENCRYPTED}"
        info = encrypt_file(path, sealed, key)
        if path != src:
            path.unlink()
        stored, path = stored + ENCRYPTED, sealed
        packed = Packed(packed.raw_size, packed.raw_sha256, info.size, info.sha256, info.md5)
    return stored, path, packed


async def upload_review(
    store: Store,
    folder: Path,
    phase: str,
    *,
    key: Key | None = None,
    slot_for: SlotFor | None = None,
    progress: Callable[[int], None] | None = None,
) -> ReviewUpload:
    prefix = review_prefix(phase)
    names = await asyncio.to_thread(review_files, folder)
    try:  # an earlier review's: it must not vouch for files being replaced
        await store.delete(f"{prefix}/{MANIFEST}")
    except ObjectNotFound:
        pass
    entries: list[ManifestFile] = []
    with tempfile.TemporaryDirectory(prefix="tierkeeper-review-") as tmp:
        work = Path(tmp)
        for name in names:
            stored, path, packed = await asyncio.to_thread(_prepare, folder / name, name, work, key)
            entries.append(await put_checked(
                store, prefix, name, stored, path, packed, progress=progress, slot_for=slot_for,
                hint="close the phase again (`tierkeeper phase close NAME`) to re-upload",
            ))  # fmt: skip
        sealed = (
            {"format_version": 2, "encryption": "aes-256-gcm", "key_id": key.key_id}
            if key is not None
            else {}
        )
        manifest = Manifest(phase=phase, level=9, files=tuple(entries), **sealed)
        data = manifest.to_bytes()
        manifest_path = work / MANIFEST
        manifest_path.write_bytes(data)
        await put_manifest(store, f"{prefix}/{MANIFEST}", manifest_path, data,
                           keep_readable=True)  # fmt: skip
    files = [e.stored_name for e in entries] + [MANIFEST]
    await _drop_others(store, prefix, set(files))
    return ReviewUpload(
        prefix=prefix,
        files=files,
        raw_bytes=sum(e.size for e in entries),
        stored_bytes=sum(e.stored_size for e in entries) + len(data),
    )


async def _drop_others(store: Store, prefix: str, keep: set[str]) -> None:
    """What an earlier review left that this one does not have (a chart, the HTML, the
    plain `.db.zst` of a target since encrypted)."""
    stale = [
        info.key
        async for info in store.list(f"{prefix}/")
        if info.key[len(prefix) + 1 :] not in keep
    ]
    for key in stale:
        try:
            await store.delete(key)
        except ObjectNotFound:
            pass
