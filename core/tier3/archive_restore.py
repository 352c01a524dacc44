"""Bring sessions back from a phase archive: download, verify, extract only what was asked.

The tarball is downloaded whole (resumable: the retry wrapper continues a
ranged read where a dropped one stopped), checked against the phase manifest's
SHA-256, decrypted if it was encrypted, then streamed once through the
extractor, which picks the members of the sessions asked for and checks each
against the digest the manifest lists. Nothing appears in the destination
unless all of it checked out.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from pathlib import Path

from core.errors import NotFoundError
from core.local.db.database import Database
from core.packing import IntegrityError
from core.packing.crypto import Key, WrongKeyError, decrypt_file
from core.packing.extract import safe_extract
from core.packing.manifest import Manifest
from core.remote.base import Store
from core.tier2.encryption import KeyMissingError


async def latest_archive(db: Database, phase: str, target: str) -> tuple[str, Manifest]:
    """(tarball key, manifest) of the newest verified archive of `phase` on `target`."""
    row = await db.fetchone(
        "SELECT key, manifest FROM archives WHERE phase = ? AND target = ? "
        "AND verify_status = 'ok' ORDER BY id DESC LIMIT 1",
        (phase, target),
    )
    if row is None:
        raise NotFoundError(
            f"Phase {phase!r} has no archive on {target}",
            hint=f"archive it first: tierkeeper archive {phase}",
        )
    return str(row[0]), Manifest.parse(str(row[1]).encode())


def session_members(manifest: Manifest, phase: str, sessions: list[str] | None) -> set[str]:
    (entry,) = manifest.files
    names = {m.name for m in entry.members}
    if sessions is None:
        return names
    wanted = set()
    for sid in sessions:
        base = f"{phase}/sessions/session_{sid}/"
        found = {n for n in names if n.startswith(base)}
        if not found:
            raise NotFoundError(f"Session {sid} is not in the archive of phase {phase!r}")
        wanted |= found
    return wanted


def _check_and_open(path: Path, manifest: Manifest, key: Key | None, work: Path) -> Path:
    (entry,) = manifest.files
    with open(path, "rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    if digest != entry.stored_sha256:
        raise IntegrityError(
            f"The downloaded {entry.stored_name} does not match its manifest",
            hint="download it again; if it persists the archive copy is damaged",
        )
    if manifest.encryption == "none":
        return path
    plain = work / "phase.tar.zst"
    assert key is not None
    decrypt_file(path, plain, key)
    return plain


async def restore_from_archive(
    store: Store,
    key: str,
    manifest: Manifest,
    dest: Path,
    *,
    sessions: list[str] | None = None,
    secret: Key | None = None,
    overwrite: bool = False,
) -> list[Path]:
    phase = manifest.phase or ""
    if manifest.encryption != "none":
        if secret is None:
            raise KeyMissingError(f"The archive of {phase} is encrypted and no key was given")
        if secret.key_id != manifest.key_id:
            raise WrongKeyError(
                f"The archive of {phase} was encrypted with key {manifest.key_id}, "
                f"not {secret.key_id}"
            )
    wanted = session_members(manifest, phase, sessions)
    (entry,) = manifest.files
    with tempfile.TemporaryDirectory(prefix="tierkeeper-unarchive-") as tmp:
        work = Path(tmp)
        download = work / entry.stored_name
        with open(download, "wb") as fh:  # noqa: ASYNC230 - a local temp file
            await store.get(key, fh)
        tarball = await asyncio.to_thread(_check_and_open, download, manifest, secret, work)
        expected = {n: d for n, d in entry.member_digests().items() if n in wanted}
        return await asyncio.to_thread(
            safe_extract, tarball, dest, members=wanted, expected=expected, overwrite=overwrite
        )
