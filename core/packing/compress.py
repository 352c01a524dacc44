"""Single-file zstd compression with every digest taken in the same pass.

Data leaving Tier 1 is read once: the bytes are hashed on the way into the
compressor and the compressed bytes are hashed on the way to disk, so a backup
costs one read of the source and never holds more than a few buffers in memory.
Outputs appear only complete (temp file + fsync + rename), so a crash or a full
disk never leaves half an artifact under its real name.

zstd's streaming readers report a stream cut short as a clean end of data, so
every stream is first walked frame by frame (block headers only, no
decompression) and refused unless each frame is whole; the frame checksum then
catches damaged bytes when decompression reaches the frame's end.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Protocol, cast

import zstandard

from core.durable import fsync_dir
from core.errors import BadInputError, StorageFullError
from core.packing import IntegrityError, Packed, Unpacked

__all__ = [
    "CHUNK",
    "CheckedReader",
    "HashingWriter",
    "atomic_output",
    "check_zstd_complete",
    "compress_file",
    "decompress_file",
    "make_compressor",
    "open_zstd_reader",
]

CHUNK = 1 << 20
"""Read/write buffer size: large enough for throughput, small enough to keep memory flat."""

MAX_WINDOW_LOG = 27
"""Long-distance matching looks back up to 128 MiB: a session's snapshots fit in one window."""

_MIN_WINDOW_LOG = 20
_MAX_DECODE_WINDOW = 1 << 31
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_ZSTD_MAGIC = 0xFD2FB528
_SKIPPABLE_MASK, _SKIPPABLE_MAGIC = 0xFFFFFFF0, 0x184D2A50


class _Sink(Protocol):
    def write(self, data: bytes | memoryview, /) -> int: ...
    def flush(self) -> object: ...


class HashingWriter:
    """A write-through file object that counts and hashes every byte passing to `sink`."""

    def __init__(self, sink: _Sink, *, md5: bool = True) -> None:
        self._sink = sink
        self._sha256 = hashlib.sha256()
        self._md5 = hashlib.md5(usedforsecurity=False) if md5 else None
        self.size = 0

    def write(self, data: bytes | memoryview, /) -> int:
        self._sha256.update(data)
        if self._md5 is not None:
            self._md5.update(data)
        self.size += len(data)
        self._sink.write(data)
        return len(data)

    def flush(self) -> None:
        self._sink.flush()

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    @property
    def md5(self) -> str:
        return self._md5.hexdigest() if self._md5 is not None else ""


@contextlib.contextmanager
def atomic_output(dst: Path, *, md5: bool = True) -> Iterator[HashingWriter]:
    """Yield a hashing writer on a temp file that becomes `dst` only if the block succeeds.

    The temp file sits beside `dst` (same filesystem, so the rename is atomic) and
    is created 0600: session data can hold secrets. Any exception removes it and
    leaves an existing `dst` untouched; a full disk surfaces as StorageFullError.
    """
    fd, tmp_name = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            writer = HashingWriter(fh, md5=md5)
            yield writer
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(dst)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
            raise StorageFullError(
                f"No space left while writing {dst}", hint="free some disk space and retry"
            ) from exc
        raise
    fsync_dir(dst.parent)


def make_compressor(
    level: int, *, long_distance: bool, size_hint: int | None = None, threads: int = 0
) -> zstandard.ZstdCompressor:
    """A compressor writing frame checksums; with LDM, a window sized to the data.

    The window is capped at 128 MiB and shrunk to the expected input size, so a
    small session does not make the compressor (or, later, the decompressor)
    reserve 128 MiB for nothing.
    """
    if not -7 <= level <= zstandard.MAX_COMPRESSION_LEVEL:
        raise BadInputError(
            f"zstd level {level} is out of range",
            hint=f"use a level from 1 to {zstandard.MAX_COMPRESSION_LEVEL} (3 is the default)",
        )
    if not long_distance:
        return zstandard.ZstdCompressor(level=level, write_checksum=True, threads=threads)
    window_log = MAX_WINDOW_LOG
    if size_hint is not None:
        window_log = min(MAX_WINDOW_LOG, max(_MIN_WINDOW_LOG, max(size_hint - 1, 1).bit_length()))
    params = zstandard.ZstdCompressionParameters.from_level(
        level, enable_ldm=True, window_log=window_log, write_checksum=1, threads=threads
    )
    return zstandard.ZstdCompressor(compression_params=params)


