"""A session backed up to a folder target in one worker-thread call.

On a folder target a small session's cost was not its bytes but the trips
between the event loop and worker threads: one per packed file, per put, per
folder made and removed, for the read-back and the manifest, each with its
task, future and wake-up, all while the loop held the GIL the workers wanted.
Here everything from reading the session's rows to reading its manifest back
runs in one call on one worker thread, through the folder store's blocking
batch put (which moves the packed files into place from the thread's own
scratch folder, and shares one folder fsync between them); the loop sees the
session once more, to record the backup.

The promises are the async path's (core/tier2/backup.py): every stored file is
fsynced and checked against the digests the store recorded before the manifest
goes, the manifest is read back before the backups row says verified, and a
crash leaves only what the store's own put leaves (partials it resumes or
replaces). It stands in only for the wrappers whose work it redoes itself:
metering (the same observations, taken in the thread), the read cache
(invalidated for every key it may have written) and retries (a transient error
hands the session to the async path, which retries). Any other store, or a
long session (whose files go one at a time to bound memory), takes the async
path.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from core.cache.store import CachingStore
from core.errors import BadInputError, NotFoundError
from core.local.db.read_pool import ReadPool
from core.local.packed_export import pack_source_with
from core.metrics.registry import Metrics
from core.metrics.store import MeteredStore
from core.packing import IntegrityError, Packed
from core.packing.crypto import Key, encrypt_file
from core.packing.manifest import Manifest, ManifestFile
from core.recovery.catalog import stored_name as catalog_name
from core.recovery.catalog_stream import CatalogReader
from core.remote.base import (
    BlockingBatch,
    ObjectInfo,
    PutSource,
    Store,
    TransientError,
    takes_batches,
)
from core.remote.retry import RetryingStore
from core.remote.threads import until_stopped
from core.tier2 import session_layout as layout

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Route:
    """A store that takes blocking batches, and what the wrappers around it would have done."""

    folder: BlockingBatch
    metrics: Metrics | None = None
    tier: str = "folder"
    caches: tuple[CachingStore, ...] = ()


def route(store: Store) -> Route | None:
    """The store under retry, metering and cache wrappers when it takes blocking batches
    (a folder target); None for any other store, or a wrapper this path does not know
    (whatever it does would be skipped)."""
    metrics: Metrics | None = None
    tier = "folder"
    caches: list[CachingStore] = []
    inner: object = store
    while not takes_batches(inner):
        if isinstance(inner, CachingStore):
            caches.append(inner)
        elif isinstance(inner, MeteredStore):
            metrics, tier = inner.metrics, inner.tier
        elif not isinstance(inner, RetryingStore):
            return None
        inner = inner.inner
    return Route(inner, metrics, tier, tuple(caches))


@dataclass(slots=True)
class Done:
    """What the thread made; the loop records it."""

    prefix: str
    phase: str | None = None
    entries: list[ManifestFile] = field(default_factory=list)
    manifest: bytes = b""
    moved: int = 0
    """Bytes of the session's listed files stored now (the job's progress)."""
    unchanged: bool = False


class _Stopped(Exception):
    """The awaiting task was cancelled: the thread stops between steps."""


async def back_up(
    to: Route,
    reads: ReadPool,
    target: str,
    session_id: str,
    snapshots: Callable[[], Sequence[Path]],
    key: Key | None,
) -> Done | None:
    """The session packed, stored, checked and read back in one worker-thread call; None
    when it must take the async path (too long a session, or a transient error)."""
    cancel = threading.Event()
    written: list[str] = []
    loop = asyncio.get_running_loop()
    work = _Session(to, reads, target, session_id, snapshots, key, cancel, written)
    try:
        return await until_stopped(loop.run_in_executor(None, work.run), cancel)
    except TransientError:
        return None  # the async path retries it, with the retry wrapper's patience
    finally:
        for cache in to.caches:  # even a failed put may have replaced an object
            for k in written:
                cache.cache.invalidate(cache.namespace, k)


@dataclass(slots=True)
class _Session:
    to: Route
    reads: ReadPool
    target: str
    session_id: str
    snapshots: Callable[[], Sequence[Path]]
    key: Key | None
    cancel: threading.Event
    written: list[str]

    @property
    def folder(self) -> BlockingBatch:
        return self.to.folder

    def run(self) -> Done | None:
        sid = self.session_id
        with self.reads.borrow() as conn:
            facts = layout.session_facts(conn, sid, self.target)
        if facts is None:
            raise NotFoundError(f"No session {sid!r}", hint="`tierkeeper sessions` lists them")
        phase, backup_only, sources, held = facts
        prefix = layout.session_prefix(phase, sid)
        if backup_only:  # recovered, not restored: its bytes are remote only
            return Done(prefix, unchanged=True)
        if sum(s.size for s in sources) > layout.ONE_AT_A_TIME_ABOVE:
            return None  # its files go one at a time, to bound memory
        snapshots = list(self.snapshots())
        if not sources and not snapshots:
            raise BadInputError(f"Session {sid} has no stored files to back up")
        previous = None if held is None else Manifest.parse(held.encode())
        if previous is not None and layout.unchanged_since(sources, snapshots, previous):
            return Done(prefix, unchanged=True)
        old_tar = previous.file(layout.SNAPSHOTS) if previous is not None else None
        keep_old_tar = old_tar is not None and layout.snapshot_names(snapshots) <= {
            m.name for m in old_tar.members
        }
        done = Done(prefix, phase)
        made: list[Path] = []
        outbox = self.folder.kept_scratch()  # this thread's: emptied by the puts
        try:
            private = self.key is not None or (bool(snapshots) and not keep_old_tar)
            work = outbox
            if private:  # plaintext that is not what gets stored stays on this machine
                work = Path(tempfile.mkdtemp(prefix="tierkeeper-backup-"))
                made.append(work)
            packs = work if self.key is not None else outbox
            names = layout.stored_names([s.path for s in sources] + [layout.SNAPSHOTS])
            files: list[tuple[str | None, str, Path, Packed]] = []
            """(name in the manifest, None for the catalog; stored name; path; digests)"""
            for source, stored in zip(sources, names[:-1], strict=True):
                path = packs / stored
                pack = functools.partial(pack_source_with, self.reads, source.id, source.kind, path)
                packed = self._writing(path, pack)
                files.append((Path(source.path).name, stored, path, packed))
            if snapshots and not keep_old_tar:
                tarball = packs / names[-1]
                packed = self._writing(
                    tarball, lambda: layout.pack_snapshots(snapshots, work, tarball)
                )
                files.append((layout.SNAPSHOTS, tarball.name, tarball, packed))
            path = packs / catalog_name(None)  # not in the manifest: it lists no data
            packed = self._writing(path, lambda: CatalogReader(self.reads).write(sid, path))
            files.append((None, path.name, path, packed))
            if self.key is not None:
                files = [self._sealed(outbox, *f) for f in files]
            self._step()
            infos = self._put([(f"{prefix}/{f[1]}", _source(f[2], f[3])) for f in files])
            for (name, stored, _, packed), info in zip(files, infos, strict=True):
                entry = _checked(name or stored, stored, packed, info)
                if name is not None:
                    done.entries.append(entry)
                    done.moved += packed.size
            if keep_old_tar and old_tar is not None:
                done.entries.append(old_tar)
            manifest = Manifest(
                session_id=sid, phase=phase, files=tuple(done.entries), **layout.sealed_by(self.key)
            )
            done.manifest = data = manifest.to_bytes()
            manifest_path = outbox / layout.MANIFEST
            self._writing(manifest_path, lambda: manifest_path.write_bytes(data))
            self._step()
            self._put([(f"{prefix}/{layout.MANIFEST}", PutSource.of_bytes(manifest_path, data))])
        except BaseException:
            _empty(outbox)  # what was not put: the next session starts from nothing
            raise
        finally:
            for folder in made:
                shutil.rmtree(folder, ignore_errors=True)
        # what a restore will see, from the disk itself
        mkey = f"{prefix}/{layout.MANIFEST}"
        back = self._timed("get", 1, len(data), lambda: self.folder.read_small(mkey, self.cancel))
        if back != data:
            raise IntegrityError(
                "The manifest read back from the store differs from the one written"
            )
        return done

    def _step(self) -> None:
        if self.cancel.is_set():
            raise _Stopped

    def _put(self, items: list[tuple[str, PutSource]]) -> list[ObjectInfo]:
        self.written.extend(k for k, _ in items)
        nbytes = sum(s.size for _, s in items)
        return self._timed("put", len(items), nbytes,
                           lambda: self.folder.put_many(items, self.cancel))  # fmt: skip

    def _timed(self, op: str, count: int, nbytes: int, call: Callable[[], _T]) -> _T:
        """The metering wrapper's observations (one per object), taken here."""
        metrics = self.to.metrics
        if metrics is None:
            return call()
        start = time.perf_counter()
        try:
            result = call()
        except Exception:
            metrics.observe(op, self.to.tier, time.perf_counter() - start, ok=False)
            raise
        each = (time.perf_counter() - start) / count
        for _ in range(count):
            metrics.observe(op, self.to.tier, each, nbytes // count)
        return result

    def _writing(self, path: Path, make: Callable[[], _T]) -> _T:
        """Disk errors writing into the target's scratch are the target's (a full or
        unplugged backup disk), not a crash; a local file's are not."""
        self._step()
        try:
            return make()
        except OSError as err:
            where = err.filename
            inside = path.is_relative_to(self.folder.root) and (
                where is None or Path(str(where)).is_relative_to(self.folder.root)
            )
            if not inside:
                raise
            raise self.folder.write_error(err, path) from err

    def _sealed(
        self, outbox: Path, name: str | None, stored: str, path: Path, packed: Packed
    ) -> tuple[str | None, str, Path, Packed]:
        """What leaves the machine is ciphertext; the digests are of it."""
        assert self.key is not None
        key = self.key
        sealed = outbox / (path.name + layout.ENCRYPTED)
        info = self._writing(sealed, lambda: encrypt_file(path, sealed, key))
        path.unlink()
        packed = Packed(packed.raw_size, packed.raw_sha256, info.size, info.sha256, info.md5,
                        packed.members)  # fmt: skip
        return name, stored + layout.ENCRYPTED, sealed, packed


def _empty(folder: Path) -> None:
    try:
        leftovers = list(folder.iterdir())
    except OSError:
        return  # the disk went away: the store removes its scratch on close, or a day later
    for path in leftovers:
        with contextlib.suppress(OSError):
            path.unlink()


def _source(path: Path, packed: Packed) -> PutSource:
    return PutSource(path, packed.size, packed.sha256, packed.md5)


def _checked(name: str, stored: str, packed: Packed, info: ObjectInfo) -> ManifestFile:
    entry = ManifestFile.from_packed(name, stored, packed).model_copy(
        update={"remote_md5": info.md5, "remote_sha256": info.sha256}
    )
    problems = layout.check_remote(entry, info)
    if problems:
        raise IntegrityError(
            "The store reports something other than what was uploaded: " + "; ".join(problems),
            hint="run the backup again; if it persists, check the target",
        )
    return entry
