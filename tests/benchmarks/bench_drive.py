"""Tier 2 to Google Drive (the project's Drive v3 test server on loopback), and restores.

Two floors, both measured in this run on the same data:
- `tar | zstd -3` into one file, then that one file sent to the same server with
  a plain HTTP upload loop (`uploadType=media`, one request, no client library):
  what packing plus moving the bytes costs with nothing else;
- for restore, `zstd -d` of one packed file.

The server runs in a process of its own (`python -m tests.drive_server`), as
real Drive is elsewhere: in this process it would share the GIL with the
client it serves, and every request would cost the backup twice. The floor
talks to the same server process.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

from core.config import TargetConfig
from core.models import JobState
from core.service import Service
from tests.benchmarks.claude_gen import ensure_big_session, ensure_projects
from tests.benchmarks.measure import Result, Row, dir_size, log, mb, scratch_parent, short_time
from tests.drive_server.process import DriveProcess, drive_process

NAME = "drive"
TITLE = "Tier 2 backup to Google Drive (test server) and restore"
GOAL_RATIO = 0.7
RESTORE_GOAL_S = 1.0


def _sizes(quick: bool) -> tuple[int, int]:
    """(corpus MB, big session MB)."""
    return (8, 8) if quick else (60, 70)


def prepare(quick: bool) -> None:
    corpus, big = _sizes(quick)
    ensure_projects(corpus)
    ensure_big_session(big)


def _media_upload(drive: DriveProcess, path: Path, token: str) -> None:
    """The plain HTTP floor: one POST of the whole file, no library, no chunks."""
    url = urllib.parse.urlsplit(drive.base_url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=120)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        conn.request(
            "POST",
            "/upload/drive/v3/files?uploadType=media",
            body=fh,
            headers={"Authorization": f"Bearer {token}", "Content-Length": str(size),
                     "Content-Type": "application/octet-stream"},
        )  # fmt: skip
        answer = conn.getresponse()
        answer.read()
    conn.close()
    if answer.status != 200:
        raise RuntimeError(f"the floor upload got HTTP {answer.status}")


def _floor(root: Path, data: Path, big: Path, drive: DriveProcess) -> dict[str, float]:
    out = root / "floor.tar.zst"
    t0 = time.perf_counter()
    subprocess.run(
        f"tar -C '{data.parent}' -cf - '{data.name}' | zstd -3 -q -T1 -o '{out}'",
        shell=True, check=True,
    )  # fmt: skip
    token, _refresh = drive.issue_tokens()
    _media_upload(drive, out, token)
    pack_upload_s = time.perf_counter() - t0
    big_zst = root / "big.zst"
    subprocess.run(["zstd", "-3", "-q", "-T1", str(big), "-o", str(big_zst)], check=True)
    t0 = time.perf_counter()
    subprocess.run(["zstd", "-d", "-q", "-f", str(big_zst), "-o", str(root / "big.out")],
                   check=True)  # fmt: skip
    return {"pack_upload_s": pack_upload_s, "unzstd_s": time.perf_counter() - t0,
            "big_packed": float(big_zst.stat().st_size)}  # fmt: skip


async def _ours(root: Path, data: Path, big: Path, drive: DriveProcess) -> dict[str, Any]:
    from core.tier2.drive_target import keep_tokens

    ws = root / "ws"
    async with await Service.start(ws) as svc:
        report = await svc.import_now([str(data)])
        big_report = await svc.import_now([str(big)])
        creds = drive.credentials()
        target = TargetConfig(
            name="gd",
            kind="drive",
            client_id=drive.client_id,
            token_uri=drive.token_uri,
            api_root=drive.base_url,
        )
        keep_tokens(target, svc.scope, creds.refresh_token, drive.client_secret)
        svc.config.targets.append(target)
        await svc.add_folder_target("disk", str(root / "disk"))
        sessions = [s.id for s in await svc.list_sessions()]
        big_id = next(s.id for s in await svc.list_sessions() if s.source_id == "big-session")
        small = [s for s in sessions if s != big_id]

        drive.reset_traffic()
        t0 = time.perf_counter()
        job = await svc.start_backup(small, "gd")
        done = await svc.jobs.wait(job.id)
        backup_s = time.perf_counter() - t0
        assert done.state == JobState.DONE and not (done.result or {}).get("failed"), done
        backup_requests = drive.traffic_counts()
        drive.reset_traffic()

        for name in ("gd", "disk"):
            job = await svc.start_backup([big_id], name)
            assert (await svc.jobs.wait(job.id)).state == JobState.DONE
        restore: dict[str, float] = {}
        for name in ("disk", "gd"):
            t0 = time.perf_counter()
            await svc.restore(big_id, root / f"restored-{name}", target=name)
            restore[name] = time.perf_counter() - t0
        big_packed = await svc.db.scalar(
            "SELECT stored_bytes FROM backups WHERE session_id = ? AND target = 'gd'", (big_id,)
        )
    stored = drive.stored()["bytes"]
    return {
        "backup_s": backup_s,
        "raw": float(report.bytes_read),
        "big_raw": float(big_report.bytes_read),
        "big_packed": float(big_packed or 0),
        "stored": float(stored),
        "sessions": len(small),
        "restore": restore,
        "backup_requests": backup_requests,
        "requests": drive.traffic_counts(),
    }


def run(quick: bool) -> Result:
    if shutil.which("zstd") is None:
        raise RuntimeError("the zstd command is needed for the baseline (apt-get install zstd)")
    corpus_mb, big_mb = _sizes(quick)
    data = ensure_projects(corpus_mb)
    big = ensure_big_session(big_mb)
    with tempfile.TemporaryDirectory(prefix="bench-drive-", dir=scratch_parent()) as tmp:
        root = Path(tmp)
        os.environ["PYTHON_KEYRING_BACKEND"] = "keyrings.alt.file.PlaintextKeyring"
        os.environ["XDG_DATA_HOME"] = str(root / "xdg")
        with drive_process() as drive:
            log(f"drive: floor (tar | zstd -3, one HTTP upload) on {mb(dir_size(data))}")
            floor = _floor(root, data, big, drive)
            log("drive: import (not timed), back up every session to the test Drive")
            ours = asyncio.run(_ours(root, data, big, drive))
    raw = ours["raw"]
    our_rate = raw / ours["backup_s"]
    floor_rate = raw / floor["pack_upload_s"]
    res = Result(NAME, TITLE)
    res.rows += [
        Row(
            f"Backup to Drive, {ours['sessions']} sessions, {mb(raw)}",
            f"{our_rate / 1e6:.1f} MB/s",
            "≥ 0.7 × tar \\| zstd -3 + upload",
            our_rate / floor_rate >= GOAL_RATIO,
            f"{floor_rate / 1e6:.1f} MB/s",
            f"{our_rate / floor_rate:.2f}×",
        ),
        Row(
            f"Restore one session ({mb(ours['big_packed'])} packed) from a folder",
            short_time(ours["restore"]["disk"]),
            "< 1 s",
            ours["restore"]["disk"] < RESTORE_GOAL_S,
            short_time(floor["unzstd_s"]) + " (zstd -d)",
            f"{ours['restore']['disk'] / floor['unzstd_s']:.2f}×",
        ),
        Row(
            f"Restore one session ({mb(ours['big_packed'])} packed) from Drive",
            short_time(ours["restore"]["gd"]),
            "< 1 s",
            ours["restore"]["gd"] < RESTORE_GOAL_S,
            short_time(floor["unzstd_s"]) + " (zstd -d)",
            f"{ours['restore']['gd'] / floor['unzstd_s']:.2f}×",
        ),
    ]
    res.method = (
        f"{ours['sessions']} synthetic Claude Code sessions ({mb(raw)}) and one long session "
        f"({mb(ours['big_raw'])} raw, {mb(ours['big_packed'])} packed) imported into a fresh "
        "workspace (not timed). One backup job to a Drive target on the project's Drive v3 "
        "test server (loopback, in a process of its own so it does not share the client's "
        "GIL), driven by the real google-api-python-client's transport: files up to 4 MiB in "
        "one multipart request, larger ones resumable in 8 MiB chunks, folders found or "
        "created (made ahead), md5 and size compared with the manifest, the manifest's own "
        "md5 the proof it landed (not read back). Restore: the "
        "long session from a folder target and from the Drive target into fresh folders, "
        "every file checked against its manifest. Floor: `tar | zstd -3 -T1` of the corpus "
        "into one file, then that file sent to the same server in one plain HTTP request."
    )
    backup_requests: dict[str, int] = ours["backup_requests"]
    res.details = [
        f"Backup {short_time(ours['backup_s'])}; floor {short_time(floor['pack_upload_s'])}; "
        f"stored on Drive {mb(ours['stored'])} in all.",
        f"Requests during the timed backup of {ours['sessions']} sessions: "
        f"{sum(backup_requests.values())} "
        f"({sum(backup_requests.values()) / max(1, ours['sessions']):.1f} a session): "
        + ", ".join(f"{k} {v}" for k, v in sorted(backup_requests.items())),
        "Then (the long session to Drive and a folder, both restores): "
        + ", ".join(f"{k} {v}" for k, v in sorted(ours["requests"].items())),
    ]
    return res
