"""What a target holds, shown before a rebuild: one listing and the index, no data read.

A user on a new machine points at a folder or a Drive and must see that it is the
right one (how many sessions, which phases, whether a passphrase is needed) before
anything is written to the new workspace. The listing is the truth about which
sessions are there; the index adds what a listing cannot say (phase status, the
encryption, when it was written). The index is read unchecked: it is only shown,
and the rebuild checks it before it trusts it.
"""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING, Any

from core.errors import TierkeeperError
from core.models import BackupContents, PhaseHeld
from core.recovery import index
from core.recovery.publish import METADATA, ROOT, TIER2_INDEX
from core.remote.base import ObjectNotFound, Store
from core.tier2.encryption import target_key
from core.tier2.targets import open_store

if TYPE_CHECKING:
    from core.service import Service

_MANIFEST = re.compile(rf"^{ROOT}/(?P<phase>[^/]+)/sessions/session_(?P<id>[^/]+)/manifest\.json$")
_ARCHIVE = re.compile(rf"^{METADATA}/(?P<phase>.+)_manifest\.json$")


async def _index_body(store: Store) -> tuple[str, dict[str, Any] | None]:
    buf = io.BytesIO()
    try:
        await store.get(TIER2_INDEX, buf)
    except ObjectNotFound:
        return "missing", None
    try:
        return "ok", index.read_body(buf.getvalue())
    except TierkeeperError as exc:
        return f"not readable: {exc.message}", None


async def backup_contents(svc: Service, name: str | None) -> BackupContents:
    target = svc.config.target(name)
    store = open_store(target, svc.scope, svc.retry, svc.metrics)
    try:
        held: dict[str, set[str]] = {}
        encrypted_files = False
        async for info in store.list(f"{ROOT}/"):
            m = _MANIFEST.match(info.key)
            if m:
                held.setdefault(m["phase"], set()).add(m["id"])
            encrypted_files = encrypted_files or info.key.endswith(".enc")
        archived = sorted([m["phase"] async for info in store.list(f"{METADATA}/")
                           if (m := _ARCHIVE.match(info.key))])  # fmt: skip
        state, body = await _index_body(store)
    finally:
        await store.close()
    body = body or {}
    status = {str(p["name"]): p.get("status") for p in body.get("phases", [])}
    ids = {sid for found in held.values() for sid in found}
    known = 0
    if ids:
        marks = ", ".join("?" * len(ids))
        known = int(await svc.db.scalar(
            f"SELECT count(*) FROM sessions WHERE id IN ({marks})", tuple(ids)) or 0)  # fmt: skip
    enc = body.get("encryption")
    encrypted = bool(enc) or encrypted_files
    return BackupContents(
        target=target.name,
        index=state,
        encrypted=encrypted,
        unlocked=encrypted and _unlocked(svc, target, enc),
        sessions=len(ids),
        known_here=known,
        phases=[
            PhaseHeld(name=p, status=status.get(p), sessions=len(s))
            for p, s in sorted(held.items())
        ],
        archived_phases=archived,
        current_phase=(body.get("current_phase") or {}).get("name"),
        written_at=body.get("written_at"),
        written_by=body.get("tool_version"),
    )


def _unlocked(svc: Service, target: Any, enc: dict[str, Any] | None) -> bool:
    """Its key is in this computer's keyring, and it is the key the index names."""
    config = target.encryption
    if config is None or (enc and enc.get("key_id") != config.key_id):
        return False
    try:
        return target_key(target, svc.scope) is not None
    except TierkeeperError:
        return False
