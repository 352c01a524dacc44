"""Session and phase tarballs: one streaming pass from source files to a `.tar.zst`.

tar runs in stream mode straight into the zstd writer, so memory stays flat
whatever the tree's size; each member's SHA-256 is taken as tar copies it, and
the tar stream itself is hashed before compression, so the manifest can list
member, tarball and stored digests without a second read.

The archive is deterministic (sorted names, owner 0, empty owner names, mode
0644, whole-second mtimes kept from the files): the same files give the same
bytes, so re-packing an unchanged session uploads nothing new.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import IO, BinaryIO, cast

from core.errors import BadInputError
from core.packing import MemberInfo, Packed
from core.packing.compress import CHUNK, HashingWriter, atomic_output, make_compressor

__all__ = ["member_name_problem", "normalize_member_name", "pack_tree"]

_HEADER_ALLOWANCE = 3 * tarfile.BLOCKSIZE
_COPY_BUFSIZE = CHUNK // 4


def normalize_member_name(name: str) -> str:
    """The canonical relative POSIX form of an archive name, or BadInputError if unsafe.

    Used both when packing and when extracting, so an archive we write is always
    one we agree to read back.
    """
    problem = member_name_problem(name)
    if problem:
        raise BadInputError(f"Archive name {name!r} is not allowed: {problem}")
    return "/".join(p for p in PurePosixPath(name).parts if p != ".")


def member_name_problem(name: str) -> str | None:
    if not name or "\x00" in name:
        return "it is empty or contains a NUL byte"
    if "\\" in name:
        return "it contains a backslash"
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).drive:
        return "it is an absolute path"
    parts = [p for p in PurePosixPath(name).parts if p != "."]
    if ".." in parts:
        return "it has a '..' component that climbs out of the target folder"
    if not parts:
        return "it names no file"
    return None


def pack_tree(
    files: list[tuple[str, Path]], dst: Path, *, level: int = 3, long_distance: bool = True
) -> Packed:
    """Write `files` (archive name, source path) as a deterministic `.tar.zst` at `dst`.

    `raw_*` in the result describe the uncompressed tar stream, so a later
    `decompress_file(..., expect_sha256=packed.raw_sha256)` checks it end to end.
    """
    entries = _sorted_entries(files)
    size_hint = tarfile.RECORDSIZE + sum(
        _HEADER_ALLOWANCE + _size_or_zero(src) for _, src in entries
    )
    cctx = make_compressor(level, long_distance=long_distance, size_hint=size_hint)
    members: list[MemberInfo] = []
    with atomic_output(dst) as out:
        with cctx.stream_writer(cast(IO[bytes], out), closefd=False) as zw:
            tar_stream = HashingWriter(zw, md5=False)
            with tarfile.open(
                fileobj=cast(IO[bytes], tar_stream),
                mode="w|",
                bufsize=CHUNK,
                format=tarfile.PAX_FORMAT,
            ) as tf:
                tf.copybufsize = _COPY_BUFSIZE  # type: ignore[attr-defined]
                for name, src in entries:
                    members.append(_add_member(tf, name, src))
        packed = Packed(
            raw_size=tar_stream.size,
            raw_sha256=tar_stream.sha256,
            size=out.size,
            sha256=out.sha256,
            md5=out.md5,
            members=members,
        )
    return packed


def _sorted_entries(files: list[tuple[str, Path]]) -> list[tuple[str, Path]]:
    seen: dict[str, Path] = {}
    for name, src in files:
        key = normalize_member_name(name)
        if key in seen:
            raise BadInputError(
                f"Archive name {key!r} is given twice ({seen[key]} and {src})",
                hint="every file in a tarball needs its own name",
            )
        seen[key] = src
    return sorted(seen.items())


def _size_or_zero(src: Path) -> int:
    try:
        return src.stat().st_size
    except OSError:
        return 0  # reported properly when the file is opened


def _require_regular(src: Path, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise BadInputError(f"{src} is not a regular file; only files can be packed")


class _HashingReader:
    """Hands tar the source bytes while hashing exactly what tar copied."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self._sha = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._fh.read(size)
        self._sha.update(data)
        self.size += len(data)
        return data

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


def _add_member(tf: tarfile.TarFile, name: str, src: Path) -> MemberInfo:
    _require_regular(src, src.stat())  # before open(): opening a FIFO would block
    with open(src, "rb") as fh:
        st = os.fstat(fh.fileno())
        _require_regular(src, st)
        info = tarfile.TarInfo(name)
        info.size = st.st_size
        info.mtime = int(st.st_mtime)
        info.mode = 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.type = tarfile.REGTYPE
        reader = _HashingReader(fh)
        try:
            tf.addfile(info, cast(IO[bytes], reader))
        except OSError as exc:
            if reader.size < info.size:
                raise BadInputError(
                    f"{src} shrank while it was being packed ({reader.size} of "
                    f"{info.size} bytes read)",
                    hint="retry once the file is no longer being rewritten",
                ) from exc
            raise
    return MemberInfo(name=name, size=info.size, sha256=reader.hexdigest())
