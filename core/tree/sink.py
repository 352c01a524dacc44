"""Restored files are assembled in hidden temp files and put in place only once verified.

Pieces of one file may come from several frames, decompressed on different
threads, in any order: each is written at its own offset. A file whose bytes
arrive as one piece is hashed as it is written; one made of several pieces is
read back once it is complete. Only a file whose SHA-256 matches the manifest
gets its mode and mtime and is renamed to its real name: a damaged pack never
leaves a wrong file behind under a real name.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path

READ_BACK = 1 << 20


@dataclass(slots=True)
class FileSink:
    final: Path
    size: int
    sha256: str
    mode: int
    mtime_ns: int
    pieces: int
    damage: str | None = None
    done: bool = False
    _written: int = 0
    _fd: int | None = None
    _tmp: Path | None = None
    _hasher: hashlib._Hash | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def write(self, data: memoryview, at: int) -> None:
        """Thread-safe; the last write verifies and finishes the file."""
        with self._lock:
            if self.damage is not None or self.done:
                return
            try:
                if self._fd is None:
                    self._open()
                assert self._fd is not None
                view = data
                pos = at
                while view:
                    n = os.pwrite(self._fd, view, pos)
                    view, pos = view[n:], pos + n
                if self.pieces == 1:
                    if self._hasher is None:
                        self._hasher = hashlib.sha256()
                    self._hasher.update(data)
                self._written += len(data)
                if self._written >= self.size:
                    self._finish()
            except OSError as err:
                self._fail(f"cannot be written ({err.strerror or err})")

    def fail(self, reason: str) -> None:
        with self._lock:
            self._fail(reason)

    def _open(self) -> None:
        name = f".{self.final.name[:200]}.tk-{secrets.token_hex(4)}"
        self._tmp = self.final.with_name(name)
        self._fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)

    def _finish(self) -> None:
        assert self._fd is not None and self._tmp is not None
        digest = self._hasher.hexdigest() if self._hasher else _hash_file(self._tmp)
        if digest != self.sha256:
            self._fail("its bytes do not match the SHA-256 recorded at backup")
            return
        os.fchmod(self._fd, self.mode)
        os.utime(self._fd, ns=(self.mtime_ns, self.mtime_ns))
        os.close(self._fd)
        self._fd = None
        self._tmp.replace(self.final)
        self.done = True

    def _fail(self, reason: str) -> None:
        if self.damage is None:
            self.damage = reason
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        buf = bytearray(READ_BACK)
        while n := fh.readinto(buf):
            h.update(memoryview(buf)[:n])
    return h.hexdigest()


def write_small(final: Path, data: bytes, mode: int, mtime_ns: int) -> None:
    """An empty (or tiny, already verified) file, put in place atomically."""
    tmp = final.with_name(f".{final.name[:200]}.tk-{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        if data:
            os.write(fd, data)
        os.fchmod(fd, mode)
        os.utime(fd, ns=(mtime_ns, mtime_ns))
    finally:
        os.close(fd)
    tmp.replace(final)
