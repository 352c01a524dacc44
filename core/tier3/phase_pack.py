"""One phase as one `<phase>.tar.zst`, built from its sessions' verified Tier 2 backups.

Tier 3 holds a phase for years and charges per request, so a phase goes as a
single object. Its members are the sessions' original bytes — not their
`.zst` files: compressed members would hide every repeat from the tarball's
own compressor, and with long-distance matching (a window of 32 MiB) the
near-duplicate content of a phase's sessions costs almost nothing.

Everything streams: each Tier 2 artifact is downloaded to a temp file (the
next ones while this one is packed), decrypted if it was, and decompressed
straight into the tar stream, whose
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
import hashlib
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, Protocol, cast

import orjson
import zstandard

from core.lane import Lane
from core.packing import IntegrityError, MemberInfo
from core.packing.compress import CheckedReader
from core.packing.crypto import Key, decrypt_file
from core.packing.manifest import Manifest, ManifestFile
from core.packing.tar_writer import COPY_SIZE as _COPY
from core.packing.tar_writer import ShortMemberError, TarWriter, fixed_member
from core.tier2.backup import ENCRYPTED

COMPRESS_THREADS = 2
"""zstd's own workers compress while this thread reads, checks and frames the members."""
LONG_WINDOW_LOG = 25
"""2**25 = 32 MiB. The repeats worth finding are a session's near-duplicate snapshots and
files read again and again, which sit within a session or two of each other: a 128 MiB
window found 0.1 % more of them on 1 GB of sessions, for 100 MB more memory and more
time. A plain `zstd -d` reads it (its default limit is 128 MiB)."""
LDM_HASH_RATE_LOG = 8
LDM_BUCKET_SIZE_LOG = 2
"""Long-distance matching looks up one position in 256 (zstd's default here: one in
128) and keeps 4 candidates per hash (default 8). On 1 GB of sessions that is 0.35 s
less CPU — a tenth of the compressor's — for 0.5 % more bytes: the repeats it is for
(whole snapshots again) are long and found anyway."""
FORMAT = 1
"""Bumped whenever the bytes built from the same inputs change (see `build_tag`)."""
MIN_WINDOW_LOG = 20
MAX_DECODE_WINDOW = 1 << 31
JOB_SIZE = 4 << 20
"""zstd's unit of work for its threads: each job in flight holds buffers of this size.
Shorter jobs cost more hand-overs between the threads; longer ones more memory."""
AHEAD = 2
"""Artifacts downloaded ahead of the one being packed: a download then overlaps the
packing instead of stalling it."""


class Sink(Protocol):
    def write(self, data: bytes | memoryview, /) -> int: ...
    def flush(self) -> object: ...


@dataclass(frozen=True, slots=True)
class Built:
    """The phase tarball before compression: its size, and every member."""

    raw_size: int
    members: list[MemberInfo]


@dataclass(frozen=True, slots=True)
class SessionSource:
    """A session's verified Tier 2 backup: where its files are and what they must be."""

    session_id: str
    prefix: str
    manifest: Manifest


Fetch = Callable[[str, BinaryIO], None]
"""Writes the object at a key into the file (a blocking call, run in a worker thread)."""
Borrow = Callable[[str], "Path | None"]
"""The object at a key as a file on this machine to read in place, or None (blocking)."""


def _mismatch(what: str) -> IntegrityError:
    return IntegrityError(
        f"{what} does not match its Tier 2 manifest; the archive was not made",
        hint="run `tierkeeper verify --deep` on the Tier 2 target, back the session "
        "up again, then archive",
    )


class _TarStream:
    """The raw tar stream on its way into zstd, counted.

    Not hashed as a whole: each member's digest is checked on the lane, and the
    compressed object's digest is taken as it is spooled; a third SHA-256 over
    the raw gigabytes was a tenth of an archive's CPU and checked nothing.
    """

    def __init__(self, zw: IO[bytes]) -> None:
        self._zw = zw
        self.size = 0

    def write(self, data: bytes | memoryview, /) -> int:
        self._zw.write(data)
        self.size += len(data)
        return len(data)