def compress_file(src: Path, dst: Path, *, level: int = 3, long_distance: bool = False) -> Packed:
    """Compress `src` into `dst` (atomically), hashing input and output in the same pass."""
    raw_sha = hashlib.sha256()
    raw_size = 0
    with open(src, "rb") as fh:
        cctx = make_compressor(
            level, long_distance=long_distance, size_hint=os.fstat(fh.fileno()).st_size
        )
        with atomic_output(dst) as out:
            buf = bytearray(CHUNK)
            view = memoryview(buf)
            with cctx.stream_writer(cast(IO[bytes], out), closefd=False) as zw:
                while n := fh.readinto(buf):
                    raw_sha.update(view[:n])
                    zw.write(view[:n])
                    raw_size += n
            packed = Packed(
                raw_size=raw_size,
                raw_sha256=raw_sha.hexdigest(),
                size=out.size,
                sha256=out.sha256,
                md5=out.md5,
            )
    return packed


def decompress_file(src: Path, dst: Path, *, expect_sha256: str | None = None) -> Unpacked:
    """Decompress `src` into `dst`; `dst` appears only if the stream and digest check out."""
    with open_zstd_reader(src) as reader, atomic_output(dst, md5=False) as out:
        while chunk := reader.read(CHUNK):
            out.write(chunk)
        if expect_sha256 is not None and out.sha256 != expect_sha256.lower():
            raise IntegrityError(
                f"{src.name} decompresses to data with SHA-256 {out.sha256}, "
                f"but {expect_sha256.lower()} was recorded; {dst.name} was not written",
                hint="the stored copy is damaged: restore from another copy",
            )
        result = Unpacked(size=out.size, sha256=out.sha256)
    return result


class CheckedReader:
    """A zstd stream reader whose decoding errors name the file and are IntegrityErrors."""

    def __init__(self, inner: zstandard.ZstdDecompressionReader, name: str) -> None:
        self._inner = inner
        self._name = name

    def read(self, size: int = -1, /) -> bytes:
        try:
            data: bytes = self._inner.read(size)
        except zstandard.ZstdError as exc:
            raise IntegrityError(
                f"{self._name} is damaged: {exc}", hint="restore it from another copy"
            ) from exc
        return data


@contextlib.contextmanager
def open_zstd_reader(path: Path) -> Iterator[CheckedReader]:
    """Open a whole, structurally complete zstd file for streaming decompression."""
    check_zstd_complete(path)
    dctx = zstandard.ZstdDecompressor(max_window_size=_MAX_DECODE_WINDOW)
    with (
        open(path, "rb") as raw,
        dctx.stream_reader(raw, read_size=CHUNK, read_across_frames=True, closefd=False) as zr,
    ):
        yield CheckedReader(zr, path.name)


def file_sha256(path: Path) -> str:
    """SHA-256 of the file's bytes as they are."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def content_sha256(path: Path) -> str:
    """SHA-256 of what a zstd file decompresses to, streamed (IntegrityError if damaged)."""
    digest = hashlib.sha256()
    with open_zstd_reader(path) as reader:
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_zstd_complete(path: Path) -> None:
    """Refuse a file that is not a sequence of whole zstd frames (cut short, or not zstd).

    Walks frame and block headers with positioned reads; costs one tiny read per
    128 KiB block, nothing like a decompression.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        total = os.fstat(fd).st_size
        if total == 0:
            raise IntegrityError(f"{path.name} is empty, not a zstd stream")
        pos = 0
        while pos < total:
            pos = _skip_frame(fd, pos, total, path.name)
    finally:
        os.close(fd)


def _skip_frame(fd: int, pos: int, total: int, name: str) -> int:
    head = os.pread(fd, 18, pos)
    if len(head) < 5:
        raise _cut(name, pos)
    magic = int.from_bytes(head[:4], "little")
    if magic & _SKIPPABLE_MASK == _SKIPPABLE_MAGIC:
        end = pos + 8 + int.from_bytes(head[4:8], "little")
        if len(head) < 8 or end > total:
            raise _cut(name, pos)
        return end
    if magic != _ZSTD_MAGIC:
        raise IntegrityError(
            f"{name} is not a zstd stream (no frame at byte {pos})",
            hint="the file is damaged or is not a Tierkeeper artifact",
        )
    try:
        pos += zstandard.frame_header_size(head)
    except zstandard.ZstdError as exc:
        raise IntegrityError(f"{name} has a damaged zstd frame header at byte {pos}") from exc
    has_checksum = bool(head[4] & 0x04)
    while True:
        block = os.pread(fd, 3, pos)
        if len(block) < 3:
            raise _cut(name, pos)
        header = int.from_bytes(block, "little")
        kind, block_size = (header >> 1) & 3, header >> 3
        if kind == 3:
            raise IntegrityError(f"{name} has a damaged zstd block at byte {pos}")
        pos += 3 + (1 if kind == 1 else block_size)
        if pos > total:
            raise _cut(name, pos)
        if header & 1:
            break
    if has_checksum:
        pos += 4
        if pos > total:
            raise _cut(name, pos)
    return pos


def _cut(name: str, pos: int) -> IntegrityError:
    return IntegrityError(
        f"{name} is truncated: its zstd stream ends inside a frame (near byte {pos})",
        hint="the copy was cut short (interrupted transfer?): download or restore it again",
    )
