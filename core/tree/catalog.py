"""Where a tree's snapshots live on a target, and the local copy of the newest manifest.

    tree/<label>/packs/<snapshot id>-<n>.tkp
    tree/<label>/snapshots/<snapshot id>.json.zst

A snapshot exists once its manifest does; the manifest is put last, so a backup
that died half way leaves packs nobody refers to but never half a snapshot.
Snapshot ids sort in time order. The newest manifest of each label is also kept
in the workspace, so an incremental backup does not have to download it.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import secrets
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from core.errors import BadInputError, NotFoundError
from core.remote.base import ObjectNotFound, PutSource, Store
from core.tree.manifest import LABEL_RE, Manifest

ROOT = "tree"
SNAP_SUFFIX = ".json.zst"
_ID_RE = re.compile(r"^\d{8}T\d{12}Z-[0-9a-f]{6}$")


def new_snapshot_id() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%S%f") + "Z-" + secrets.token_hex(3)


def label_for(folder: Path) -> str:
    """The default label: the folder's name made key-safe (`.claude` → `claude`)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", folder.resolve().name).lstrip("._-")[:64]
    return name or "tree"


def check_label(label: str) -> str:
    if not LABEL_RE.match(label):
        raise BadInputError(
            f"{label!r} is not a valid label",
            hint="letters, digits, '.', '_' and '-', starting with a letter or digit",
        )
    return label


def base(label: str) -> str:
    return f"{ROOT}/{check_label(label)}/"


def pack_key(snapshot: str, n: int) -> str:
    """As manifests name a pack: relative to the label's root."""
    return f"packs/{snapshot}-{n:04d}.tkp"


def snapshot_key(label: str, snapshot: str) -> str:
    return f"{base(label)}snapshots/{snapshot}{SNAP_SUFFIX}"


async def labels(store: Store) -> list[str]:
    found: set[str] = set()
    async for info in store.list(f"{ROOT}/"):
        parts = info.key.split("/")
        if len(parts) == 4 and parts[2] == "snapshots" and parts[3].endswith(SNAP_SUFFIX):
            found.add(parts[1])
    return sorted(found)


async def snapshots(store: Store, label: str) -> list[str]:
    """Ids of the label's complete snapshots, oldest first."""
    prefix = f"{base(label)}snapshots/"
    ids = []
    async for info in store.list(prefix):
        name = info.key[len(prefix) :]
        if name.endswith(SNAP_SUFFIX) and _ID_RE.match(name[: -len(SNAP_SUFFIX)]):
            ids.append(name[: -len(SNAP_SUFFIX)])
    return sorted(ids)


async def pack_keys(store: Store, label: str) -> set[str]:
    """Every pack present, as manifests name them (`packs/…`)."""
    prefix = base(label)
    return {info.key[len(prefix) :] async for info in store.list(f"{prefix}packs/")}


async def load(store: Store, label: str, snapshot: str, cache: Path | None = None) -> Manifest:
    """From the workspace's copy when it has this very snapshot, else from the target."""
    if cache is not None:
        local = cache / f"{snapshot}{SNAP_SUFFIX}"
        if local.exists():
            return Manifest.from_bytes(local.read_bytes(), where=str(local))
    key = snapshot_key(label, snapshot)
    buf = io.BytesIO()
    try:
        await store.get(key, buf)
    except ObjectNotFound:
        raise NotFoundError(f"No snapshot {snapshot} of {label} on {store.name}") from None
    return Manifest.from_bytes(buf.getvalue(), where=f"{key} on {store.name}")


async def save(store: Store, manifest: Manifest, tmpdir: Path) -> bytes:
    """Puts the manifest (the commit point of a snapshot); returns the bytes stored."""
    data = manifest.to_bytes()
    path = await asyncio.to_thread(_spill, data, tmpdir)
    try:
        source = PutSource.of_bytes(path, data, keep_readable=True)
        await store.put(snapshot_key(manifest.label, manifest.id), source)
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)
    return data


def _spill(data: bytes, tmpdir: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix="manifest-", suffix=SNAP_SUFFIX, dir=tmpdir)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return Path(name)


def keep_local(cache: Path, snapshot: str, data: bytes) -> None:
    """The newest manifest only: older ones are on the target if ever needed."""
    cache.mkdir(parents=True, exist_ok=True)
    final = cache / f"{snapshot}{SNAP_SUFFIX}"
    tmp = final.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(final)
    for old in cache.glob(f"*{SNAP_SUFFIX}"):
        if old != final:
            old.unlink(missing_ok=True)


def cache_dir(workspace_root: Path, target: str, label: str) -> Path:
    return workspace_root / "tree-cache" / target / check_label(label)