@dataclass(slots=True)
class _Members:
    """Adds members to the phase tar; each one's digest is compared with its Tier 2
    manifest on the lane, behind its bytes."""

    tar: TarWriter
    lane: Lane
    added: list[MemberInfo]

    def add(self, name: str, size: int, sha256: str, stream: IO[bytes], what: str) -> None:
        sha = hashlib.sha256()
        try:
            self.tar.add(fixed_member(name, size), stream, sha)
        except ShortMemberError:
            raise _mismatch(what) from None
        if stream.read(1) != b"":
            raise _mismatch(what)

        def check() -> None:
            if sha.hexdigest() != sha256:
                raise _mismatch(what)

        self.lane.then(check)
        self.added.append(MemberInfo(name=name, size=size, sha256=sha256))


class _Downloads:
    """Fetches the build's artifacts in order, up to AHEAD of the one being packed.

    An artifact the source keeps as a plain file here (`borrow`: a folder target) is
    read where it lies. Any other download gets a fresh name and is unlinked after
    use: truncating one file over and over makes ext4 flush it each time (its
    `auto_da_alloc` heuristic), which cost more than the copy itself.
    """

    def __init__(
        self,
        tmp: Path,
        key: Key | None,
        fetch: Fetch,
        wanted: list[tuple[str, ManifestFile]],
        borrow: Borrow | None,
    ) -> None:
        self._tmp = tmp
        self._key = key
        self._fetch = fetch
        self._borrow = borrow
        self._wanted = wanted
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archive-fetch")
        self._pending: dict[int, Future[Path]] = {}
        self._next = 0

    def take(self, n: int) -> Future[Path]:
        """The n-th artifact (asked for in order), with the next ones set going."""
        while self._next < min(n + 1 + AHEAD, len(self._wanted)):
            i = self._next
            self._pending[i] = self._pool.submit(self._one, i)
            self._next += 1
        return self._pending.pop(n)

    @contextlib.contextmanager
    def local(self, n: int) -> Iterator[Path]:
        """The n-th artifact as a plain `.zst` (or `.tar.zst`) file, while it is needed."""
        path = self.take(n).result()
        try:
            yield path
        finally:
            self._drop(path)

    def close(self) -> None:
        """Waits for the downloads in flight (they write into the temp folder) and drops
        what nobody will read."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        for future in self._pending.values():
            if future.done() and not future.cancelled() and future.exception() is None:
                self._drop(future.result())

    def _lying(self, key: str) -> Path | None:
        """The source's own file, if it has one; any trouble there (a disk gone) is left
        to `fetch`, whose wrappers retry and name it."""
        if self._borrow is None:
            return None
        try:
            return self._borrow(key)
        except Exception:  # fetch reports it properly
            return None

    def _drop(self, path: Path) -> None:
        if path.parent == self._tmp:  # never a borrowed file
            path.unlink(missing_ok=True)

    def _one(self, n: int) -> Path:
        key, entry = self._wanted[n]
        sealed = self._tmp / f"artifact-{n}"
        plain = self._tmp / f"artifact-{n}.plain"
        try:
            lying = self._lying(key)
            if lying is None:
                with open(sealed, "wb") as fh:
                    self._fetch(key, fh)
            size = (lying or sealed).stat().st_size
            if size != entry.stored_size:
                raise IntegrityError(
                    f"{key} holds {size} bytes, its Tier 2 manifest says {entry.stored_size}; "
                    "the archive was not made",
                    hint="run `tierkeeper verify --deep` on the Tier 2 target, back the "
                    "session up again, then archive",
                )
            if not entry.stored_name.endswith(ENCRYPTED):
                return lying or sealed
            if self._key is None:
                raise IntegrityError(f"{key} is encrypted and no key was given")
            decrypt_file(lying or sealed, plain, self._key)
            sealed.unlink(missing_ok=True)
            return plain
        except BaseException:
            sealed.unlink(missing_ok=True)
            plain.unlink(missing_ok=True)
            raise


class _Decoder:
    """One zstd decoder for every artifact of a build.

    A fresh decoder per artifact allocates and frees a window-sized buffer each
    time, and glibc keeps freed buffers of varying sizes around: some 10 MiB of
    a process that also holds the compressor's window. One decoder
    keeps one buffer, grown to the largest window met.
    """

    def __init__(self) -> None:
        self._dctx = zstandard.ZstdDecompressor(max_window_size=MAX_DECODE_WINDOW)

    @contextlib.contextmanager
    def open(self, path: Path) -> Iterator[IO[bytes]]:
        """A stream cut short at a frame's end would read as a clean end: `_Downloads`
        has checked the artifact's size, and each member's size and digest are checked."""
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
    borrow: Borrow | None = None,
) -> Built:
    """Blocking: run it in a worker thread. Writes the compressed tarball into `out`.

    `key` opens encrypted Tier 2 artifacts; `progress` gets the raw bytes added;
    `borrow` finds artifacts that can be read in place instead of fetched."""
    cctx = _compressor(level, raw_total(sessions))
    ordered = sorted(sessions, key=lambda s: s.session_id)
    wanted = [(f"{s.prefix}/{e.stored_name}", e) for s in ordered for e in s.manifest.files]
    decoder = _Decoder()
    lane = Lane()
    with tempfile.TemporaryDirectory(prefix="tierkeeper-archive-") as tmp:
        downloads = _Downloads(Path(tmp), key, fetch, wanted, borrow)
        try:
            with cctx.stream_writer(cast(IO[bytes], out), closefd=False) as zw:
                stream = _TarStream(cast(IO[bytes], zw))
                members = _Members(TarWriter(stream, update=lane.update), lane, [])
                n = 0
                for source in ordered:
                    base = f"{phase}/sessions/session_{source.session_id}"
                    for entry in source.manifest.files:
                        with downloads.local(n) as local:
                            _add_entry(members, base, source.session_id, entry, local, decoder)
                        n += 1
                        if progress is not None:
                            progress(entry.size)
                members.tar.close()
                lane.close()  # every member checked before zstd ends the frame
        finally:
            lane.abandon()
            downloads.close()
    return Built(raw_size=stream.size, members=members.added)


def _compressor(level: int, size_hint: int) -> zstandard.ZstdCompressor:
    """Long-distance matching over a window sized to the phase (at most LONG_WINDOW_LOG),
    frame checksum, and zstd's jobs cut to JOB_SIZE."""
    window_log = min(LONG_WINDOW_LOG, max(MIN_WINDOW_LOG, max(size_hint - 1, 1).bit_length()))
    params = zstandard.ZstdCompressionParameters.from_level(
        level,
        enable_ldm=True,
        window_log=window_log,
        ldm_hash_rate_log=LDM_HASH_RATE_LOG,
        ldm_bucket_size_log=LDM_BUCKET_SIZE_LOG,
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
        "ldm": [LDM_HASH_RATE_LOG, LDM_BUCKET_SIZE_LOG],
        "sealed_with": sealed_with,
        "sessions": [
            [s.session_id, s.prefix, hashlib.sha256(s.manifest.to_bytes()).hexdigest()]
            for s in sorted(sessions, key=lambda s: s.session_id)
        ],
    }
    return hashlib.sha256(orjson.dumps(recipe)).hexdigest()


