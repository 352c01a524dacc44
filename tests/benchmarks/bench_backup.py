"""Tier 2 backup to a folder: pack + upload + verify of every session, and restore.

The floor is `tar -cf - projects | zstd -3` into one file on the same disk,
measured in the same run: it reads the same transcripts and writes one
compressed stream, with no per-file manifest, digests or read-back. Restore
is compared with `zstd -d | tar -x` of that file.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from core.models import JobState
from core.service import Service
from tests.benchmarks.backup_ratio import measure as measure_ratios
from tests.benchmarks.claude_gen import ensure_big_session, ensure_projects
from tests.benchmarks.measure import Result, Row, dir_size, log, mb, scratch_parent, short_time

NAME = "backup"
TITLE = "Tier 2 backup to a folder"
GOAL_RATIO = 0.7


def _size_mb(quick: bool) -> int:
    return 8 if quick else 150


def prepare(quick: bool) -> None:
    ensure_projects(_size_mb(quick))


async def _backup_and_restore(root: Path, data: Path) -> dict[str, float]:
    ws, disk = root / "ws", root / "disk"
    async with await Service.start(ws) as svc:
        report = await svc.import_now([str(data)])
        await svc.add_folder_target("disk", str(disk))
        t0 = time.perf_counter()
        job = await svc.start_backup([], "disk")
        done = await svc.jobs.wait(job.id)
        backup_s = time.perf_counter() - t0
        assert done.state == JobState.DONE and not (done.result or {}).get("failed"), done
        sessions = [s.id for s in await svc.list_sessions()]
        t0 = time.perf_counter()
        for sid in sessions:
            await svc.restore(sid, root / "restored" / sid)
        restore_s = time.perf_counter() - t0
    return {
        "backup_s": backup_s,
        "restore_s": restore_s,
        "raw": float(report.bytes_read),
        "stored": float(dir_size(disk)),
        "sessions": float(len(sessions)),
    }


def _floor(root: Path, data: Path) -> dict[str, float]:
    out = root / "floor.tar.zst"
    t0 = time.perf_counter()
    subprocess.run(
        f"tar -C '{data.parent}' -cf - '{data.name}' | zstd -3 -q -T1 -o '{out}'",
        shell=True, check=True,
    )  # fmt: skip
    pack_s = time.perf_counter() - t0
    dest = root / "floor-restored"
    dest.mkdir()
    t0 = time.perf_counter()
    subprocess.run(f"zstd -d -q -c '{out}' | tar -C '{dest}' -xf -", shell=True, check=True)
    return {"pack_s": pack_s, "unpack_s": time.perf_counter() - t0, "size": out.stat().st_size}


BIG_SESSION_MB = 2000
"""The issue's own case: a 2 GB session backs up in < 200 MB RSS. Its import takes minutes."""


