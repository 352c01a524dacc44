"""The on-disk layer: whole objects under the workspace, bounded in bytes, checked on read.

Each object is one file named by the SHA-256 of its cache key, its payload
followed by a trailer (JSON of key, size and digests, then its length and a
magic tag). The trailer goes last so a download can stream straight into the
file and the description is appended once the digests are known; one file per
object means one `os.replace` makes it appear whole or not at all.

No fsync: a file torn by a power cut fails its checksum on the next read and
is dropped and fetched again — the remote still has the object, so a cache
never needs durability, only the certainty that it never serves wrong bytes.
That is why every read hashes the payload before handing out any of it.

The index (LRU order, sizes) lives in memory and is rebuilt from the trailers
on first use, oldest modification time first; a hit touches the file's mtime
so the order survives a restart. All methods here block: callers run them in
a worker thread, except `lookup`/`drop`/`admit` bookkeeping which is cheap.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import struct
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import orjson

from core.cache.lru import Lru

log = logging.getLogger(__name__)

MAGIC = b"TKC1"
_TAIL = struct.Struct(">I4s")  # trailer length, magic
BLOCK = 1024 * 1024
WHOLE_READ = 16 * BLOCK
"""Entries up to this size are read once into memory, checked and served from there."""


@dataclass(frozen=True, slots=True)
class Digests:
    size: int
    sha256: str
    md5: str


@dataclass(frozen=True, slots=True)
class DiskEntry:
    path: Path
    digests: Digests
    file_size: int


class CorruptEntry(Exception):
    """The file no longer holds what its trailer promised."""


def digest_file(fh: BinaryIO, size: int | None = None) -> Digests:
    """SHA-256 and MD5 of the first `size` bytes (all of it when None), from the start."""
    fh.seek(0)
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    left = size
    done = 0
    while left is None or left > 0:
        block = fh.read(BLOCK if left is None else min(BLOCK, left))
        if not block:
            break
        sha.update(block)
        md5.update(block)
        done += len(block)
        if left is not None:
            left -= len(block)
    return Digests(done, sha.hexdigest(), md5.hexdigest())


def _sha256_of(fh: BinaryIO, size: int) -> str:
    fh.seek(0)
    sha = hashlib.sha256()
    left = size
    while left > 0:
        block = fh.read(min(BLOCK, left))
        if not block:
            break
        sha.update(block)
        left -= len(block)
    return sha.hexdigest()


def _read_trailer(fh: BinaryIO, file_size: int) -> tuple[str, Digests]:
    if file_size < _TAIL.size:
        raise CorruptEntry("too short")
    fh.seek(file_size - _TAIL.size)
    length, magic = _TAIL.unpack(fh.read(_TAIL.size))
    if magic != MAGIC or length > file_size - _TAIL.size:
        raise CorruptEntry("no trailer")
    fh.seek(file_size - _TAIL.size - length)
    try:
        meta = orjson.loads(fh.read(length))
        digests = Digests(int(meta["size"]), str(meta["sha256"]), str(meta["md5"]))
        key = str(meta["key"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CorruptEntry("unreadable trailer") from exc
    if digests.size != file_size - _TAIL.size - length:
        raise CorruptEntry("payload size does not match the trailer")
    return key, digests


class DiskCache:
    def __init__(
        self,
        root: Path,
        max_bytes: int,
        *,
        max_entries: int = 100_000,
        on_evict: Callable[[int], None] | None = None,
    ) -> None:
        """`on_evict` is told the bytes each eviction freed."""
        self.root = root
        self.max_bytes = max_bytes
        self._on_evict = on_evict
        self._index: Lru[str, DiskEntry] = Lru(
            max_entries=max_entries,
            max_weight=max_bytes,
            weigh=lambda e: e.file_size,
            on_evict=self._evicted,
        )
        self.whole_read = WHOLE_READ
        self._loaded = False
        self._lock = threading.Lock()  # the index is touched from worker threads

    @property
    def size(self) -> int:
        return self._index.weight

    @property
    def entries(self) -> int:
        return len(self._index)

    def path_of(self, key: str) -> Path:
        name = hashlib.sha256(key.encode()).hexdigest()
        return self.root / "objects" / name[:2] / name

    def load(self) -> None:
        """Rebuilds the index from the files (once); drops leftovers and unreadable files."""
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            tmp = self.root / "tmp"
            if tmp.is_dir():
                for leftover in tmp.iterdir():  # a download interrupted by a crash
                    with contextlib.suppress(OSError):
                        leftover.unlink()
            found: list[tuple[float, str, DiskEntry]] = []
            objects = self.root / "objects"
            for path in objects.glob("*/*") if objects.is_dir() else ():
                try:
                    st = path.stat()
                    with open(path, "rb") as fh:
                        key, digests = _read_trailer(fh, st.st_size)
                except (OSError, CorruptEntry):
                    with contextlib.suppress(OSError):
                        path.unlink()
                    continue
                if path != self.path_of(key):
                    continue
                found.append((st.st_mtime, key, DiskEntry(path, digests, st.st_size)))
            for _, key, entry in sorted(found, key=lambda f: f[0]):
                self._index.put(key, entry)

    def lookup(self, key: str) -> DiskEntry | None:
        with self._lock:
            return self._index.get(key)

    def fits(self, size: int) -> bool:
        """Objects over a quarter of the bound are not kept: one restore of a huge file
        would otherwise flush everything that is read often."""
        return size <= self.max_bytes // 4

    def new_temp(self) -> tuple[Path, BinaryIO]:
        tmp = self.root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        path = tmp / f"{uuid.uuid4().hex}.part"
        return path, open(path, "w+b")

    def admit(self, key: str, temp: Path, fh: BinaryIO, digests: Digests) -> bool:
        """Appends the trailer to a finished download and moves it into place."""
        trailer = orjson.dumps(
            {"key": key, "size": digests.size, "sha256": digests.sha256, "md5": digests.md5}
        )
        try:
            fh.seek(digests.size)
            fh.truncate()
            fh.write(trailer + _TAIL.pack(len(trailer), MAGIC))
            fh.flush()
            file_size = fh.tell()
            final = self.path_of(key)
            final.parent.mkdir(parents=True, exist_ok=True)
            temp.replace(final)
        except OSError as exc:  # a full disk must not fail the read that was being served
            log.warning("could not keep %s in the disk cache: %s", key, exc)
            return False
        with self._lock:
            self._index.pop(key)
            kept = self._index.put(key, DiskEntry(final, digests, file_size))
        if not kept:
            with contextlib.suppress(OSError):
                final.unlink()
        return kept

    def read(
        self, key: str, entry: DiskEntry, dest: BinaryIO, offset: int, length: int | None
    ) -> int:
        """Checks the whole payload, then copies the range to `dest`; returns bytes copied.

        Raises CorruptEntry (after dropping the file) when the payload is not what the
        trailer says, so nothing wrong ever reaches `dest`."""
        size = entry.digests.size
        end = size if length is None else min(size, offset + length)
        if size <= self.whole_read:  # one pass: read, check, then hand out the slice
            data = self.read_all(key, entry)
            if offset < end:
                dest.write(memoryview(data)[offset:end])
            return max(0, end - offset)
        try:
            with open(entry.path, "rb") as fh:
                if _sha256_of(fh, size) != entry.digests.sha256:
                    raise CorruptEntry(f"{key}: checksum mismatch")
                fh.seek(offset)
                done = 0
                while offset + done < end:
                    block = fh.read(min(BLOCK, end - offset - done))
                    if not block:
                        raise CorruptEntry(f"{key}: shorter than its trailer says")
                    dest.write(block)
                    done += len(block)
            with contextlib.suppress(OSError):
                os.utime(entry.path)  # LRU order that outlives a restart
            return done
        except (CorruptEntry, FileNotFoundError) as exc:
            log.warning("dropping a damaged disk cache entry: %s", exc)
            self.drop(key)
            raise CorruptEntry(str(exc)) from exc

    def read_all(self, key: str, entry: DiskEntry) -> bytes:
        """The payload, checked; for promotion into memory."""
        try:
            with open(entry.path, "rb") as fh:
                data = fh.read(entry.digests.size)
        except FileNotFoundError as exc:
            self.drop(key)
            raise CorruptEntry(f"{key}: gone") from exc
        if (
            len(data) != entry.digests.size
            or hashlib.sha256(data).hexdigest() != entry.digests.sha256
        ):
            log.warning("dropping a damaged disk cache entry: %s: checksum mismatch", key)
            self.drop(key)
            raise CorruptEntry(f"{key}: checksum mismatch")
        with contextlib.suppress(OSError):
            os.utime(entry.path)
        return data

    def drop(self, key: str) -> None:
        with self._lock:
            entry = self._index.pop(key)
        if entry is not None:
            with contextlib.suppress(OSError):
                entry.path.unlink()

    def _evicted(self, key: str, entry: DiskEntry) -> None:
        with contextlib.suppress(OSError):
            entry.path.unlink()
        if self._on_evict is not None:
            self._on_evict(entry.file_size)