def _add_entry(
    members: _Members, base: str, sid: str, entry: ManifestFile, local: Path, decoder: _Decoder
) -> None:
    if entry.members:
        _add_snapshots(members, base, entry, local, decoder)
        return
    if entry.sha256 is None:
        raise IntegrityError(f"The Tier 2 manifest of {sid} lists {entry.name} without a digest")
    with decoder.open(local) as reader:
        members.add(f"{base}/{entry.name}", entry.size, entry.sha256, reader, f"{sid}/{entry.name}")


def _add_snapshots(
    members: _Members, base: str, entry: ManifestFile, local: Path, decoder: _Decoder
) -> None:
    expected = entry.member_digests()
    sizes = {m.name: m.size for m in entry.members}
    seen: set[str] = set()
    with decoder.open(local) as reader, tarfile.open(fileobj=reader, mode="r|") as inner:
        for info in inner:
            if not info.isfile() or info.name not in expected:
                raise IntegrityError(
                    f"{entry.stored_name} holds {info.name!r}, which its manifest does not list"
                )
            data = inner.extractfile(info)
            assert data is not None
            members.add(f"{base}/snapshots/{info.name}", sizes[info.name], expected[info.name],
                        data, f"{entry.stored_name}/{info.name}")  # fmt: skip
            seen.add(info.name)
    if seen != set(expected):
        raise IntegrityError(f"{entry.stored_name} lacks snapshots its manifest lists")
