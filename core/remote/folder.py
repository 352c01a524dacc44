"""A Tier 2 store on any mounted folder: an external disk, a NAS share, a second drive.

A folder looks simple, but it fails in the ways disks fail: the USB disk is not
plugged in, the NAS mount went stale, the disk fills up half-way through a
copy, the share is mounted read-only. Each of those becomes the store error a
job can act on (wait, or stop and tell the user), and none of them may leave
a half-written object under its final name: data goes to a temp file in the
same directory, is hashed while copied, fsynced, checked against the digests
the caller computed, and only then renamed into place.

The digests are kept with the file so `stat` can answer like a cloud store
does — with the checksum it holds — without reading the whole file back: in an
extended attribute (`user.tierkeeper.digests`, set before the fsync, so the
object appears with its digests), or where the filesystem has none (FAT, exFAT,
many network shares) in a small JSON sidecar beside the tree (under
`.tierkeeper-digests/`, mirroring the data tree name for name, so
`.tierkeeper-digests/p1/a.zst` describes `p1/a.zst`). Either record also holds
size and mtime; if the file no longer matches them (edited or copied in by
hand) the digests are reported as unknown instead of wrong.

A caller that makes its files just before putting them (a backup packing a
session) can make them in `scratch()`, a folder on the target's own disk: such a
file is hard-linked into place instead of copied, so its bytes cross the disk
once.

All blocking I/O runs in worker threads; progress callbacks are handed back to
the event loop so callers may touch loop-bound state from them.
"""

from __future__ import annotations

import asyncio
import builtins
import errno
import functools
import hashlib
import io
import os
import shutil
import stat
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal, TypeVar

import orjson

from core.durable import fsync_dir as _fsync_dir
from core.remote.base import (
    ObjectInfo,
    ObjectNotFound,
    PermanentError,
    ProgressFn,
    PutSource,
    RemoteError,
    ResumeSlot,
    TransientError,
    check_key,
)
from core.remote.threads import loop_notifier, until_stopped

BLOCK = 1024 * 1024
DIGESTS_DIR = ".tierkeeper-digests"
PART_PREFIX = ".tk-part-"
SCRATCH_DIR = PART_PREFIX + "scratch"
"""Under the root: where `scratch()` folders go (never an object: keys cannot hold it)."""
SCRATCH_MAX_AGE = 24 * 3600
"""A scratch folder this old was left by a crash: the next `scratch()` removes it."""
XATTR = "user.tierkeeper.digests"

MTIME_SLACK_NS = 2_000_000_000
"""FAT-formatted USB disks keep mtimes in 2 s steps: a remount must not lose the digests."""

_T = TypeVar("_T")

_FULL = {errno.ENOSPC, errno.EDQUOT}
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}
_FLAKY = {errno.EIO, errno.ETIMEDOUT, errno.ESTALE, errno.ENOTCONN, errno.EHOSTDOWN}
_MISSING = {errno.ENOENT, errno.ENOTDIR, errno.EISDIR}


def partial_name(key: str, sha256: str) -> str:
    """The temp file name an interrupted put of `key` with this content leaves behind.

    Deterministic, so a later put of the same content finds it and resumes;
    different content gets a different name and never appends to stale bytes.
    """
    tag = hashlib.sha256(f"{key}\n{sha256}".encode()).hexdigest()[:40]
    return PART_PREFIX + tag


class _Cancelled(Exception):
    """Raised in a worker thread when the awaiting task was cancelled."""


