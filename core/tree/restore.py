"""A snapshot back into a folder, every file checked against its SHA-256 before it is in place.

The frames the files need are fetched pack by pack, neighbouring frames in one
ranged read (a whole pack when all of it is needed), several at once; each
frame is decompressed on a worker as soon as its bytes are here, and its
pieces written straight into the files they belong to. Folders get their
modes and mtimes last, deepest first, since writing into a folder changes its
mtime. Symlinks are made after every file, so no file is ever written through
one; each folder written into is checked to resolve inside the destination.

A damaged or missing pack does not stop the rest: every other file is
restored, and the error names the pack and each file it took with it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import zstandard

from core.errors import BadInputError, PartialFailure
from core.remote.base import RemoteError, Store
from core.tree import catalog
from core.tree.manifest import Frame, Manifest
from core.tree.sink import FileSink, write_small

ProgressFn = Callable[[int, int], None]
"""Called from worker threads with (bytes restored so far, bytes to restore)."""

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
MAX_RANGE = 8 << 20
SHOWN = 10


@dataclass(frozen=True, slots=True)
class Segment:
    offset: int
    length: int
    sink: FileSink
    at: int


@dataclass(slots=True)
class Fetch:
    """One read of a pack: neighbouring frames, `start` to `end` of the pack."""

    pack: str
    start: int
    end: int
    frames: list[int] = field(default_factory=list)


@dataclass(slots=True)
class RestoreReport:
    snapshot: str
    files: int = 0
    dirs: int = 0
    links: int = 0
    bytes: int = 0
    damaged: dict[str, str] = field(default_factory=dict)


async def restore_tree(
    store: Store,
    manifest: Manifest,
    dest: Path,
    *,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
    downloads: int = 4,
    tmpdir: Path | None = None,
) -> RestoreReport:
    plan = await asyncio.to_thread(_prepare, manifest, dest, overwrite)
    root, report, sinks, by_frame = plan.root, plan.report, plan.sinks, plan.by_frame
    total = sum(s.size for s in sinks)
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    scratch = Path(tempfile.mkdtemp(prefix="tk-tree-restore-", dir=tmpdir))
    try:
        fetches = _plan_fetches(manifest.frames, sorted(by_frame))
        cpu = asyncio.Semaphore(max(1, min(4, os.cpu_count() or 1)))
        net = asyncio.Semaphore(downloads)
        base = catalog.base(manifest.label)

        async def run(fetch: Fetch) -> None:
            fd, name = tempfile.mkstemp(dir=scratch)
            path = Path(name)
            try:
                async with net:
                    with os.fdopen(fd, "w+b") as fh:
                        try:
                            await store.get(
                                base + fetch.pack, fh, offset=fetch.start,
                                length=fetch.end - fetch.start,
                            )  # fmt: skip
                        except RemoteError as err:
                            _lose(fetch, by_frame, f"{fetch.pack} could not be read: {err}")
                            return
                async with cpu:
                    await asyncio.to_thread(
                        _unpack, path, fetch, manifest.frames, by_frame, advance
                    )
            finally:
                await asyncio.to_thread(path.unlink, missing_ok=True)

        await asyncio.gather(*(run(f) for f in fetches))
    finally:
        await asyncio.to_thread(shutil.rmtree, scratch, ignore_errors=True)

    await asyncio.to_thread(_finish, manifest, root, sinks, report, overwrite)
    if report.damaged:
        raise PartialFailure(_damage_message(report), hint=_damage_hint())
    return report


@dataclass(slots=True)
class _Prepared:
    root: Path
    report: RestoreReport
    sinks: list[FileSink]
    by_frame: dict[int, list[Segment]]


def _prepare(manifest: Manifest, dest: Path, overwrite: bool) -> _Prepared:
    """Folders and empty files made; a sink for every other file, its pieces by frame."""
    _check_dest(dest, overwrite)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    report = RestoreReport(manifest.id)
    dirs = [e for e in manifest.entries if e.kind == "dir"]
    for d in dirs:
        _inside(root, root / d.path).mkdir(parents=True, exist_ok=True)
    report.dirs = len(dirs)
    by_frame: dict[int, list[Segment]] = defaultdict(list)
    sinks: list[FileSink] = []
    parents_ok: set[Path] = set()
    for e in manifest.files():
        final = root / e.path
        if final.parent not in parents_ok:
            _inside(root, final.parent).mkdir(parents=True, exist_ok=True)
            parents_ok.add(final.parent)
        if overwrite and final.is_symlink():
            final.unlink()
        if e.size == 0:
            if e.sha256 != EMPTY_SHA256:
                report.damaged[e.path] = "the manifest's SHA-256 is not that of an empty file"
                continue
            write_small(final, b"", e.mode, e.mtime_ns)
            report.files += 1
            continue
        sink = FileSink(final, e.size, e.sha256, e.mode, e.mtime_ns, len(e.pieces))
        sinks.append(sink)
        at = 0
        for p in e.pieces:
            by_frame[p.frame].append(Segment(p.offset, p.length, sink, at))
            at += p.length
    return _Prepared(root, report, sinks, by_frame)


def _finish(
    manifest: Manifest, root: Path, sinks: list[FileSink], report: RestoreReport, overwrite: bool
) -> None:
    """Links once every file is in place, then folder modes and mtimes, deepest first."""
    for sink in sinks:
        if sink.done:
            report.files += 1
            report.bytes += sink.size
        else:
            rel = sink.final.relative_to(root).as_posix()
            report.damaged[rel] = sink.damage or "its bytes never arrived"
    for e in manifest.entries:
        if e.kind == "link":
            final = _inside(root, (root / e.path).parent) / Path(e.path).name
            if overwrite and (final.is_symlink() or final.is_file()):
                final.unlink()
            final.symlink_to(e.link)
            os.utime(final, ns=(e.mtime_ns, e.mtime_ns), follow_symlinks=False)
            report.links += 1
    dirs = [e for e in manifest.entries if e.kind == "dir"]
    for d in sorted(dirs, key=lambda d: d.path.count("/"), reverse=True):
        path = root / d.path
        path.chmod(d.mode)
        os.utime(path, ns=(d.mtime_ns, d.mtime_ns))
    root.chmod(manifest.root_mode)
    os.utime(root, ns=(manifest.root_mtime_ns, manifest.root_mtime_ns))


def _check_dest(dest: Path, overwrite: bool) -> None:
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise BadInputError(f"{dest} exists and is not a folder")
    if dest.exists() and any(dest.iterdir()) and not overwrite:
        raise BadInputError(
            f"{dest} is not empty",
            hint="restore into a new or empty folder, or pass --overwrite to replace files",
        )


def _inside(root: Path, path: Path) -> Path:
    """Refuses a folder that resolves outside the destination (a symlink on the way)."""
    real = Path(os.path.realpath(path))
    if real != root and root not in real.parents:
        raise BadInputError(f"{path} leads outside {root}; nothing is written through it")
    return path


def _plan_fetches(frames: list[Frame], needed: list[int]) -> list[Fetch]:
    by_pack: dict[str, list[int]] = defaultdict(list)
    for i in needed:
        by_pack[frames[i].pack].append(i)
    fetches: list[Fetch] = []
    for pack, idx in by_pack.items():
        idx.sort(key=lambda i: frames[i].offset)
        current: Fetch | None = None
        for i in idx:
            f = frames[i]
            if (
                current is not None
                and f.offset == current.end
                and f.offset + f.length - current.start <= MAX_RANGE
            ):
                current.end = f.offset + f.length
                current.frames.append(i)
            else:
                current = Fetch(pack, f.offset, f.offset + f.length, [i])
                fetches.append(current)
    return fetches


def _unpack(
    path: Path,
    fetch: Fetch,
    frames: list[Frame],
    by_frame: dict[int, list[Segment]],
    advance: Callable[[int], None],
) -> None:
    dctx = zstandard.ZstdDecompressor(max_window_size=1 << 27)
    with open(path, "rb") as fh:
        for i in fetch.frames:
            f = frames[i]
            fh.seek(f.offset - fetch.start)
            blob = fh.read(f.length)
            segments = by_frame[i]
            try:
                if len(blob) != f.length:
                    raise zstandard.ZstdError("the pack is shorter than the manifest says")
                raw = dctx.decompress(blob, max_output_size=f.raw)
                if len(raw) != f.raw:
                    raise zstandard.ZstdError("a frame decompressed to the wrong size")
            except zstandard.ZstdError as err:
                reason = f"{fetch.pack} is damaged (frame at byte {f.offset}: {err})"
                for s in segments:
                    s.sink.fail(reason)
                continue
            view = memoryview(raw)
            for s in segments:
                s.sink.write(view[s.offset : s.offset + s.length], s.at)
                advance(s.length)


def _lose(fetch: Fetch, by_frame: dict[int, list[Segment]], reason: str) -> None:
    for i in fetch.frames:
        for s in by_frame[i]:
            s.sink.fail(reason)


def _damage_message(report: RestoreReport) -> str:
    names = sorted(report.damaged)
    reasons = sorted(set(report.damaged.values()))
    shown = ", ".join(names[:SHOWN]) + (
        f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    )
    return (
        f"{len(names)} file(s) could not be restored: {shown}. "
        + "; ".join(reasons[:3])
        + f". The other {report.files} files were restored and verified"
    )


def _damage_hint() -> str:
    return "restore an older snapshot for these files (`tierkeeper tree list` shows them)"
