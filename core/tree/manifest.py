"""A snapshot's manifest: every path with its mode, mtime, SHA-256 and where its bytes are.

Stored as compact JSON in one zstd frame. A file's content is the concatenation
of its pieces, each a range of one frame's decompressed bytes; a frame is a
range of one pack. Loading refuses any path that could land outside the restore
folder, so a tampered manifest cannot write over anything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson
import zstandard

from core.errors import TierkeeperError

FORMAT = 1
MAX_MANIFEST = 1 << 30
LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class BadManifestError(TierkeeperError):
    """A manifest that is damaged, of an unknown format, or unsafe to restore."""


@dataclass(frozen=True, slots=True)
class Frame:
    pack: str
    """The pack's key below the label's root (`packs/….tkp`)."""
    offset: int
    length: int
    raw: int


@dataclass(frozen=True, slots=True)
class Piece:
    frame: int
    offset: int
    length: int


@dataclass(slots=True)
class Entry:
    path: str
    kind: str
    mode: int
    mtime_ns: int
    size: int = 0
    sha256: str = ""
    pieces: list[Piece] = field(default_factory=list)
    link: str = ""


@dataclass(slots=True)
class Manifest:
    id: str
    label: str
    created: str
    source: str
    root_mode: int
    root_mtime_ns: int
    parent: str | None = None
    frames: list[Frame] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)

    def files(self) -> list[Entry]:
        return [e for e in self.entries if e.kind == "file"]

    # -- bytes ---------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        packs: dict[str, int] = {}
        frames = []
        for f in self.frames:
            frames.append([packs.setdefault(f.pack, len(packs)), f.offset, f.length, f.raw])
        entries: list[dict[str, Any]] = []
        for e in self.entries:
            row: dict[str, Any] = {"p": e.path, "k": e.kind[0], "m": e.mode, "t": e.mtime_ns}
            if e.kind == "file":
                row["s"] = e.size
                row["h"] = e.sha256
                row["x"] = [[p.frame, p.offset, p.length] for p in e.pieces]
            elif e.kind == "link":
                row["l"] = e.link
            entries.append(row)
        doc = {
            "format": FORMAT,
            "id": self.id,
            "label": self.label,
            "created": self.created,
            "source": self.source,
            "root": [self.root_mode, self.root_mtime_ns],
            "parent": self.parent,
            "packs": list(packs),
            "frames": frames,
            "entries": entries,
            "skipped": self.skipped,
            "stats": self.stats,
        }
        return zstandard.ZstdCompressor(level=9, write_checksum=True).compress(orjson.dumps(doc))

    @classmethod
    def from_bytes(cls, data: bytes, *, where: str) -> Manifest:
        try:
            raw = zstandard.ZstdDecompressor().decompress(data, max_output_size=MAX_MANIFEST)
            doc = orjson.loads(raw)
        except (zstandard.ZstdError, orjson.JSONDecodeError) as err:
            raise BadManifestError(f"the snapshot manifest {where} is damaged: {err}") from err
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise BadManifestError(
                f"the snapshot manifest {where} has an unknown format",
                hint="a newer Tierkeeper wrote it: update Tierkeeper to restore it",
            )
        try:
            return _parse(doc)
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise BadManifestError(f"the snapshot manifest {where} is malformed: {err}") from err


def _parse(doc: dict[str, Any]) -> Manifest:
    packs = [str(p) for p in doc["packs"]]
    for key in packs:
        if not key.startswith("packs/") or not safe_path(key):
            raise ValueError(f"pack key {key!r}")
    frames = [Frame(packs[p], int(o), int(n), int(r)) for p, o, n, r in doc["frames"]]
    entries: list[Entry] = []
    seen: set[str] = set()
    kinds = {"f": "file", "d": "dir", "l": "link"}
    for row in doc["entries"]:
        path = str(row["p"])
        if not safe_path(path):
            raise BadManifestError(
                f"the snapshot refers to the unsafe path {path!r}; nothing was restored",
                hint="the manifest was tampered with or damaged",
            )
        if path in seen:
            raise ValueError(f"{path!r} appears twice")
        seen.add(path)
        kind = kinds[row["k"]]
        entry = Entry(path, kind, int(row["m"]) & 0o7777, int(row["t"]))
        if kind == "file":
            entry.size = int(row["s"])
            entry.sha256 = str(row["h"])
            entry.pieces = [Piece(int(f), int(o), int(n)) for f, o, n in row["x"]]
            if sum(p.length for p in entry.pieces) != entry.size:
                raise ValueError(f"{path!r}: pieces do not add up to its size")
            for p in entry.pieces:
                if not 0 <= p.frame < len(frames) or p.offset + p.length > frames[p.frame].raw:
                    raise ValueError(f"{path!r}: a piece lies outside its frame")
        elif kind == "link":
            entry.link = str(row["l"])
        entries.append(entry)
    root_mode, root_mtime = doc["root"]
    return Manifest(
        id=str(doc["id"]),
        label=str(doc["label"]),
        created=str(doc["created"]),
        source=str(doc["source"]),
        root_mode=int(root_mode) & 0o7777,
        root_mtime_ns=int(root_mtime),
        parent=doc.get("parent"),
        frames=frames,
        entries=entries,
        skipped=[str(s) for s in doc.get("skipped", [])],
        stats={str(k): int(v) for k, v in doc.get("stats", {}).items()},
    )


def safe_path(path: str) -> bool:
    """Relative, no `..`/`.`/empty parts, no NUL: it stays inside whatever it is joined to."""
    if not path or path.startswith("/") or "\x00" in path:
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))