class FolderStore:
    def __init__(self, root: Path, name: str = "folder", *, xattrs: bool = True) -> None:
        """`xattrs=False` keeps digests in sidecars only (as on a FAT disk)."""
        self.root = Path(root)
        self.name = name
        self._xattrs = xattrs and sys.platform == "linux"
        self._swept = False
        self._key_locks = _KeyLocks()
        self._thread_scratch = threading.local()
        self._kept: builtins.list[Path] = []
        self._kept_lock = threading.Lock()
        self._real_root: Path | None = None
        self._sidecars: bool | None = None
        """Whether the backup holds digest sidecars at all (None: not looked yet)."""
        self._inside: set[str] = set()
        """Folders already known to resolve inside the root (see `_dir_inside`)."""

    # -- the Store protocol ------------------------------------------------

    async def put(
        self,
        key: str,
        source: PutSource,
        progress: ProgressFn | None = None,
        *,
        resume: ResumeSlot | None = None,
    ) -> ObjectInfo:
        """Resumes by itself: the partial file's name is derived from key and content."""
        del resume
        self._check(key)
        notify = loop_notifier(progress)
        return await self._in_thread(self._put_sync, key, source, notify)

    async def get(
        self,
        key: str,
        dest: BinaryIO,
        *,
        offset: int = 0,
        length: int | None = None,
        progress: ProgressFn | None = None,
    ) -> int:
        self._check(key)
        if offset < 0 or (length is not None and length < 0):
            raise PermanentError(f"invalid range offset={offset} length={length} for {key!r}")
        notify = loop_notifier(progress)
        return await self._in_thread(self._get_sync, key, dest, offset, length, notify)

    async def stat(self, key: str) -> ObjectInfo:
        self._check(key)
        return await self._in_thread(self._stat_sync, key)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        if prefix:
            head = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
            if prefix.startswith("/") or "\\" in prefix or "\x00" in prefix:
                raise PermanentError(f"{prefix!r} is not a valid key prefix")
            if head:
                check_key(head)
        infos = await self._in_thread(self._list_sync, prefix)
        for info in infos:
            yield info

    async def delete(self, key: str) -> None:
        self._check(key)
        await self._in_thread(self._delete_sync, key)

    async def close(self) -> None:
        """Nothing is held open between calls; scratch folders kept for threads go."""
        with self._kept_lock:
            kept, self._kept = self._kept, []
        if kept:
            await asyncio.to_thread(_remove_all, kept)

    def kept_scratch(self) -> Path:
        """The calling thread's own scratch folder, kept until `close` (blocking).

        For a caller that makes and puts a few files many times over (a backup's
        sessions, each in one worker-thread call): a folder made and removed per
        session cost more than the session's own file work. Files put from it with
        `put_many` are moved into place; the caller removes any it did not put.
        """
        folder: Path | None = getattr(self._thread_scratch, "path", None)
        if folder is None or not os.path.isdir(folder):  # noqa: PTH112 - hot path
            folder = self.scratch()
            self._thread_scratch.path = folder
            with self._kept_lock:
                self._kept.append(folder)
        return folder

    def scratch(self) -> Path:
        """A new private folder on the target's disk, for files about to be put (blocking).

        A file made there and then put is linked into place, not copied, and from
        then on belongs to the store: the caller must not change it, only remove
        the folder when done. Folders a crash left behind are removed a day later.
        """
        self._require_root()
        base = self.root / SCRATCH_DIR
        try:
            base.mkdir(exist_ok=True)
            if base.is_symlink() or not base.is_dir():
                raise PermanentError(f"{base} is not a folder of this backup")
            if not self._swept:
                self._swept = True
                _sweep(base, time.time() - SCRATCH_MAX_AGE)
            return Path(tempfile.mkdtemp(dir=base))
        except OSError as err:
            raise self._map(err, base, "write to") from err

    async def create_root(self) -> None:
        """Create the root folder; for `target add` only, when the user just chose the path.

        Jobs never create the root: a missing root means the disk is not
        mounted, and writing into the empty mount point would fill the wrong disk.
        """
        try:
            await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        except OSError as err:
            raise self._map(err, self.root, "write to") from err

    # -- plumbing ------------------------------------------------------------

    async def _in_thread(self, fn: Callable[..., _T], *args: object) -> _T:
        """Run `fn(cancel, *args)` in a worker; on cancellation, stop it and wait for it.

        Waiting keeps the promise that nothing touches the files once the call
        has returned, even when the caller gave up on it.
        """
        cancel = threading.Event()
        # the executor's future itself, not a task around `to_thread`: one object
        # and one loop step fewer for every object a backup touches
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(None, functools.partial(fn, cancel, *args))
        return await until_stopped(fut, cancel)

    def _check(self, key: str) -> None:
        check_key(key)
        parts = key.split("/")
        if parts[0] == DIGESTS_DIR or any(p.startswith(PART_PREFIX) for p in parts):
            raise PermanentError(f"{key!r} uses a name the folder store reserves for itself")

    def _require_root(self) -> Path:
        """The resolved root, or TransientError when it is not there (disk unplugged)."""
        if not os.path.isdir(self.root):  # noqa: PTH112 - hot path
            raise TransientError(
                f"the backup folder {self.root} is not available",
                hint="is the disk connected?",
            )
        if self._real_root is None:
            self._real_root = self.root.resolve()
        return self._real_root

    def _path(self, key: str, base: Path | None = None) -> Path:
        """`root/key`, refused when it resolves outside the root (a symlink pointing out)."""
        real_root = self._require_root()
        # Strings first, Path objects only where needed: this runs for every object a
        # backup touches, and pathlib's parsing was a tenth of a small session's cost.
        top = base or self.root
        head, _, _ = key.rpartition("/")
        folder = f"{top}/{head}" if head else str(top)
        full = f"{top}/{key}"
        if (folder not in self._inside and not self._dir_inside(Path(folder), real_root)) or (
            os.path.islink(full) and not Path(full).resolve().is_relative_to(real_root)  # noqa: PTH114 - hot path
        ):
            raise PermanentError(f"{key!r} leads outside the backup folder {self.root}")
        return Path(full)

    def _dir_inside(self, folder: Path, real_root: Path) -> bool:
        """Whether `folder` (the root or below it) resolves inside the root.

        A full `resolve()` walks every component from `/` in Python, several
        times per put; most of a backup's cost went there. A folder that is
        not a symlink lies inside the root exactly when its parent does, so one
        `lstat` per new folder is enough, and folders already checked are
        remembered for the life of the store (one job). Keys never hold `..`.
        """
        name = str(folder)
        if name in self._inside or folder == self.root:
            return True
        if folder.is_symlink():
            inside = folder.resolve().is_relative_to(real_root)
        elif folder.parent == folder or not folder.is_relative_to(self.root):
            return False
        else:
            inside = self._dir_inside(folder.parent, real_root)
        if inside:
            if len(self._inside) > 100_000:  # a bound, not a cache policy
                self._inside.clear()
            self._inside.add(name)
        return inside

    def _has_sidecars(self) -> bool:
        if self._sidecars is None:
            self._sidecars = os.path.isdir(self.root / DIGESTS_DIR)  # noqa: PTH112 - hot path
        return self._sidecars

    def _sidecar(self, key: str) -> Path:
        # Mirrors the data tree name for name (no suffix), so any two keys that can
        # coexist as files also have sidecars that can coexist.
        return self._path(key, self.root / DIGESTS_DIR)

    def write_error(self, err: OSError, path: Path) -> RemoteError:
        """The store error for a failed write of the caller's own into `scratch()`."""
        return self._map(err, path, "write to")

    def _map(
        self, err: OSError, path: Path, verb: Literal["read", "write to", "delete"]
    ) -> RemoteError:
        code = err.errno
        if not self.root.is_dir():
            return TransientError(
                f"the backup folder {self.root} is not available",
                hint="is the disk connected?",
            )
        if code in _MISSING and verb != "write to":
            return ObjectNotFound(f"{path} does not exist")
        if code in _FULL:
            return PermanentError(
                f"the backup disk is full (writing {path})",
                hint="free some space on it or choose another target",
            )
        if code in _DENIED:
            why = "read-only" if code == errno.EROFS else "permission denied"
            return PermanentError(f"cannot {verb} {path}: {why}")
        if code in _FLAKY:
            return TransientError(f"I/O error on {path}: {err.strerror}")
        return PermanentError(f"{path}: {err.strerror or err}")

    # -- put -------------------------------------------------------------------

    def _put_sync(
        self, cancel: threading.Event, key: str, source: PutSource, notify: Callable[[int], None]
    ) -> ObjectInfo:
        return self._put_all(cancel, [(key, source)], notify)[0]

    def put_many(
        self, items: Sequence[tuple[str, PutSource]], cancel: threading.Event
    ) -> builtins.list[ObjectInfo]:
        """Blocking, for a worker thread: several puts in one call, each as durable and
        checked as one `put` (the same errors too), their renames sharing one fsync of
        each folder. For a caller already in a thread that writes a handful of small
        objects (a session's backup): a trip to the loop and back per object cost more
        than the objects. A source made in a scratch folder is moved into place, not
        linked: it is gone from there afterwards, even when the batch fails."""
        for key, _ in items:
            self._check(key)
        if len({key for key, _ in items}) != len(items):
            raise PermanentError("one key twice in one batch of puts")
        return self._put_all(cancel, items, lambda _n: None, move=True)

    def local_file(self, key: str) -> Path | None:
        """Blocking: the object's own file, for a reader on this machine that only reads
        it (an archive build), which then copies nothing; None when it is not there."""
        self._check(key)
        path = self._path(key)
        return path if os.path.isfile(path) else None  # noqa: PTH113 - a str-built path

    def read_small(self, key: str, cancel: threading.Event) -> bytes:
        """Blocking, for a worker thread: a whole object (a manifest) read into memory."""
        self._check(key)
        out = io.BytesIO()
        self._get_sync(cancel, key, out, 0, None, lambda _n: None)
        return out.getvalue()

    def _put_all(
        self,
        cancel: threading.Event,
        items: Sequence[tuple[str, PutSource]],
        notify: Callable[[int], None],
        *,
        move: bool = False,
    ) -> builtins.list[ObjectInfo]:
        keys = sorted({key for key, _ in items})
        with self._key_locks.holding(keys):  # two puts of one key would share a partial
            staged: builtins.list[_Staged] = []
            where = self.root
            try:
                for key, source in items:
                    staged.append(self._stage(cancel, key, source, notify, move=move))
                folders: dict[str, Path] = {}
                for one in staged:
                    where = one.target
                    # Never leave an old digest beside new bytes. A backup that never had
                    # sidecars (checked once per store) has none to clear: no path to build.
                    if not one.tagged or self._has_sidecars():
                        one.sidecar = self._sidecar(one.key)
                        _unlink_quietly(one.sidecar)
                    one.temp.replace(one.target)
                    one.placed = True
                    folders[str(one.target.parent)] = one.target.parent
                for folder in folders.values():
                    _fsync_dir(folder)
                for one in staged:
                    if not one.tagged:
                        assert one.sidecar is not None
                        self._sidecars = True
                        # Not fsynced: a sidecar lost or torn by a crash reads as "digest
                        # unknown" (never a wrong digest), and two fsyncs per object would
                        # double the cost of backing up many small sessions.
                        _write_atomic(one.sidecar, orjson.dumps(one.record), durable=False)
            except _Cancelled:
                raise
            except RemoteError as err:
                if not isinstance(err, TransientError):
                    _drop_unplaced(staged)
                raise
            except OSError as err:
                mapped = self._map(err, where, "write to")
                if not isinstance(mapped, TransientError):
                    _drop_unplaced(staged)  # a full disk must not keep a dead partial
                raise mapped from err
        return [one.info() for one in staged]

    def _stage(
        self,
        cancel: threading.Event,
        key: str,
        source: PutSource,
        notify: Callable[[int], None],
        *,
        move: bool = False,
    ) -> _Staged:
        """The object's bytes whole and fsynced, digests on them, ready to be renamed into
        place: under a partial name beside it, or (`move`) where the caller made them."""
        target = self._path(key)
        one = _Staged(key, source, target, target.parent / partial_name(key, source.sha256))

        def seal(fd: int) -> None:
            """The file's final size and mtime, and its digests on it, before its fsync."""
            st = os.fstat(fd)
            one.record.update(size=st.st_size, mtime_ns=st.st_mtime_ns)
            one.tagged = self._tag(fd, one.record)

        temp = one.temp
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if move and self._in_scratch(source) and _sealed_whole(source, seal):
                try:
                    source.path.replace(temp)  # over a partial of an earlier attempt
                except OSError:
                    pass  # another filesystem mounted inside the root: link or copy it
                else:
                    notify(source.size)
                    return one
            if self._adopt(source, temp, seal):
                notify(source.size)
                return one
            had_partial = temp.exists()
            ok = self._copy(cancel, source, temp, resume=True, notify=notify, seal=seal)
            if not ok and had_partial:
                # The partial from an earlier attempt may be torn (a crash before its
                # fsync); only a fresh full copy can tell that from a changed source.
                ok = self._copy(cancel, source, temp, resume=False, notify=notify, seal=seal)
            if not ok:
                _unlink_quietly(temp)
                raise PermanentError(
                    f"{source.path} changed while it was being copied to {key!r}",
                    hint="its checksum no longer matches; the backup will recompute it",
                )
        except (_Cancelled, RemoteError):
            raise
        except OSError as err:
            mapped = self._map(err, target, "write to")
            if not isinstance(mapped, TransientError):
                _unlink_quietly(temp)  # a full disk must not keep a dead partial
            raise mapped from err
        return one

    def _tag(self, fd: int, record: dict[str, object]) -> bool:
        """Digests as an extended attribute of the file: no second file to create and
        rename per object. False where the filesystem keeps none (then a sidecar)."""
        if not self._xattrs:
            return False
        try:
            os.setxattr(fd, XATTR, orjson.dumps(record))
        except OSError:
            self._xattrs = False  # FAT, exFAT, many shares: sidecars from now on
            return False
        return True

    def _adopt(self, source: PutSource, temp: Path, seal: Callable[[int], None]) -> bool:
        """Link a file made in `scratch()` into place as `temp`, instead of copying it.

        Its digests were taken by the caller as it wrote it, on this very disk, and
        nothing else writes there; the size is checked again. False when the file is
        not from a scratch folder, or the filesystem has no hard links (FAT, some
        shares): the caller copies it instead.
        """
        if not self._in_scratch(source):
            return False
        _unlink_quietly(temp)  # a partial of an earlier attempt
        try:
            os.link(source.path, temp)
        except OSError:
            return False
        whole = _sealed_whole(PutSource(temp, source.size, source.sha256, source.md5), seal)
        if not whole:
            _unlink_quietly(temp)
        return whole

    def _in_scratch(self, source: PutSource) -> bool:
        return str(Path(source.path).parent.parent) == str(self.root / SCRATCH_DIR)

    def _copy(
        self,
        cancel: threading.Event,
        source: PutSource,
        temp: Path,
        *,
        resume: bool,
        notify: Callable[[int], None],
        seal: Callable[[int], None],
    ) -> bool:
        """Copy source into temp (appending to a matching partial); True if digests match.

        Only a matching copy is sealed (`seal`) and fsynced: any other is discarded."""
        sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
        done = 0
        if resume and temp.exists():
            done = temp.stat().st_size
            if done > source.size:
                done = 0
            else:
                with open(temp, "rb") as part:
                    while block := part.read(BLOCK):
                        sha.update(block)
                        md5.update(block)
        try:
            src = open(source.path, "rb")  # noqa: SIM115 - closed below, errors mapped apart
        except OSError as err:
            raise PermanentError(
                f"cannot read the source file {source.path}: {err.strerror}"
            ) from err
        with src, open(temp, "r+b" if done else "wb") as out:
            out.truncate(done)
            if done:
                out.seek(done)
                src.seek(done)
            while block := src.read(BLOCK):
                if cancel.is_set():
                    raise _Cancelled
                out.write(block)
                sha.update(block)
                md5.update(block)
                done += len(block)
                notify(len(block))
            out.flush()
            ok = done == source.size and (sha.hexdigest(), md5.hexdigest()) == (
                source.sha256.lower(),
                source.md5.lower(),
            )
            if ok:
                seal(out.fileno())
                os.fsync(out.fileno())
        return ok

    # -- get / stat / list / delete ------------------------------------------------

    def _get_sync(
        self,
        cancel: threading.Event,
        key: str,
        dest: BinaryIO,
        offset: int,
        length: int | None,
        notify: Callable[[int], None],
    ) -> int:
        path = self._path(key)
        written = 0
        try:
            with open(path, "rb") as src:
                src.seek(offset)
                while length is None or written < length:
                    want = BLOCK if length is None else min(BLOCK, length - written)
                    block = src.read(want)
                    if not block:
                        break
                    if cancel.is_set():
                        raise _Cancelled
                    dest.write(block)
                    written += len(block)
                    notify(len(block))
        except OSError as err:
            raise self._map(err, path, "read") from err
        return written

    def _stat_sync(self, cancel: threading.Event, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            return self._info(key, path, self._sidecar(key))
        except OSError as err:
            raise self._map(err, path, "read") from err

    @staticmethod
    def _info(key: str, path: Path, sidecar: Path) -> ObjectInfo:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise ObjectNotFound(f"{key!r} is a folder, not an object")
        sha256 = md5 = None
        record = _read_tag(path)
        if record is None:
            try:
                record = orjson.loads(sidecar.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                record = None
        if (
            isinstance(record, dict)
            and record.get("size") == st.st_size
            and isinstance(record.get("mtime_ns"), int)
            and abs(record["mtime_ns"] - st.st_mtime_ns) <= MTIME_SLACK_NS
        ):
            sha256, md5 = record.get("sha256"), record.get("md5")
        return ObjectInfo(key=key, size=st.st_size, md5=md5, sha256=sha256, modified=st.st_mtime)

    def _list_sync(self, cancel: threading.Event, prefix: str) -> builtins.list[ObjectInfo]:
        real_root = self._require_root()
        head = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root / head if head else self.root
        found: builtins.list[ObjectInfo] = []
        if not start.is_dir():
            return found

        def fail(err: OSError) -> None:
            raise err  # a stale mount must not look like an empty folder

        try:
            for dirpath, dirnames, filenames in os.walk(start, onerror=fail):
                rel_dir = Path(dirpath).relative_to(self.root).as_posix()
                if rel_dir == ".":
                    rel_dir = ""
                    dirnames[:] = [
                        d for d in dirnames if d != DIGESTS_DIR and not d.startswith(PART_PREFIX)
                    ]
                for fname in filenames:
                    if fname.startswith(PART_PREFIX):
                        continue
                    key = f"{rel_dir}/{fname}" if rel_dir else fname
                    if not key.startswith(prefix):
                        continue
                    path = Path(dirpath) / fname
                    if not path.resolve().is_relative_to(real_root) or not path.is_file():
                        continue  # a link leading out of the store is not one of its objects
                    try:
                        sidecar = self.root / DIGESTS_DIR / key
                        found.append(self._info(key, path, sidecar))
                    except (OSError, ObjectNotFound):
                        continue  # vanished between walk and stat
        except OSError as err:
            raise self._map(err, start, "read") from err
        found.sort(key=lambda info: info.key)
        return found

    def _delete_sync(self, cancel: threading.Event, key: str) -> None:
        path = self._path(key)
        sidecar = self._sidecar(key)
        try:
            path.unlink()  # a folder gives EISDIR: not an object, so "not found"
        except OSError as err:
            raise self._map(err, path, "delete") from err
        _unlink_quietly(sidecar)
        _prune_empty(path.parent, self.root)
        _prune_empty(sidecar.parent, self.root / DIGESTS_DIR)
        _fsync_dir(path.parent if path.parent.exists() else self.root)


@dataclass(slots=True)
class _Staged:
    """One object of a put, written and fsynced under its partial name, not yet in place."""

    key: str
    source: PutSource
    target: Path
    temp: Path
    record: dict[str, object] = field(default_factory=dict)
    tagged: bool = False
    placed: bool = False
    sidecar: Path | None = None

    def __post_init__(self) -> None:
        self.record.update(sha256=self.source.sha256, md5=self.source.md5)

    def info(self) -> ObjectInfo:
        size, mtime_ns = self.record["size"], self.record["mtime_ns"]
        assert isinstance(size, int) and isinstance(mtime_ns, int)
        return ObjectInfo(key=self.key, size=size, md5=self.source.md5,
                          sha256=self.source.sha256, modified=mtime_ns / 1e9)  # fmt: skip


class _KeyLocks:
    """Keys being put, across threads: a batch and a single put of one key wait in turn."""

    def __init__(self) -> None:
        self._busy: set[str] = set()
        self._changed = threading.Condition()

    @contextmanager
    def holding(self, keys: builtins.list[str]) -> Iterator[None]:
        with self._changed:
            while not self._busy.isdisjoint(keys):
                self._changed.wait()
            self._busy.update(keys)
        try:
            yield
        finally:
            with self._changed:
                self._busy.difference_update(keys)
                self._changed.notify_all()


def _sealed_whole(source: PutSource, seal: Callable[[int], None]) -> bool:
    """Whether the file at `source.path` has the size the caller claims; if so, sealed
    (`seal`: size, mtime and digests recorded on it) and fsynced."""
    fd = os.open(source.path, os.O_RDONLY)
    try:
        whole = os.fstat(fd).st_size == source.size
        if whole:
            seal(fd)
            os.fsync(fd)
    finally:
        os.close(fd)
    return whole


def _remove_all(folders: builtins.list[Path]) -> None:
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def _drop_unplaced(staged: builtins.list[_Staged]) -> None:
    for one in staged:
        if not one.placed:
            _unlink_quietly(one.temp)


def _read_tag(path: Path) -> object:
    """The digest record in the file's extended attribute, or None."""
    if sys.platform != "linux":
        return None
    try:
        return orjson.loads(os.getxattr(path, XATTR))
    except (OSError, orjson.JSONDecodeError):
        return None


def _sweep(base: Path, before: float) -> None:
    """Remove scratch folders last touched before `before` (a crash left them)."""
    for entry in os.scandir(base):
        try:
            if entry.stat(follow_symlinks=False).st_mtime < before:
                shutil.rmtree(entry.path, ignore_errors=True)
        except OSError:
            continue


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def _write_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(PART_PREFIX + path.name)
    try:
        with open(temp, "wb") as out:
            out.write(data)
            out.flush()
            if durable:
                os.fsync(out.fileno())
        temp.replace(path)
    except OSError:
        _unlink_quietly(temp)
        raise
    if durable:
        _fsync_dir(path.parent)


def _prune_empty(folder: Path, stop: Path) -> None:
    """Remove now-empty folders from `folder` up to (not including) `stop`."""
    while folder != stop and folder.is_relative_to(stop):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
