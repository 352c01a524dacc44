"""One phase as one `<phase>.tar.zst`, built from its sessions' verified Tier 2 backups.

Tier 3 holds a phase for years and charges per request, so a phase goes as a
single object. Its members are the sessions' original bytes — not their
`.zst` files: compressed members would hide every repeat from the tarball's
own compressor, and with long-distance matching (a window of 128 MiB) the
near-duplicate content across a phase's sessions costs almost nothing.

Everything streams: each Tier 2 artifact is downloaded to a temp file,
decrypted if it was, and decompressed straight into the tar stream, whose
size per member is known from the manifest; the compressed stream goes to
whatever the caller gives (the parts of an upload in flight, or a file). Each
member's SHA-256 is taken on the way and must equal the manifest's, or the
build raises and the caller abandons what it was writing (an unfinished
multipart upload is aborted, never completed) — Tier 3 never stores bytes that
Tier 2 did not vouch for. Snapshot tarballs are unpacked into the phase
tarball member by member (each checked), so a later restore can pick one file
without a second layer.

The output is a pure function of the inputs (`build_tag` names them): sorted
sessions, fixed tar headers, the same zstd parameters. A restarted archive
builds the same bytes again, so the parts an interrupted upload already sent
are recognised by their checksums and not sent twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, Protocol, cast

import orjson
import zstandard

from core.packing import IntegrityError, MemberInfo
from core.packing.compress import CheckedReader, HashingWriter, check_zstd_complete
from core.packing.crypto import Key, decrypt_file
from core.packing.manifest import Manifest, ManifestFile
from core.packing.tar_writer import COPY_SIZE as _COPY
from core.packing.tar_writer import ShortMemberError, TarWriter, fixed_member
from core.tier2.backup import ENCRYPTED

COMPRESS_THREADS = 2
"""zstd's own workers compress while this thread reads, checks and frames the members."""
LONG_WINDOW_LOG = 27
"""2**27 = 128 MiB: what a decoder must be ready to hold; `zstd --long=27` reads it."""
FORMAT = 1
MIN_WINDOW_LOG = 20
MAX_DECODE_WINDOW = 1 << 31
JOB_SIZE = 1 << 20
"""zstd's unit of work for its threads. Each job in flight holds buffers of this size
(zstd's default here is 2 MiB); 1 MiB keeps the archive under its memory budget
(250 MB with the 128 MiB window) for 0.1 % more bytes."""
"""Bumped whenever the bytes built from the same inputs change (see `build_tag`)."""


class Sink(Protocol):
    def write(self, data: bytes | memoryview, /) -> int: ...
    def flush(self) -> object: ...


@dataclass(frozen=True, slots=True)
class Built:
    """The phase tarball before compression: its size and digest, and every member."""

    raw_size: int
    raw_sha256: str
    members: list[MemberInfo]


@dataclass(frozen=True, slots=True)
class SessionSource:
    """A session's verified Tier 2 backup: where its files are and what they must be."""

    session_id: str
    prefix: str
    manifest: Manifest


Fetch = Callable[[str, BinaryIO], None]
"""Writes the object at a key into the file (a blocking call, run in a worker thread)."""


def _add_checked(
    tar: TarWriter, name: str, size: int, sha256: str, stream: IO[bytes], what: str
) -> MemberInfo:
    try:
        got = tar.add(fixed_member(name, size), stream)
        longer = stream.read(1) != b""
    except ShortMemberError:
        got, longer = "", False
    if longer or got != sha256:
        raise IntegrityError(
            f"{what} does not match its Tier 2 manifest; the archive was not made",
            hint="run `tierkeeper verify --deep` on the Tier 2 target, back the session "
            "up again, then archive",
        )
    return MemberInfo(name=name, size=size, sha256=sha256)


@dataclass(slots=True)
class _Work:
    tmp: Path
    key: Key | None
    fetch: Fetch
    _names: Iterator[int] = dataclasses.field(default_factory=itertools.count)
    decoder: _Decoder = dataclasses.field(default_factory=lambda: _Decoder())

    @contextlib.contextmanager
    def download(self, key: str, entry: ManifestFile) -> Iterator[Path]:
        """The artifact as a plain `.zst` (or `.tar.zst`) file on local disk, while needed.

        Each download gets a fresh name and is unlinked after use: truncating one
        file over and over makes ext4 flush it each time (its `auto_da_alloc`
        heuristic), which cost more than the copy itself.
        """
        n = next(self._names)
        sealed = self.tmp / f"artifact-{n}"
        plain = self.tmp / f"artifact-{n}.plain"
        try:
            with open(sealed, "wb") as fh:
                self.fetch(key, fh)
            if not entry.stored_name.endswith(ENCRYPTED):
                yield sealed
                return
            if self.key is None:
                raise IntegrityError(f"{key} is encrypted and no key was given")
            decrypt_file(sealed, plain, self.key)
            sealed.unlink()
            yield plain
        finally:
            sealed.unlink(missing_ok=True)
            plain.unlink(missing_ok=True)


class _Decoder:
    """One zstd decoder for every artifact of a build.

    A fresh decoder per artifact allocates and frees a window-sized buffer each
    time, and glibc keeps freed buffers of varying sizes around: some 10 MiB of
    a process that also holds the compressor's 128 MiB window. One decoder
    keeps one buffer, grown to the largest window met.
    """

    def __init__(self) -> None:
        self._dctx = zstandard.ZstdDecompressor(max_window_size=MAX_DECODE_WINDOW)

    @contextlib.contextmanager
    def open(self, path: Path) -> Iterator[IO[bytes]]:
        check_zstd_complete(path)  # a stream cut short would otherwise read as a clean end
        with (
            open(path, "rb") as raw,
            self._dctx.stream_reader(
                raw, read_size=_COPY, read_across_frames=True, closefd=False
            ) as reader,
        ):
            yield cast(IO[bytes], CheckedReader(reader, path.name))


