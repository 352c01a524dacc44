"""One snapshot of a folder tree: walk, plan, pack and upload at once, then the manifest.

Packing runs on a thread and hands each finished pack to the upload side
through a queue of one, so a pack goes up while the next one is being made and
at most a couple of packs sit on disk. The manifest is put only when every pack
is up: until then the target holds no new snapshot, only packs nobody uses yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from core.errors import BadInputError
from core.remote.base import PutSource, Store
from core.tree import catalog
from core.tree.manifest import Manifest
from core.tree.pack import FRAME_SIZE, PACK_SIZE, FileJob, Packer, PackFile, PackingStopped
from core.tree.plan import compact, plan
from core.tree.walk import walk

ProgressFn = Callable[[int, int], None]
"""Called from a worker thread with (bytes packed so far, bytes to pack)."""

_DONE = None


@dataclass(slots=True)
class BackupReport:
    label: str
    snapshot: str
    files: int = 0
    dirs: int = 0
    links: int = 0
    bytes_in: int = 0
    """Total size of the files in the tree."""
    reused: int = 0
    """Files unchanged since the previous snapshot: not even read."""
    grown: int = 0
    """Files that only grew: their tail alone was packed."""
    bytes_packed: int = 0
    packs: int = 0
    stored: int = 0
    """Bytes this snapshot added to the target (packs + manifest)."""
    skipped: list[str] = field(default_factory=list)


async def backup_tree(
    store: Store,
    folder: Path,
    label: str,
    *,
    cache: Path | None = None,
    tmpdir: Path | None = None,
    progress: ProgressFn | None = None,
    frame_size: int = FRAME_SIZE,
    pack_size: int = PACK_SIZE,
    uploads: int = 2,
) -> BackupReport:
    catalog.check_label(label)
    try:
        found = await asyncio.to_thread(walk, folder)
    except (NotADirectoryError, FileNotFoundError):
        raise BadInputError(f"{folder} is not a folder") from None
    previous = None
    ids = await catalog.snapshots(store, label)
    packs: set[str] = set()
    if ids:
        previous = await catalog.load(store, label, ids[-1], cache)
        packs = await catalog.pack_keys(store, label)
    work = plan(found, folder, previous, packs)
    snapshot = catalog.new_snapshot_id()
    report = BackupReport(label, snapshot, reused=work.reused)
    total = work.bytes_to_read

    scratch = Path(tempfile.mkdtemp(prefix="tk-tree-", dir=tmpdir))
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[PackFile | None] = asyncio.Queue(maxsize=1)
    stop = threading.Event()
    done_bytes = 0

    def advance(n: int) -> None:
        nonlocal done_bytes
        done_bytes += n
        if progress is not None:
            progress(done_bytes, total)

    def emit(pack: PackFile) -> None:
        handed = asyncio.run_coroutine_threadsafe(queue.put(pack), loop)
        while True:
            try:
                handed.result(timeout=0.2)
                return
            except TimeoutError:
                if stop.is_set():
                    handed.cancel()
                    pack.path.unlink(missing_ok=True)
                    raise PackingStopped("packing stopped") from None

    packer = Packer(
        scratch,
        lambda n: catalog.pack_key(snapshot, n),
        emit,
        frame_base=len(work.frames),
        frame_size=frame_size,
        pack_size=pack_size,
        progress=advance,
        stop=stop,
    )

    def pack_all() -> None:
        try:
            for job in work.jobs:
                packer.add(job)
            packer.finish()
        except BaseException:
            packer.abort()
            raise

    async def upload() -> None:
        while (pack := await queue.get()) is not _DONE:
            try:
                source = PutSource(pack.path, pack.size, pack.sha256, pack.md5)
                await store.put(catalog.base(label) + pack.key, source)
                report.packs += 1
                report.stored += pack.size
            finally:
                pack.path.unlink(missing_ok=True)

    try:
        thread = asyncio.ensure_future(asyncio.to_thread(pack_all))

        async def produce() -> None:
            await asyncio.shield(thread)
            for _ in range(uploads):
                await queue.put(_DONE)

        tasks = [asyncio.ensure_future(produce())]
        tasks += [asyncio.ensure_future(upload()) for _ in range(uploads)]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            stop.set()
            for task in tasks:
                task.cancel()
            with contextlib.suppress(BaseException):
                await thread  # the thread stops at the next file or pack
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        new_frames = packer.frames
        failed = {id(j.entry): j.failed for j in work.jobs if j.failed}
        entries = [e for e in work.entries if id(e) not in failed]
        report.skipped = found.skipped + [reason for reason in failed.values() if reason]
        frames = compact(entries, work.frames + new_frames)
        manifest = Manifest(
            id=snapshot,
            label=label,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            source=found.source,
            root_mode=found.root_mode,
            root_mtime_ns=found.root_mtime_ns,
            parent=previous.id if previous else None,
            frames=frames,
            entries=entries,
            skipped=report.skipped,
        )
        _count(report, manifest, work.jobs)
        report.bytes_packed = packer.bytes_in
        manifest.stats = {
            "bytes_in": report.bytes_in,
            "bytes_packed": report.bytes_packed,
            "reused": report.reused,
            "grown": report.grown,
        }
        data = await catalog.save(store, manifest, scratch)
        report.stored += len(data)
        if cache is not None:
            catalog.keep_local(cache, snapshot, data)
        return report
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _count(report: BackupReport, manifest: Manifest, jobs: list[FileJob]) -> None:
    for e in manifest.entries:
        if e.kind == "file":
            report.files += 1
            report.bytes_in += e.size
        elif e.kind == "dir":
            report.dirs += 1
        else:
            report.links += 1
    report.grown = sum(1 for j in jobs if j.tail_only and not j.failed)