def _big_session_rss(root: Path, transcript: Path) -> tuple[float, int]:
    """Peak RSS (MB) of `tierkeeper backup` of one long session, run as its own process."""
    ws = root / "ws-big"

    async def setup() -> str:
        async with await Service.start(ws) as svc:
            await svc.import_now([str(transcript)])
            await svc.add_folder_target("disk", str(root / "disk-big"))
            (session,) = await svc.list_sessions()
            return session.id

    sid = asyncio.run(setup())
    # A child's peak RSS keeps what it had before its exec, and a child forked from
    # this process (hundreds of MB after the imports) starts with all of it. So a
    # small launcher starts the backup and reads its peak from wait4.
    done = subprocess.run(
        [sys.executable, "-c", _LAUNCH, sys.executable, "-m", "core.cli.entry", "backup", sid,
         "--workspace", str(ws)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    peak_kb = int(done.stdout.strip().splitlines()[-1])
    return peak_kb / 1024, transcript.stat().st_size


_LAUNCH = (
    "import os, sys\n"
    "pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ)\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "print(usage.ru_maxrss)\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def run(quick: bool) -> Result:
    if shutil.which("zstd") is None:
        raise RuntimeError("the zstd command is needed for the baseline (apt-get install zstd)")
    data = ensure_projects(_size_mb(quick))
    with tempfile.TemporaryDirectory(prefix="bench-backup-", dir=scratch_parent()) as tmp:
        root = Path(tmp)
        log(f"backup: floor (tar | zstd -3) on {mb(dir_size(data))}")
        floor = _floor(root, data)
        log("backup: import (not timed), then back up every session")
        ours = asyncio.run(_backup_and_restore(root, data))
        big_mb = 8 if quick else BIG_SESSION_MB
        log(f"backup: one {big_mb} MB session, backed up by the CLI in a process of its own")
        big_rss, big_raw = _big_session_rss(root, ensure_big_session(big_mb))
        log("backup: bytes stored on sessions with snapshots, and on the shared fixtures")
        ratios = measure_ratios(root, quick)
    raw = ours["raw"]
    our_rate = raw / ours["backup_s"]
    floor_rate = raw / floor["pack_s"]
    res = Result(NAME, TITLE)
    res.rows += [
        Row(
            f"Backup to a folder, {mb(raw)}",
            f"{our_rate / 1e6:.1f} MB/s",
            "≥ 0.7 × tar \\| zstd -3",
            our_rate / floor_rate >= GOAL_RATIO,
            f"{floor_rate / 1e6:.1f} MB/s",
            f"{our_rate / floor_rate:.2f}×",
        ),
        *_ratio_rows(ratios),
        Row(
            "Backup: bytes stored ÷ raw, synthetic transcripts (above)",
            f"{ours['stored'] / raw:.3f}",
            "—",
            None,
            f"{floor['size'] / raw:.3f} (tar \\| zstd -3)",
            f"{ours['stored'] / floor['size']:.2f}×",
        ),
        Row(
            f"Backup of one {mb(big_raw)} session: peak RSS of the process",
            f"{big_rss:.0f} MB",
            "< 200 MB (a 2 GB session)",
            big_rss < 200,
            "—",
            "—",
        ),
        Row(
            "Restore every session",
            short_time(ours["restore_s"]),
            "—",
            None,
            short_time(floor["unpack_s"]) + " (zstd -d \\| tar -x)",
            f"{ours['restore_s'] / floor['unpack_s']:.2f}×",
        ),
    ]
    res.method = (
        f"{int(ours['sessions'])} synthetic Claude Code sessions ({mb(raw)}) imported into a "
        "fresh workspace (not timed), then one backup job to a folder target on the same disk: "
        "per session, each source file's stored zstd frames copied from the DB (its raw "
        "digest the one the import took, stored digests in the same pass) and its recovery "
        "catalog rendered by SQLite, written atomically with fsync, checked against the "
        "digests recorded, manifest written and read back, backup recorded. Restore: "
        "every session into a fresh folder, each file checked against its manifest. Floor: "
        "`tar | zstd -3 -T1` of the same folder into one file, and its extraction."
    )
    res.details = [
        f"Backup {short_time(ours['backup_s'])}; floor {short_time(floor['pack_s'])}. "
        f"Stored {mb(ours['stored'])} against {mb(floor['size'])} for one tar stream: a "
        "transcript is stored as the zstd frames the DB already holds (one per import batch, "
        "so nothing is compressed twice), plus per session a manifest and a recovery catalog.",
        *_ratio_details(ratios),
        f"Peak RSS: `tierkeeper backup` of the {mb(big_raw)} session (one transcript, imported "
        "first, not timed: most of this benchmark's time) in a process of its own, its peak "
        "read with wait4 by a small launcher (a child forked from the benchmark process "
        "would start out with the benchmark's own memory). It does not grow with the "
        "session: the stored frames stream 8 at a time and the catalog streams too.",
    ]
    return res


def _ratio_rows(ratios: dict[str, dict[str, float]]) -> list[Row]:
    labels = {"snapshots": "sessions with near-duplicate snapshots",
              "fixtures": "../shared/fixtures"}  # fmt: skip
    rows = []
    for name, r in ratios.items():
        rows.append(
            Row(
                f"Backup: bytes stored ÷ raw, {labels[name]}",
                f"{r['stored'] / r['raw']:.3f}",
                "≤ 0.10",
                r["stored"] / r["raw"] <= 0.10,
                f"{r['tar3'] / r['raw']:.3f} (tar \\| zstd -3); "
                f"{r['best'] / r['raw']:.3f} (zstd -19 --long)",
                f"{r['stored'] / r['tar3']:.2f}× tar \\| zstd -3",
            )
        )
    return rows


def _ratio_details(ratios: dict[str, dict[str, float]]) -> list[str]:
    out = []
    snap = ratios.get("snapshots")
    if snap is not None:
        out.append(
            f"Snapshot sessions: {int(snap['sessions'])} sessions made through the product "
            f"(start, a 2 MB agent state saved {int(snap['saves'])} times with ~5 % changed "
            f"each time, 20 activity events per save, end with a handoff note): "
            f"{mb(snap['raw'])} raw, {mb(snap['stored'])} stored (snapshots in one tarball per "
            "session, zstd with long-distance matching, so each save after the first costs "
            "little)."
        )
    fx = ratios.get("fixtures")
    if fx is not None:
        out.append(
            f"Fixtures: {mb(fx['raw'])} of real transcripts, {mb(fx['stored'])} stored. No "
            f"compressor gets near 0.10 here: the best single zstd stream is "
            f"{fx['best'] / fx['raw']:.3f} of raw, because one file is mostly a base64 image "
            "and the rest are short, distinct conversations with no repeated state to cut."
        )
    return out