def build_phase_tarball(
    phase: str,
    sessions: list[SessionSource],
    out: Sink,
    fetch: Fetch,
    *,
    key: Key | None = None,
    level: int = 3,
    progress: Callable[[int], None] | None = None,
) -> Built:
    """Blocking: run it in a worker thread. Writes the compressed tarball into `out`.

    `key` opens encrypted Tier 2 artifacts; `progress` gets the raw bytes added."""
    members: list[MemberInfo] = []
    cctx = _compressor(level, raw_total(sessions))
    with tempfile.TemporaryDirectory(prefix="tierkeeper-archive-") as tmp:
        work = _Work(Path(tmp), key, fetch)
        with cctx.stream_writer(cast(IO[bytes], out), closefd=False) as zw:
            tar_stream = HashingWriter(zw, md5=False)
            tar = TarWriter(tar_stream)
            for source in sorted(sessions, key=lambda s: s.session_id):
                base = f"{phase}/sessions/session_{source.session_id}"
                for entry in source.manifest.files:
                    stored = f"{source.prefix}/{entry.stored_name}"
                    with work.download(stored, entry) as local:
                        if entry.members:
                            members += _add_snapshots(tar, base, entry, local, work.decoder)
                        else:
                            with work.decoder.open(local) as reader:
                                members.append(_add_checked(
                                    tar, f"{base}/{entry.name}", entry.size, entry.sha256,
                                    reader, f"{source.session_id}/{entry.name}",
                                ))  # fmt: skip
                    if progress is not None:
                        progress(entry.size)
            tar.close()
    return Built(raw_size=tar_stream.size, raw_sha256=tar_stream.sha256, members=members)


def _compressor(level: int, size_hint: int) -> zstandard.ZstdCompressor:
    """Long-distance matching over a window sized to the phase (at most 128 MiB, as
    `make_compressor` sizes it), frame checksum, and zstd's jobs cut to JOB_SIZE."""
    window_log = min(LONG_WINDOW_LOG, max(MIN_WINDOW_LOG, max(size_hint - 1, 1).bit_length()))
    params = zstandard.ZstdCompressionParameters.from_level(
        level,
        enable_ldm=True,
        window_log=window_log,
        write_checksum=1,
        threads=COMPRESS_THREADS,
        job_size=JOB_SIZE,
    )
    return zstandard.ZstdCompressor(compression_params=params)


def raw_total(sessions: list[SessionSource]) -> int:
    return sum(f.size for s in sessions for f in s.manifest.files)


def size_bound(sessions: list[SessionSource]) -> int:
    """At least the size of the compressed (and maybe encrypted) tarball, from the manifests.

    Each member is its bytes plus headers (a PAX header for a long name included),
    zstd never grows data by more than 1/256, and encryption adds 16 bytes per MiB."""
    members = sum(max(len(f.members), 1) for s in sessions for f in s.manifest.files)
    raw = raw_total(sessions) + members * 4 * tarfile.BLOCKSIZE + tarfile.RECORDSIZE
    return raw + raw // 128 + (1 << 20)


def build_tag(
    phase: str, sessions: list[SessionSource], *, sealed_with: str | None, level: int = 3
) -> str:
    """A digest of everything the tarball's bytes depend on: same tag, same bytes.

    `sealed_with` is the archive key's id when the tarball is encrypted (its
    bytes then differ on every build: a fresh salt; only the plaintext repeats)."""
    recipe = {
        "format": FORMAT,
        "phase": phase,
        "zstd": zstandard.ZSTD_VERSION,
        "level": level,
        "window_log": LONG_WINDOW_LOG,
        "threads": COMPRESS_THREADS,
        "job_size": JOB_SIZE,
        "sealed_with": sealed_with,
        "sessions": [
            [s.session_id, s.prefix, hashlib.sha256(s.manifest.to_bytes()).hexdigest()]
            for s in sorted(sessions, key=lambda s: s.session_id)
        ],
    }
    return hashlib.sha256(orjson.dumps(recipe)).hexdigest()


def _add_snapshots(
    tar: TarWriter, base: str, entry: ManifestFile, local: Path, decoder: _Decoder
) -> list[MemberInfo]:
    expected = entry.member_digests()
    sizes = {m.name: m.size for m in entry.members}
    added: list[MemberInfo] = []
    with decoder.open(local) as reader, tarfile.open(fileobj=reader, mode="r|") as inner:
        for info in inner:
            if not info.isfile() or info.name not in expected:
                raise IntegrityError(
                    f"{entry.stored_name} holds {info.name!r}, which its manifest does not list"
                )
            data = inner.extractfile(info)
            assert data is not None
            added.append(
                _add_checked(
                    tar,
                    f"{base}/snapshots/{info.name}",
                    sizes[info.name],
                    expected[info.name],
                    data,
                    f"{entry.stored_name}/{info.name}",
                )
            )
    if {m.name for m in added} != {f"{base}/snapshots/{n}" for n in expected}:
        raise IntegrityError(f"{entry.stored_name} lacks snapshots its manifest lists")
    return added
