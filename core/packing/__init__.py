"""Packing for Tier 2/3: streaming tar + zstd, digests taken in the same pass, manifests.

The shared result types and the integrity error live here so every module of the
package (and the jobs that use them) agree on one vocabulary. Functions live in
their own modules: `compress`, `tarball`, `manifest`, `extract`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.errors import BadInputError

__all__ = ["IntegrityError", "MemberInfo", "Packed", "Unpacked"]


class IntegrityError(BadInputError):
    """Stored bytes do not match what was recorded, or a stream is damaged or cut short.

    A BadInputError because the input (a downloaded file, an archive) is at fault,
    not the program; whatever was being written from it has been discarded.
    """


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """One file inside a tarball: its archive name and the digest of its content."""

    name: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Packed:
    """What a packing step produced: digests of the input and of the stored bytes.

    `md5` is kept because Google Drive reports `md5Checksum` for uploads, so an
    upload can be checked without downloading it again; empty where nothing would
    check it (a multipart upload to S3, whose ETag is no MD5 of the object).
    """

    raw_size: int
    raw_sha256: str | None
    size: int
    sha256: str
    md5: str
    members: list[MemberInfo] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """Stored size over raw size (smaller is better); 1.0 for empty input."""
        return self.size / self.raw_size if self.raw_size else 1.0


@dataclass(frozen=True, slots=True)
class Unpacked:
    """What decompression wrote: size and SHA-256 of the restored bytes."""

    size: int
    sha256: str
