"""Rebuild the catalog from one target's manifests, catalogs and index: no data blob is read.

Tier 2: every `<phase>/sessions/session_<id>/manifest.json` found by listing
(so a session backed up after the last index is found too), each with its
`catalog.json.zst`; the index says what should be there, so a manifest that
went missing is reported by name instead of silently lost. Tier 3: every
`metadata/<phase>_manifest.json` with its phase catalog (STANDARD class:
readable without a thaw).

Read-only towards the remote: list and get, never put or delete. Towards the
DB, rows are only added (core/recovery/apply.py), in one transaction per target.
"""

from __future__ import annotations

import asyncio
import io
import re
from dataclasses import dataclass, field
from typing import Any

from core.errors import TierkeeperError
from core.local.db.database import Database
from core.packing.crypto import Key
from core.packing.manifest import Manifest
from core.recovery import apply, catalog
from core.recovery.publish import METADATA, ROOT
from core.remote.base import ObjectNotFound, RemoteError, Store

PARALLEL = 16
"""Small objects fetched at once: round trips, not bandwidth, are what a rebuild waits on."""
_SESSION = re.compile(rf"^{ROOT}/(?P<phase>[^/]+)/sessions/session_(?P<id>[^/]+)/(?P<name>[^/]+)$")
_PHASE = re.compile(rf"^{METADATA}/(?P<phase>.+)_manifest\.json$")


@dataclass(slots=True)
class RebuildReport:
    target: str
    tier: int
    index: str = "missing"
    """ok, missing, or what was wrong with it."""
    sessions_found: int = 0
    sessions_added: int = 0
    already_known: int = 0
    without_catalog: int = 0
    phases: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    bytes_read: int = 0
    objects_read: int = 0
    lost: list[str] = field(default_factory=list)
    """Sessions the index lists whose manifest is gone."""


class _Reader:
    """Gets small objects whole, counting what crossed the wire."""

    def __init__(self, store: Store, report: RebuildReport) -> None:
        self.store = store
        self.report = report
        self._gate = asyncio.Semaphore(PARALLEL)

    async def get(self, key: str) -> bytes:
        async with self._gate:
            buf = io.BytesIO()
            await self.store.get(key, buf)
        data = buf.getvalue()
        self.report.bytes_read += len(data)
        self.report.objects_read += 1
        return data


@dataclass(slots=True)
class _Found:
    session_id: str
    prefix: str
    manifest_text: str
    manifest: Manifest
    doc: dict[str, Any] | None


async def rebuild_tier2(
    db: Database, store: Store, target: str, key: Key | None, body: dict[str, Any] | None,
    report: RebuildReport,
) -> RebuildReport:  # fmt: skip
    """`body`: the target's checked index, or None when there is none (or it is damaged)."""
    reader = _Reader(store, report)
    folders: dict[str, set[str]] = {}
    async for info in store.list(f"{ROOT}/"):
        m = _SESSION.match(info.key)
        if m:
            folders.setdefault(info.key.rsplit("/", 1)[0], set()).add(m["name"])
    with_manifest = {p for p, names in folders.items() if "manifest.json" in names}
    for entry in (body or {}).get("sessions", []):
        if entry["prefix"] not in with_manifest:
            report.lost.append(str(entry["id"]))
            report.problems.append(
                f"session {entry['id']}: its manifest {entry['prefix']}/manifest.json is "
                "missing from the target, so the session was not recovered from it"
            )

    async def one(prefix: str) -> _Found | None:
        try:
            text = (await reader.get(f"{prefix}/manifest.json")).decode()
            manifest = Manifest.parse(text.encode())
        except (TierkeeperError, UnicodeDecodeError) as exc:
            if isinstance(exc, RemoteError) and not isinstance(exc, ObjectNotFound):
                raise
            report.problems.append(f"{prefix}/manifest.json: {exc}")
            return None
        sid = manifest.session_id or prefix.rsplit("session_", 1)[-1]
        names = folders[prefix]
        doc = None
        name = catalog.stored_name(key)
        if name in names:
            try:
                doc = catalog.decode(await reader.get(f"{prefix}/{name}"), f"{prefix}/{name}", key)
                if doc.get("session_id") != sid:
                    raise TierkeeperError(f"it describes {doc.get('session_id')!r}, not {sid}")
            except TierkeeperError as exc:
                if isinstance(exc, RemoteError) and not isinstance(exc, ObjectNotFound):
                    raise
                report.problems.append(f"session {sid}: catalog unusable ({exc})")
                doc = None
        elif any(n.startswith(catalog.CATALOG) for n in names):
            report.problems.append(
                f"session {sid}: its catalog is encrypted and no key was given"
                if key is None
                else f"session {sid}: catalog not readable"
            )
        return _Found(sid, prefix, text, manifest, doc)

    found = [f for f in await asyncio.gather(*(one(p) for p in sorted(with_manifest)))
             if f is not None]  # fmt: skip
    report.sessions_found = len(found)
    current = ((body or {}).get("current_phase") or {}).get("name")
    async with db.transaction() as tx:
        batch = await apply.open_batch(tx, target)
        for phase in (body or {}).get("phases", []):
            batch.add_phase(phase)
        for f in found:
            if f.manifest.phase:
                status = "open" if f.manifest.phase == current else "closed"
                batch.add_phase({"name": f.manifest.phase, "status": status})
            added = batch.add_session(
                f.doc, f.manifest, session_id=f.session_id, phase=f.manifest.phase,
                target=target, tier=2, prefix=f.prefix,
            )  # fmt: skip
            report.sessions_added += added
            report.already_known += not added
            report.without_catalog += added and f.doc is None
            batch.add_backup(f.session_id, target, f.prefix, f.manifest_text, f.manifest)
        await batch.write(tx)
    report.phases = sorted({f.manifest.phase for f in found if f.manifest.phase})
    return report


