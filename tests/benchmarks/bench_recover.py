"""Disaster recovery: rebuild the catalog of 1,000 backed-up sessions from a folder target.

Not timed: 1,000 synthetic Claude Code sessions (the shape of the import
benchmark's corpus) imported and backed up to a folder target. Timed: in a
new, empty workspace, `Service.recover()` — list the target, read the index,
every manifest and every session catalog, write the DB. Measured beside it:
the bytes the rebuild read against everything the target stores, and that
the rebuilt sessions list equals the original.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from pathlib import Path

from core.models import JobState
from core.service import Service
from tests.benchmarks.claude_gen import SEED, _Session
from tests.benchmarks.measure import Result, Row, cache_dir, dir_size, log, mb, scratch_parent
from tests.benchmarks.synth import TextGen

NAME = "recover"
TITLE = "Disaster recovery: catalog rebuild from the remotes"
GOAL_SECONDS = 5.0


def _count(quick: bool) -> int:
    return 100 if quick else 1000


def _corpus(sessions: int) -> Path:
    """`sessions` transcripts over 6 projects, 10–60 turns each, cached."""
    root = cache_dir() / f"recover-sessions-v1-{sessions}"
    if (root / ".complete").exists():
        return root / "projects"
    log(f"generating {sessions} Claude Code sessions for the recovery benchmark")
    gen = TextGen(SEED + 7, vocab_size=20_000)
    for n in range(sessions):
        project = f"-home-dev-project-{n % 6}"
        folder = root / "projects" / project
        folder.mkdir(parents=True, exist_ok=True)
        sid = str(uuid.UUID(int=((SEED + 7) << 96) | n, version=4))
        session = _Session(gen, project, sid, n)
        for _ in range(int(gen.rng.integers(10, 60))):
            session.turn()
        (folder / f"{sid}.jsonl").write_bytes(b"".join(session.lines))
    (root / ".complete").write_text("ok\n")
    return root / "projects"


def prepare(quick: bool) -> None:
    _corpus(_count(quick))


async def _backed_up(root: Path, data: Path) -> list[object]:
    async with await Service.start(root / "ws1") as svc:
        await svc.import_now([str(data)])
        await svc.add_folder_target("t2", str(root / "t2"))
        done = await svc.jobs.wait((await svc.start_backup([], "t2")).id)
        assert done.state == JobState.DONE and not (done.result or {}).get("failed"), done
        return [s.model_dump(exclude={"in_backup_only"}) for s in await svc.list_sessions()]


async def _rebuild(root: Path) -> tuple[float, int, int, int, list[object]]:
    async with await Service.start(root / "ws2") as svc:
        await svc.add_folder_target("t2", str(root / "t2"))
        t0 = time.perf_counter()
        (report,) = await svc.recover()
        seconds = time.perf_counter() - t0
        assert not report.problems, report.problems
        listed = [s.model_dump(exclude={"in_backup_only"}) for s in await svc.list_sessions()]
        assert all(s.in_backup_only for s in await svc.list_sessions())
        return seconds, report.bytes_read, report.objects_read, report.sessions_added, listed


def run(quick: bool) -> Result:
    count = _count(quick)
    data = _corpus(count)
    res = Result(NAME, TITLE)
    with tempfile.TemporaryDirectory(prefix="bench-recover-", dir=scratch_parent()) as tmp:
        root = Path(tmp)
        log(f"recover: import and back up {count} sessions (not timed)")
        before = asyncio.run(_backed_up(root, data))
        stored = dir_size(root / "t2")
        log("recover: rebuild the catalog in a new workspace")
        seconds, read, objects, added, after = asyncio.run(_rebuild(root))
    assert added == len(before) and after == before, "the rebuilt list differs"
    res.rows += [
        Row(f"Catalog rebuild, {added:,} sessions, folder target", f"{seconds:.2f} s",
            f"< {GOAL_SECONDS:.0f} s", seconds < GOAL_SECONDS, "—", "—"),
        Row("Catalog rebuild: bytes read ÷ bytes the target stores",
            f"{read / stored:.3f} ({mb(read)} of {mb(stored)})",
            "manifests + catalogs only", objects == 1 + 2 * added, "—",
            f"{objects:,} objects read"),
    ]  # fmt: skip
    res.method = (
        f"{count:,} synthetic Claude Code sessions ({mb(dir_size(data))} of transcripts) "
        "imported and backed up to a folder target (not timed); then, in a new empty "
        "workspace with the same target added, `Service.recover()` is timed: list the "
        "target, read index.json, every manifest.json and every catalog.json.zst, and write "
        "the rows. No data file is read: the objects read are 1 index + 2 per session. The "
        "rebuilt sessions list (ids, projects, tokens, costs, sizes) equals the original."
    )
    return res
