"""What an incremental backup does with each file, decided from stat alone.

Same size and mtime as in the previous snapshot: its pieces are reused, the
file is not even opened. Larger than before: it may only have grown (a log),
so the packer checks that its first old-size bytes still hash to the old
SHA-256 and packs only the tail. Anything else is packed whole. A previous
piece is reused only while its pack is still on the target.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from core.tree.manifest import Entry, Frame, Manifest, Piece
from core.tree.pack import FileJob
from core.tree.walk import Walk


@dataclass(slots=True)
class Plan:
    entries: list[Entry] = field(default_factory=list)
    frames: list[Frame] = field(default_factory=list)
    """Frames of earlier snapshots that this one refers to (new ones follow them)."""
    jobs: list[FileJob] = field(default_factory=list)
    reused: int = 0
    reused_bytes: int = 0

    @property
    def bytes_to_read(self) -> int:
        return sum(j.entry.size - j.grown_size for j in self.jobs)


def plan(found: Walk, folder: Path, previous: Manifest | None, packs: set[str]) -> Plan:
    out = Plan()
    old_files = {e.path: e for e in previous.files()} if previous else {}
    old_frames = previous.frames if previous else []
    remap: dict[int, int] = {}

    def carry(pieces: list[Piece]) -> list[Piece] | None:
        if any(old_frames[p.frame].pack not in packs for p in pieces):
            return None
        moved = []
        for p in pieces:
            if p.frame not in remap:
                remap[p.frame] = len(out.frames)
                out.frames.append(old_frames[p.frame])
            moved.append(Piece(remap[p.frame], p.offset, p.length))
        return moved

    root = os.fsencode(folder)
    sep = os.fsencode(os.sep)
    for f in found.entries:
        entry = Entry(f.path, f.kind, f.mode, f.mtime_ns, size=f.size, link=f.link)
        out.entries.append(entry)
        if f.kind != "file":
            continue
        old = old_files.get(f.path)
        source = root + sep + os.fsencode(f.path)
        if old is not None and old.size == f.size and old.mtime_ns == f.mtime_ns:
            pieces = carry(old.pieces)
            if pieces is not None:
                entry.sha256, entry.pieces = old.sha256, pieces
                out.reused += 1
                out.reused_bytes += f.size
                continue
        job = FileJob(entry, source)
        if old is not None and 0 < old.size < f.size:
            pieces = carry(old.pieces)
            if pieces is not None:
                job.grown_from, job.grown_size, job.grown_sha256 = pieces, old.size, old.sha256
        out.jobs.append(job)
    return out


def compact(entries: list[Entry], frames: list[Frame]) -> list[Frame]:
    """Drops frames no entry refers to (a file that did not only grow after all)."""
    used = sorted({p.frame for e in entries for p in e.pieces})
    if len(used) == len(frames):
        return frames
    index = {old: new for new, old in enumerate(used)}
    for e in entries:
        e.pieces = [Piece(index[p.frame], p.offset, p.length) for p in e.pieces]
    return [frames[i] for i in used]
