"""The manifest stored beside every Tier 2 session folder and Tier 3 phase tarball.

It is the record a restore trusts: for each file, the digests of the original
bytes, of the stored (compressed) bytes, and of what the remote reported back
after upload. It must be readable by a later Tierkeeper years from now (Tier 3
is forever), so it is plain, versioned JSON; a version this code does not know
is refused with a message, never half-understood. Unknown fields are refused
too: a change to the format means a new `format_version`.

Serialization is canonical (sorted keys, files sorted by name, fixed
indentation) so the same manifest always has the same bytes and digest.
"""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from core import __version__
from core.errors import BadInputError
from core.packing import MemberInfo, Packed
from core.packing.compress import CHUNK
from core.packing.tarball import normalize_member_name

__all__ = ["FORMAT_VERSION", "Manifest", "ManifestFile", "ManifestMember", "verify_file"]

FORMAT_VERSION = 2
"""Version 2 added encryption (`encryption`, `key_id`); unencrypted manifests are still
written as version 1, so an older Tierkeeper can read every backup it could before."""
READABLE_VERSIONS = (1, 2)

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Md5 = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
Size = Annotated[int, Field(ge=0)]


def _checked_name(value: str) -> str:
    try:
        return normalize_member_name(value)
    except BadInputError as exc:  # pydantic reports ValueErrors with the field's location
        raise ValueError(exc.message) from exc


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ManifestMember(_Strict):
    """A file inside a stored tarball, so a restore can check each one it extracts."""

    name: str
    size: Size
    sha256: Sha256

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        return _checked_name(value)


class ManifestFile(_Strict):
    """One stored artifact: `name` is the original, `stored_name` what sits on the remote."""

    name: str
    size: Size
    sha256: Sha256 | None
    """None for a phase tarball: its members carry their own digests, `stored_sha256`
    checks the object, and a digest of the whole raw stream would cost a third pass
    over gigabytes."""
    stored_name: str
    stored_size: Size
    stored_sha256: Sha256
    stored_md5: Md5 | None = None
    """None for a phase tarball streamed to S3, which reports no MD5 for it to match."""
    remote_md5: Md5 | None = None
    remote_sha256: Sha256 | None = None
    members: tuple[ManifestMember, ...] = ()

    @field_validator("name", "stored_name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        return _checked_name(value)

    @classmethod
    def from_packed(cls, name: str, stored_name: str, packed: Packed) -> ManifestFile:
        """The entry for an artifact produced by `compress_file` or `pack_tree`."""
        return cls(
            name=name,
            size=packed.raw_size,
            sha256=packed.raw_sha256,
            stored_name=stored_name,
            stored_size=packed.size,
            stored_sha256=packed.sha256,
            stored_md5=packed.md5 or None,
            members=tuple(
                ManifestMember(name=m.name, size=m.size, sha256=m.sha256) for m in packed.members
            ),
        )

    def member_digests(self) -> dict[str, str]:
        """name → SHA-256 of the tarball's members, the `expected` of `safe_extract`."""
        return {m.name: m.sha256 for m in self.members}

    def member_infos(self) -> list[MemberInfo]:
        return [MemberInfo(name=m.name, size=m.size, sha256=m.sha256) for m in self.members]


class Manifest(_Strict):
    """A session's (or a whole phase's) stored files and how they were stored."""

    format_version: Literal[1, 2] = 1
    tool_version: str = __version__
    created_at: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))
    phase: str | None = None
    session_id: str | None = None
    compression: Literal["zstd"] = "zstd"
    level: int = 3
    long_distance: bool = False
    encryption: Literal["none", "aes-256-gcm"] = "none"
    key_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{16}$")
    """Which key encrypted the stored files (an id only; the key is never here)."""
    files: tuple[ManifestFile, ...] = ()

    @field_validator("files")
    @classmethod
    def _canonical_files(cls, value: tuple[ManifestFile, ...]) -> tuple[ManifestFile, ...]:
        ordered = tuple(sorted(value, key=lambda f: f.name))
        for a, b in itertools.pairwise(ordered):
            if a.name == b.name:
                raise ValueError(f"file {a.name!r} is listed twice")
        return ordered

    @model_validator(mode="after")
    def _owner_named(self) -> Manifest:
        if not self.phase and not self.session_id:
            raise ValueError("a manifest names its phase, its session, or both")
        if (self.encryption == "none") != (self.key_id is None):
            raise ValueError("an encrypted manifest names its key id, and only then")
        if self.encryption != "none" and self.format_version < 2:
            raise ValueError("encryption needs format_version 2")
        return self

    def file(self, name: str) -> ManifestFile | None:
        return next((f for f in self.files if f.name == name or f.stored_name == name), None)

    def to_bytes(self) -> bytes:
        """Canonical JSON: byte-identical for equal manifests."""
        return (
            orjson.dumps(
                self.model_dump(mode="json"),
                option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS,
            )
            + b"\n"
        )

    @classmethod
    def parse(cls, data: bytes) -> Manifest:
        """Read a manifest, refusing damaged JSON and formats this version cannot read."""
        try:
            raw = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise BadInputError(
                f"The manifest is not valid JSON ({exc})",
                hint="the file is damaged or is not a Tierkeeper manifest",
            ) from exc
        if not isinstance(raw, dict):
            raise BadInputError(
                f"The manifest is a JSON {type(raw).__name__}, not an object; it is not "
                "a Tierkeeper manifest"
            )
        version = raw.get("format_version")
        if isinstance(version, bool) or not isinstance(version, int):
            raise BadInputError(
                f"The manifest has no usable format_version (found {version!r}); "
                "it is not a Tierkeeper manifest or it is damaged"
            )
        if version not in READABLE_VERSIONS:
            newer = version > FORMAT_VERSION
            raise BadInputError(
                f"The manifest has format_version {version}; this Tierkeeper "
                f"({__version__}) reads versions up to {FORMAT_VERSION}",
                hint="update Tierkeeper to read it" if newer else "this version is not supported",
            )
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise BadInputError(f"The manifest is malformed: {_summarize(exc)}") from exc


def _summarize(exc: ValidationError, limit: int = 3) -> str:
    errors = exc.errors(include_url=False)
    parts = []
    for err in errors[:limit]:
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        value = err.get("input")
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            msg += f" (found {value!r})"
        parts.append(f"{where}: {msg}")
    more = len(errors) - limit
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def verify_file(entry: ManifestFile, path: Path, *, stored: bool = True) -> list[str]:
    """Problems with `path` against the manifest (empty list: it matches).

    `stored=True` checks a stored artifact (e.g. a downloaded `.zst`) against
    `stored_size`/`stored_sha256`; `stored=False` checks original bytes (after
    decompression) against `size`/`sha256`.
    """
    label = entry.stored_name if stored else entry.name
    want_size, want_sha = (
        (entry.stored_size, entry.stored_sha256) if stored else (entry.size, entry.sha256)
    )
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return [f"{label}: missing ({path} does not exist)"]
    if size != want_size:
        return [f"{label}: size is {size} bytes, the manifest says {want_size}"]
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            sha.update(chunk)
    if sha.hexdigest() != want_sha:
        return [f"{label}: SHA-256 is {sha.hexdigest()}, the manifest says {want_sha}"]
    return []
