"""Writing the recovery records: session catalogs, phase catalogs and the targets' indexes.

Called by the backup and archive jobs after their data is verified. Every
record is small and rewritten whole (a put replaces atomically), so a crash
leaves the previous version, never half of one. The index is an accelerator
and a cross-check: a rebuild still finds sessions backed up after the last
index was written, by listing the manifests.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import tempfile
from pathlib import Path
from typing import Any

from core.config import EncryptionConfig
from core.local import lifecycle
from core.local.db.database import Database
from core.local.db.read_pool import ReadPool
from core.packing.crypto import Key, encrypt_stream
from core.recovery import catalog, catalog_stream, index
from core.remote.base import ObjectInfo, PutSource, Store
from core.workspace import Workspace

ROOT = "Tierkeeper"
"""Tier 2's root folder (core/tier2/backup.py); not imported from there to avoid a cycle."""
TIER2_INDEX = f"{ROOT}/{index.INDEX}"
CURRENT_PHASE = f"{ROOT}/current_phase.json"
METADATA = "metadata"
TIER3_INDEX = f"{METADATA}/{index.INDEX}"


def phase_catalog_key(phase: str, key: Key | None) -> str:
    return f"{METADATA}/{phase}_{catalog.stored_name(key)}"


def kdf_of(config: EncryptionConfig | None) -> dict[str, Any] | None:
    """What the index says about encryption: the key's id and the passphrase's salt and cost."""
    if config is None:
        return None
    params = config.model_dump()
    key_id = params.pop("key_id")
    return {"scheme": "aes-256-gcm", "key_id": key_id, "kdf": params}


async def put_bytes(store: Store, key: str, data: bytes, *, keep_readable: bool = False
                    ) -> ObjectInfo:  # fmt: skip
    def write() -> str:
        with tempfile.NamedTemporaryFile(prefix="tierkeeper-record-", delete=False) as fh:
            fh.write(data)
            return fh.name

    path = Path(await asyncio.to_thread(write))
    try:
        return await store.put(
            key,
            PutSource.of_bytes(path, data, keep_readable=keep_readable),
        )  # fmt: skip
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)


async def _phases(db: Database) -> list[dict[str, Any]]:
    rows = await db.fetchall("SELECT name, status, created_at, closed_at FROM phases ORDER BY name")
    return [dict(r) for r in rows]


async def publish_tier2_index(
    db: Database, store: Store, target: str, encryption: EncryptionConfig | None,
    key: Key | None, workspace: Workspace,
) -> None:  # fmt: skip
    """Lists the newest verified backup of each session still on the target."""
    rows = await db.fetchall(
        """SELECT b.session_id, b.phase, b.prefix, b.manifest FROM backups b
           WHERE b.id IN (SELECT max(id) FROM backups WHERE target = ? AND verify_status = 'ok'
                          GROUP BY session_id)
             AND NOT EXISTS (SELECT 1 FROM archives a WHERE a.phase = b.phase
                             AND a.source_target = ? AND a.tier2_deleted_at IS NOT NULL)
           ORDER BY b.session_id""",
        (target, target),
    )
    sessions = [
        {"id": r[0], "phase": r[1], "prefix": r[2],
         "manifest_sha256": hashlib.sha256(str(r[3]).encode()).hexdigest()}
        for r in rows
    ]  # fmt: skip
    current = await asyncio.to_thread(lifecycle.current_phase, workspace)
    current_doc = None if current is None else {"name": current.name,
                                                "started_at": current.started_at}  # fmt: skip
    body = index.new_body(2, kdf_of(encryption), target=target, phases=await _phases(db),
                          current_phase=current_doc, sessions=sessions)  # fmt: skip
    await put_bytes(store, TIER2_INDEX, index.seal(body, key))
    if current is not None:
        raw = await asyncio.to_thread(workspace.current_phase_path.read_bytes)
        await put_bytes(store, CURRENT_PHASE, raw)


async def render_phase_catalog(db: Database, phase: str, key: Key | None) -> bytes:
    """The phase catalog's bytes, ready to put. Apart from `put_phase_catalog` so an
    archive can render it (SQLite writes the JSON, in a thread of its own) while its
    tarball is still being built."""
    return await asyncio.to_thread(_render, db.path, phase, key)


def _render(db_path: Path, phase: str, key: Key | None) -> bytes:
    pool = ReadPool(db_path)
    try:
        packed = io.BytesIO()
        catalog_stream.write_phase(pool, phase, packed)
    finally:
        pool.close()
    if key is None:
        return packed.getvalue()
    sealed = io.BytesIO()
    packed.seek(0)
    encrypt_stream(packed, sealed, key)
    return sealed.getvalue()


async def put_phase_catalog(archive: Store, phase: str, key: Key | None, data: bytes) -> str:
    where = phase_catalog_key(phase, key)
    await put_bytes(archive, where, data, keep_readable=True)
    return where


async def publish_tier3_index(
    db: Database, archive: Store, target: str, encryption: EncryptionConfig | None,
    key: Key | None,
) -> None:  # fmt: skip
    rows = await db.fetchall(
        """SELECT phase, key, manifest_key, manifest, source_target, created_at FROM archives
           WHERE id IN (SELECT max(id) FROM archives WHERE target = ? AND verify_status = 'ok'
                        GROUP BY phase) ORDER BY phase""",
        (target,),
    )
    phases = [
        {"phase": r[0], "tarball": r[1], "manifest": r[2],
         "manifest_sha256": hashlib.sha256(str(r[3]).encode()).hexdigest(),
         "catalog": phase_catalog_key(str(r[0]), key), "source_target": r[4],
         "archived_at": r[5]}
        for r in rows
    ]  # fmt: skip
    body = index.new_body(3, kdf_of(encryption), target=target, phases=await _phases(db),
                          archives=phases)  # fmt: skip
    await put_bytes(archive, TIER3_INDEX, index.seal(body, key), keep_readable=True)
