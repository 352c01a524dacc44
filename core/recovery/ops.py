"""Recovery as the service offers it: rebuild, restore, drift report and repair.

The service's methods delegate here (it stays a list of thin entry points).
Targets are opened with the ordinary retry policy but no read cache: a
rebuild must see what the remote holds now.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from core.config import TargetConfig
from core.errors import BadInputError, TierkeeperError
from core.local import lifecycle
from core.packing.crypto import Key
from core.recovery import apply, index
from core.recovery.publish import METADATA, ROOT, TIER2_INDEX, TIER3_INDEX
from core.recovery.rebuild import RebuildReport, rebuild_tier2, rebuild_tier3
from core.recovery.restore import RESTORED, RestoreOutcome, restore_one
from core.remote.base import ObjectNotFound, Store
from core.tier2.encryption import KeyMissingError, target_key, unlock
from core.tier2.encryption_claim import config_of
from core.tier2.targets import open_store
from core.workspace import Workspace

if TYPE_CHECKING:
    from core.service import Service


# damaged DB -------------------------------------------------------------------------
def db_damage(path: Path) -> str | None:
    """What is wrong with the DB file (None: it opens and passes SQLite's quick check)."""
    if not path.exists():
        return None
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = con.execute("PRAGMA quick_check").fetchone()
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    return None if row is not None and row[0] == "ok" else str(row[0] if row else "no answer")


def set_aside_damaged_db(ws: Workspace) -> Path | None:
    """Moves a damaged DB (with its WAL) aside, untouched, so a rebuild starts clean."""
    path = ws.db_path
    if db_damage(path) is None:
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        part = path.with_name(path.name + suffix)
        if part.exists():
            shutil.move(part, aside.with_name(aside.name + suffix))
    return aside


# rebuild ------------------------------------------------------------------------------
async def _get(store: Store, key: str, report: RebuildReport) -> bytes | None:
    buf = io.BytesIO()
    try:
        await store.get(key, buf)
    except ObjectNotFound:
        return None
    report.bytes_read += len(buf.getvalue())
    report.objects_read += 1
    return buf.getvalue()


def _key_for(
    svc: Service, target: TargetConfig, body: dict[str, Any] | None, secret: str | None
) -> tuple[Key | None, TargetConfig]:
    """The target's key: from the keyring when config knows it, else from the passphrase
    or recovery code, checked against the key id the index names (then kept)."""
    config = config_of(body or {})
    if config is None:
        return target_key(target, svc.scope), target
    if target.encryption is not None and target.encryption.key_id == config.key_id:
        try:
            return target_key(target, svc.scope), target
        except KeyMissingError:
            if secret is None:
                raise
    if secret is None:
        raise KeyMissingError(
            f"The backups on {target.name} are encrypted (key {config.key_id})",
            hint="give its passphrase or recovery code: tierkeeper recover --passphrase-stdin",
        )
    updated = target.model_copy(update={"encryption": config})
    return unlock(updated, svc.scope, secret), updated


async def learn_key(svc: Service, name: str, secret: str | None) -> None:
    """What `recover` does first for an encrypted target, on its own: the passphrase or
    recovery code checked against the index and the key kept, so a caller learns of a
    wrong one at once and a job never needs the secret in its (stored) parameters."""
    t = svc.config.target(name)
    store = open_store(t, svc.scope, svc.retry, svc.metrics)
    try:
        raw = await _get(store, TIER2_INDEX, RebuildReport(name, 2))
    finally:
        await store.close()
    body = None
    if raw is not None:
        try:
            body = index.read_body(raw)
        except TierkeeperError:
            body = None
    _, updated = await asyncio.to_thread(_key_for, svc, t, body, secret)
    if updated is not t:
        await _save_target(svc, updated)


async def recover(
    svc: Service, *, targets: list[str] | None = None, secret: str | None = None
) -> list[RebuildReport]:
    """Rebuilds the catalog from the targets' records; Tier 2 first (per-session, newer),
    then the archives. Adds only what the DB lacks; never writes to a remote."""
    svc._writable()
    chosen = [svc.config.target(n) for n in targets] if targets else list(svc.config.targets)
    if not chosen:
        raise BadInputError(
            "No target is set up to recover from",
            hint="add the target that holds the backups first: `tierkeeper target add "
            "folder NAME PATH` (or drive / s3), then run `tierkeeper recover`",
        )
    keys: dict[str, Key | None] = {}
    reports: list[RebuildReport] = []
    current: dict[str, Any] | None = None
    for tier, where in ((2, TIER2_INDEX), (3, TIER3_INDEX)):
        for t in chosen:
            t = svc.config.target(t.name)  # the encryption settings may have been learned
            report = RebuildReport(t.name, tier)
            store = open_store(t, svc.scope, svc.retry, svc.metrics)
            try:
                raw = await _get(store, where, report)
                body = None
                if raw is not None:
                    try:
                        body = index.read_body(raw)
                    except TierkeeperError as exc:
                        report.index = f"not used: {exc.message}"
                if t.name not in keys:
                    key, updated = await asyncio.to_thread(_key_for, svc, t, body, secret)
                    keys[t.name] = key
                    if updated is not t:
                        await _save_target(svc, updated)
                if raw is not None and body is not None:
                    try:
                        body = index.check(raw, keys[t.name])
                        report.index = "ok"
                    except TierkeeperError as exc:
                        report.index, body = f"not used: {exc.message}", None
                run = rebuild_tier2 if tier == 2 else rebuild_tier3
                await run(svc.db, store, t.name, keys[t.name], body, report)
            finally:
                await store.close()
            if tier == 2 and body is not None and current is None:
                current = body.get("current_phase")
            if tier == 2 or report.index != "missing" or report.sessions_found or report.phases:
                reports.append(report)
    await _settle_lost(svc, reports)
    await _current_phase(svc, current)
    svc.bus.publish("sessions.changed", {"recovered": sum(r.sessions_added for r in reports)})
    return reports


async def _settle_lost(svc: Service, reports: list[RebuildReport]) -> None:
    """A session a Tier 2 index still lists but an archive brought back is not lost (the
    phase left Tier 2 after archiving, before the index was written again)."""
    for r in reports:
        for sid in list(r.lost):
            if await svc.db.scalar("SELECT 1 FROM sessions WHERE id = ?", (sid,)):
                r.lost.remove(sid)
                r.problems = [p for p in r.problems if not p.startswith(f"session {sid}:")]


async def _save_target(svc: Service, updated: TargetConfig) -> None:
    svc.config.targets = [updated if x.name == updated.name else x for x in svc.config.targets]
    await asyncio.to_thread(svc.config.save, svc.workspace.config_path)


async def _current_phase(svc: Service, current: dict[str, Any] | None) -> None:
    """The phase new sessions join, as the backup last knew it, unless one is set here."""
    if not current or lifecycle.current_phase(svc.workspace) is not None:
        return
    status = await svc.db.scalar("SELECT status FROM phases WHERE name = ?", (current["name"],))
    if status == "open":
        await asyncio.to_thread(lifecycle.write_atomic, svc.workspace.current_phase_path,
                                orjson.dumps(current))  # fmt: skip


# restore ------------------------------------------------------------------------------
@dataclass(slots=True)
class RecoveredRestore:
    restored: list[str] = field(default_factory=list)
    files: int = 0
    messages: int = 0
    failed: list[str] = field(default_factory=list)
    archived: dict[str, list[str]] = field(default_factory=dict)
    """phase → sessions only an archive holds: `tierkeeper archive-restore PHASE` brings them."""


async def restore_recovered(svc: Service, session_ids: list[str] | None = None) -> RecoveredRestore:
    svc._writable()
    rows = await svc.db.fetchall(
        "SELECT r.session_id, r.target, r.tier, r.prefix, s.phase FROM recovered r "
        "JOIN sessions s ON s.id = r.session_id WHERE r.restored_at IS NULL ORDER BY r.session_id"
    )
    if session_ids is not None:
        wanted = set(session_ids)
        unknown = wanted - {str(r[0]) for r in rows}
        if unknown:
            raise BadInputError(
                f"Not waiting to be restored: {', '.join(sorted(unknown))}",
                hint="`tierkeeper sessions` lists them; restored ones are local already",
            )
        rows = [r for r in rows if r[0] in wanted]
    result = RecoveredRestore()
    outcome = RestoreOutcome()
    by_target: dict[str, list[Any]] = {}
    for r in rows:
        if int(r[2]) == 3:
            result.archived.setdefault(str(r[4]), []).append(str(r[0]))
        else:
            by_target.setdefault(str(r[1]), []).append(r)
    for name, items in by_target.items():
        target = svc.config.target(name)
        key = await asyncio.to_thread(target_key, target, svc.scope)
        store = open_store(target, svc.scope, svc.retry, svc.metrics)
        try:
            for r in items:
                sid = str(r[0])
                dest = svc.workspace.root / RESTORED / sid
                try:
                    await restore_one(svc.db, store, sid, str(r[3]), dest, key, outcome)
                except TierkeeperError as exc:
                    outcome.failed.append(f"{sid}: {exc}")
        finally:
            await store.close()
    result.restored, result.files = outcome.restored, outcome.files
    result.messages, result.failed = outcome.messages, outcome.failed
    svc.bus.publish("sessions.changed", {"sessions": len(result.restored)})
    return result


# drift ----------------------------------------------------------------------------------
@dataclass(slots=True)
class CatalogDrift:
    target: str
    missing_remotely: list[str] = field(default_factory=list)
    """Sessions (or archived phases) the DB says are there, that the target lacks."""
    unknown_locally: list[str] = field(default_factory=list)
    """What the target holds that the DB does not know."""
    differs: list[str] = field(default_factory=list)
    """A manifest on the target other than the one the DB recorded."""

    @property
    def clean(self) -> bool:
        return not (self.missing_remotely or self.unknown_locally or self.differs)


async def catalog_drift(svc: Service, target: str | None = None) -> list[CatalogDrift]:
    """Compares the DB with what each target holds; reads manifests, changes nothing."""
    chosen = [svc.config.target(target)] if target else list(svc.config.targets)
    out = []
    for t in chosen:
        drift = CatalogDrift(t.name)
        store = open_store(t, svc.scope, svc.retry, svc.metrics)
        try:
            await _tier2_drift(svc, store, t.name, drift)
            await _tier3_drift(svc, store, t.name, drift)
        finally:
            await store.close()
        out.append(drift)
    return out


async def _tier2_drift(svc: Service, store: Store, name: str, drift: CatalogDrift) -> None:
    remote: dict[str, str] = {}
    async for info in store.list(f"{ROOT}/"):
        if info.key.endswith("/manifest.json") and "/sessions/session_" in info.key:
            prefix = info.key.rsplit("/", 1)[0]
            remote[prefix] = prefix.rsplit("/session_", 1)[1]
    rows = await svc.db.fetchall(
        """SELECT b.session_id, b.prefix, b.manifest FROM backups b
           WHERE b.id IN (SELECT max(id) FROM backups WHERE target = ? AND verify_status = 'ok'
                          GROUP BY session_id)
             AND NOT EXISTS (SELECT 1 FROM archives a WHERE a.phase = b.phase
                             AND a.source_target = ? AND a.tier2_deleted_at IS NOT NULL)""",
        (name, name),
    )
    local = {str(r[1]): (str(r[0]), str(r[2])) for r in rows}
    for prefix, (sid, _) in sorted(local.items()):
        if prefix not in remote:
            drift.missing_remotely.append(f"session {sid} ({prefix})")
    known = {str(r[0]) for r in await svc.db.fetchall(
        "SELECT DISTINCT session_id FROM backups WHERE target = ?", (name,))}  # fmt: skip
    for prefix, sid in sorted(remote.items()):
        if prefix not in local and sid not in known:
            drift.unknown_locally.append(f"session {sid} ({prefix})")
    for prefix in sorted(set(local) & set(remote)):
        buf = io.BytesIO()
        await store.get(f"{prefix}/manifest.json", buf)
        if buf.getvalue().decode(errors="replace") != local[prefix][1]:
            drift.differs.append(f"session {local[prefix][0]} ({prefix}/manifest.json)")


async def _tier3_drift(svc: Service, store: Store, name: str, drift: CatalogDrift) -> None:
    remote = {info.key async for info in store.list(f"{METADATA}/")
              if info.key.endswith("_manifest.json")}  # fmt: skip
    rows = await svc.db.fetchall(
        "SELECT phase, manifest_key FROM archives WHERE id IN (SELECT max(id) FROM archives "
        "WHERE target = ? AND verify_status = 'ok' GROUP BY phase)",
        (name,),
    )
    local = {str(r[1]): str(r[0]) for r in rows}
    drift.missing_remotely += [f"archive of phase {p} ({k})" for k, p in sorted(local.items())
                               if k not in remote]  # fmt: skip
    drift.unknown_locally += [f"archive {k}" for k in sorted(remote - set(local))]


async def catalog_repair(svc: Service, target: str | None = None) -> dict[str, Any]:
    """The local side only: adds what the targets hold and the DB lacks (the rebuild), and
    marks backups whose manifest vanished from their target as failed. Remote untouched."""
    svc._writable()
    drifts = await catalog_drift(svc, target)
    reports = await recover(svc, targets=[d.target for d in drifts])
    marked = 0
    for d in drifts:
        for item in d.missing_remotely:
            if not item.startswith("session "):
                continue
            prefix = item[item.index("(") + 1 : -1]
            marked += await _mark_missing(svc, d.target, prefix)
    return {"added": sum(r.sessions_added for r in reports), "marked_missing": marked,
            "problems": [p for r in reports for p in r.problems]}  # fmt: skip


async def _mark_missing(svc: Service, target: str, prefix: str) -> int:
    async with svc.db.transaction() as tx:
        rows = await tx.fetchall(
            "SELECT id FROM backups WHERE target = ? AND prefix = ? AND verify_status = 'ok'",
            (target, prefix),
        )
        for r in rows:
            await tx.execute(
                "UPDATE backups SET verify_status = 'failed', verify_error = ?, "
                "verified_at = ? WHERE id = ?",
                ("its manifest is missing from the target (catalog repair)", apply.now(), r[0]),
            )
    return len(rows)