async def rebuild_tier3(
    db: Database, store: Store, target: str, key: Key | None, body: dict[str, Any] | None,
    report: RebuildReport,
) -> RebuildReport:  # fmt: skip
    reader = _Reader(store, report)
    listed = {info.key async for info in store.list(f"{METADATA}/")}
    phases = sorted(m["phase"] for k in listed if (m := _PHASE.match(k)))
    entries = {a["phase"]: a for a in (body or {}).get("archives", [])}
    for name in sorted(set(entries) - set(phases)):
        report.problems.append(f"phase {name}: its archive manifest is missing from {target}")

    async def one(phase: str) -> tuple[str, str, Manifest, dict[str, Any] | None] | None:
        where = f"{METADATA}/{phase}_manifest.json"
        try:
            text = (await reader.get(where)).decode()
            manifest = Manifest.parse(text.encode())
        except (TierkeeperError, UnicodeDecodeError) as exc:
            if isinstance(exc, RemoteError) and not isinstance(exc, ObjectNotFound):
                raise
            report.problems.append(f"{where}: {exc}")
            return None
        doc = None
        cat = f"{METADATA}/{phase}_{catalog.stored_name(key)}"
        if cat in listed:
            try:
                doc = catalog.decode(await reader.get(cat), cat, key)
            except TierkeeperError as exc:
                if isinstance(exc, RemoteError) and not isinstance(exc, ObjectNotFound):
                    raise
                report.problems.append(f"phase {phase}: catalog unusable ({exc})")
        else:
            report.problems.append(
                f"phase {phase}: no readable catalog on {target}; its sessions appear "
                "once the phase is archive-restored"
            )
        return phase, text, manifest, doc

    found = [f for f in await asyncio.gather(*(one(p) for p in phases)) if f is not None]
    async with db.transaction() as tx:
        batch = await apply.open_batch(tx, target)
        for phase_row in (body or {}).get("phases", []):
            batch.add_phase(phase_row)
        for phase, _, _, doc in found:
            batch.add_phase({"name": phase, "status": "closed"})
            for sdoc in (doc or {}).get("sessions", []):
                report.sessions_found += 1
                added = batch.add_session(
                    sdoc, None, session_id=str(sdoc["session_id"]), phase=phase,
                    target=target, tier=3, prefix=None,
                )  # fmt: skip
                report.sessions_added += added
                report.already_known += not added
        await batch.write(tx)
        for phase, text, manifest, doc in found:
            await _add_archive(tx, phase, target, text, manifest, entries.get(phase, {}), doc)
    report.phases = [f[0] for f in found]
    return report


async def _add_archive(
    tx: Any, phase: str, target: str, text: str, manifest: Manifest, entry: dict[str, Any],
    doc: dict[str, Any] | None,
) -> None:  # fmt: skip
    found = await tx.fetchone(
        "SELECT 1 FROM archives WHERE phase = ? AND target = ? AND manifest = ?",
        (phase, target, text),
    )
    if found is not None:
        return
    (file,) = manifest.files
    await tx.execute(
        """INSERT INTO archives(phase, target, source_target, key, manifest_key, manifest,
           sessions, raw_bytes, stored_bytes, created_at, verified_at, verify_status)
           VALUES (?,?,?,?,?,?,?,?,?,?,?,?)""",
        (phase, target, entry.get("source_target") or "", file.stored_name,
         f"{METADATA}/{phase}_manifest.json", text, len((doc or {}).get("sessions", [])),
         file.size, file.stored_size, manifest.created_at.isoformat(), apply.now(), "ok"),
    )  # fmt: skip
