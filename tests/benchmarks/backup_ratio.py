"""Bytes a backup stores ÷ raw bytes, on the two corpora the goal names.

The plan's 90 % cut assumes what agent sessions really hold: a state snapshot
saved again and again with a few percent changed. So one corpus is sessions
made through the product (session start, a 2 MB state saved every few steps,
activity events, session end); the other is `../shared/fixtures` (real
transcripts, one of them mostly an embedded image). Each is compared with
`tar | zstd -3` of the same plain bytes and with the best a single zstd stream
can do (`-19 --long=27`), which bounds what any per-file or per-session
compression could reach.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import zstandard

from core.local.activity_log import ActivityEvent, ActivityLog
from core.local.snapshots import SnapshotStore
from core.models import JobState
from core.service import Service
from tests.benchmarks.bench_snapshots import _evolve, make_state
from tests.benchmarks.measure import SHARED, dir_size

FIXTURES = SHARED / "fixtures" / "claude-code"


def _stream_sizes(folder: Path, out: Path) -> tuple[int, int]:
    """(`tar | zstd -3`, `tar | zstd -19 --long=27`) of `folder`, in bytes."""
    sizes = []
    for flags in ("-3", "-19 --long=27"):
        dst = out.with_suffix(f".{len(sizes)}.zst")
        subprocess.run(
            f"tar -C '{folder.parent}' -cf - '{folder.name}' | zstd {flags} -q -T1 -o '{dst}'",
            shell=True, check=True,
        )  # fmt: skip
        sizes.append(dst.stat().st_size)
    return sizes[0], sizes[1]


async def _backup(svc: Service, disk: Path) -> None:
    await svc.add_folder_target("disk", str(disk))
    job = await svc.start_backup([], "disk")
    done = await svc.jobs.wait(job.id)
    assert done.state == JobState.DONE and not (done.result or {}).get("failed"), done


async def _snapshot_sessions(root: Path, sessions: int, saves: int) -> dict[str, Any]:
    ws, disk, plain = root / "ws-snap", root / "disk-snap", root / "snap-plain"
    raw = 0
    async with await Service.start(ws) as svc:
        store = SnapshotStore(svc.workspace.state)
        for k in range(sessions):
            sid = (await svc.start_session(agent="bench")).session
            state = make_state(2_000_000, seed=100 + k)
            with ActivityLog.open(svc.workspace.log_path(sid)) as log:
                for n in range(saves):
                    _evolve(state, n)
                    info = await asyncio.to_thread(store.save, sid, state)
                    for step in range(20):
                        log.append(ActivityEvent(session=sid, type="PostToolUse", tool="Edit",
                                                 payload={"step": n * 20 + step}))  # fmt: skip
                    folder = plain / sid
                    folder.mkdir(parents=True, exist_ok=True)
                    data = zstandard.ZstdDecompressor().decompress(info.path.read_bytes())
                    (folder / info.path.name.removesuffix(".zst")).write_bytes(data)
                    raw += len(data)
            await svc.end_session(sid, summary="bench session", open_items=[])
            for extra in (svc.workspace.log_path(sid), svc.workspace.handoff_path(sid)):
                raw += extra.stat().st_size
                (plain / sid / extra.name).write_bytes(extra.read_bytes())
        await _backup(svc, disk)
    tar3, best = _stream_sizes(plain, root / "snap")
    return {"raw": raw, "stored": dir_size(disk), "tar3": tar3, "best": best,
            "sessions": sessions, "saves": saves}  # fmt: skip


async def _fixtures(root: Path) -> dict[str, Any]:
    disk = root / "disk-fixtures"
    async with await Service.start(root / "ws-fixtures") as svc:
        report = await svc.import_now([str(FIXTURES)])
        await _backup(svc, disk)
    tar3, best = _stream_sizes(FIXTURES, root / "fixtures")
    return {"raw": report.bytes_read, "stored": dir_size(disk), "tar3": tar3, "best": best}


def measure(root: Path, quick: bool) -> dict[str, dict[str, Any]]:
    out = {"snapshots": asyncio.run(_snapshot_sessions(root, 2 if quick else 4,
                                                         4 if quick else 12))}  # fmt: skip
    if FIXTURES.is_dir():
        out["fixtures"] = asyncio.run(_fixtures(root))
    return out
