"""One phase as one `<phase>.tar.zst`, built from its sessions' verified Tier 2 backups.

Tier 3 holds a phase for years and charges per request, so a phase goes as a
single object. Its members are the sessions' original bytes — not their
`.zst` files: compressed members would hide every repeat from the tarball's
own compressor, and with long-distance matching (a window of 128 MiB) the
near-duplicate content across a phase's sessions costs almost nothing.

Everything streams: each Tier 2 artifact is downloaded to a temp file,
decrypted if it was, and decompressed straight into the tar stream, whose
size per member is known from the manifest. Each member's SHA-256 is taken
on the way and must equal the manifest's, or the archive is abandoned before
anything is uploaded — Tier 3 never receives bytes that Tier 2 did not vouch
for. Snapshot tarballs are unpacked into the phase tarball member by member
(each checked), so a later restore can pick one file without a second layer.
"""

from __future__ import annotations

import contextlib
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, cast

from core.packing import IntegrityError, MemberInfo, Packed
from core.packing.compress import (
    HashingWriter,
    atomic_output,
    make_compressor,
    open_zstd_reader,
)
from core.packing.crypto import Key, decrypt_file
from core.packing.manifest import Manifest, ManifestFile
from core.packing.tar_writer import ShortMemberError, TarWriter, fixed_member
from core.tier2.backup import ENCRYPTED

COMPRESS_THREADS = 2
"""zstd's own workers compress while this thread reads, checks and frames the members."""
LONG_WINDOW_LOG = 27
"""2**27 = 128 MiB: what a decoder must be ready to hold; `zstd --long=27` reads it."""


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

    def download(self, key: str, entry: ManifestFile) -> Path:
        """The artifact as a plain `.zst` (or `.tar.zst`) file on local disk."""
        sealed = self.tmp / "artifact"
        with open(sealed, "wb") as fh:
            self.fetch(key, fh)
        if not entry.stored_name.endswith(ENCRYPTED):
            return sealed
        if self.key is None:
            raise IntegrityError(f"{key} is encrypted and no key was given")
        plain = self.tmp / "artifact.plain"
        decrypt_file(sealed, plain, self.key)
        return plain


@contextlib.contextmanager
def _zstd_reader(path: Path) -> Iterator[IO[bytes]]:
    with open_zstd_reader(path) as reader:
        yield cast(IO[bytes], reader)


def build_phase_tarball(
    phase: str,
    sessions: list[SessionSource],
    dst: Path,
    fetch: Fetch,
    *,
    key: Key | None = None,
    level: int = 3,
    progress: Callable[[int], None] | None = None,
) -> Packed:
    """Blocking: run it in a worker thread. `progress` gets the raw bytes added."""
    members: list[MemberInfo] = []
    raw_total = sum(f.size for s in sessions for f in s.manifest.files)
    cctx = make_compressor(level, long_distance=True, size_hint=raw_total, threads=COMPRESS_THREADS)
    with (
        tempfile.TemporaryDirectory(prefix="tierkeeper-archive-") as tmp,
        atomic_output(dst) as out,
    ):
        work = _Work(Path(tmp), key, fetch)
        with cctx.stream_writer(cast(IO[bytes], out), closefd=False) as zw:
            tar_stream = HashingWriter(zw, md5=False)
            tar = TarWriter(tar_stream)
            for source in sorted(sessions, key=lambda s: s.session_id):
                base = f"{phase}/sessions/session_{source.session_id}"
                for entry in source.manifest.files:
                    local = work.download(f"{source.prefix}/{entry.stored_name}", entry)
                    if entry.members:
                        members += _add_snapshots(tar, base, entry, local)
                    else:
                        with _zstd_reader(local) as reader:
                            members.append(_add_checked(
                                tar, f"{base}/{entry.name}", entry.size, entry.sha256,
                                reader, f"{source.session_id}/{entry.name}",
                            ))  # fmt: skip
                    if progress is not None:
                        progress(entry.size)
            tar.close()
        return Packed(
            raw_size=tar_stream.size,
            raw_sha256=tar_stream.sha256,
            size=out.size,
            sha256=out.sha256,
            md5=out.md5,
            members=members,
        )


def _add_snapshots(tar: TarWriter, base: str, entry: ManifestFile, local: Path) -> list[MemberInfo]:
    expected = entry.member_digests()
    sizes = {m.name: m.size for m in entry.members}
    added: list[MemberInfo] = []
    with _zstd_reader(local) as reader, tarfile.open(fileobj=reader, mode="r|") as inner:
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
