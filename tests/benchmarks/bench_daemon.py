"""The daemon: a status request's latency over the socket, and the loop's stalls.

Latency: `GET /v1/status` from one client, one request after another, against the
real `tierkeeper daemon` in a process of its own; the floor is a bare aiohttp
handler answering a constant on a Unix socket, also in a process of its own,
measured in the same run with rounds interleaved so machine load hits both alike.

Stalls: while a backup job runs in the daemon, a 10 ms timer on the daemon's own
event loop records how late it fires; the same timer on the idle daemon is the
floor. A late timer means every request and event waited that long too.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from core.daemon.server import Daemon
from core.daemon.socket_path import socket_path
from core.models import JobState
from core.service import Service
from tests.benchmarks.claude_gen import ensure_projects
from tests.benchmarks.measure import REPO, Result, Row, log, mb, ms, percentile, scratch_parent

NAME = "daemon"
TITLE = "Daemon: request latency and event-loop stalls"
GOAL_P99 = 0.005
GOAL_STALL = 0.020
TICK = 0.010


def _size_mb(quick: bool) -> int:
    return 8 if quick else 60


def prepare(quick: bool) -> None:
    ensure_projects(_size_mb(quick))


# the floor: a bare handler in a process of its own ------------------------------------------
def _serve_constant(sock: str) -> None:
    async def status(request: web.Request) -> web.Response:
        return web.Response(body=b'{"ok": true}', content_type="application/json")

    app = web.Application()
    app.router.add_get("/v1/status", status)
    web.run_app(app, path=sock, print=lambda *_: print("serving", flush=True), access_log=None)


async def _wait_for_socket(sock: Path, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        if sock.exists():
            try:
                async with (
                    aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(sock))) as h,
                    h.get("http://x/v1/status") as r,
                ):
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        await asyncio.sleep(0.05)
    raise RuntimeError(f"nothing answered on {sock}")


async def _latencies(socks: dict[str, Path], rounds: int, per_round: int) -> dict[str, list[float]]:
    sessions = {
        name: aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(s), limit=1))
        for name, s in socks.items()
    }
    out: dict[str, list[float]] = {name: [] for name in socks}
    try:
        for http in sessions.values():  # warm-up: connections, caches, first queries
            for _ in range(100):
                async with http.get("http://tierkeeper/v1/status") as r:
                    await r.read()
        for _ in range(rounds):
            for name, http in sessions.items():
                for _ in range(per_round):
                    t0 = time.perf_counter()
                    async with http.get("http://tierkeeper/v1/status") as r:
                        await r.read()
                        assert r.status == 200
                    out[name].append(time.perf_counter() - t0)
    finally:
        for http in sessions.values():
            await http.close()
    return out


def _measure_latency(root: Path, ws: Path, quick: bool) -> dict[str, list[float]]:
    env = dict(os.environ, XDG_RUNTIME_DIR=str(root / "xdg"))
    (root / "xdg").mkdir(mode=0o700)
    floor_sock = root / "floor.sock"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "core.cli.entry", "daemon", "--workspace", str(ws)],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [sys.executable, "-m", "tests.benchmarks.bench_daemon", str(floor_sock)],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ),
    ]  # fmt: skip
    try:
        old = os.environ.get("XDG_RUNTIME_DIR")
        os.environ["XDG_RUNTIME_DIR"] = env["XDG_RUNTIME_DIR"]
        try:
            daemon_sock = socket_path(ws)
        finally:
            if old is None:
                os.environ.pop("XDG_RUNTIME_DIR")
            else:
                os.environ["XDG_RUNTIME_DIR"] = old

        async def measure() -> dict[str, list[float]]:
            await _wait_for_socket(daemon_sock, procs[0])
            await _wait_for_socket(floor_sock, procs[1])
            rounds = 5 if quick else 20
            return await _latencies({"daemon": daemon_sock, "floor": floor_sock}, rounds, 200)

        return asyncio.run(measure())
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)


# stalls ----------------------------------------------------------------------------------
async def _lags(stop: asyncio.Event, into: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t0 = loop.time()
        await asyncio.sleep(TICK)
        into.append(max(0.0, loop.time() - t0 - TICK))


async def _measure_stalls(root: Path, ws: Path) -> dict[str, float | list[float]]:
    idle: list[float] = []
    busy: list[float] = []
    daemon = await Daemon.start(ws, socket=root / "stall.sock", schedule=False)
    try:
        stop = asyncio.Event()
        monitor = asyncio.create_task(_lags(stop, idle))
        await asyncio.sleep(2.0)
        stop.set()
        await monitor
        stop = asyncio.Event()
        monitor = asyncio.create_task(_lags(stop, busy))
        t0 = time.perf_counter()
        job = await daemon.service.start_backup([], "disk")
        done = await daemon.service.jobs.wait(job.id)
        seconds = time.perf_counter() - t0
        stop.set()
        await monitor
        assert done.state == JobState.DONE, done.error
    finally:
        await daemon.stop()
    raw = float((done.result or {}).get("raw_bytes", 0))
    return {"idle": idle, "busy": busy, "seconds": seconds, "raw": raw}


def run(quick: bool) -> Result:
    data = ensure_projects(_size_mb(quick))
    with tempfile.TemporaryDirectory(prefix="bench-daemon-", dir=scratch_parent()) as tmp:
        root = Path(tmp)
        ws = root / "ws"

        async def setup() -> None:
            async with await Service.start(ws, run_jobs=False, schedule=False) as svc:
                await svc.import_now([str(data)])
                await svc.add_folder_target("disk", str(root / "disk"))

        log("daemon: import (not timed)")
        asyncio.run(setup())
        log("daemon: status latency, daemon and bare aiohttp interleaved")
        lat = _measure_latency(root, ws, quick)
        log("daemon: loop lag while idle, then while a backup runs")
        stalls = asyncio.run(_measure_stalls(root, ws))
    ours, floor = lat["daemon"], lat["floor"]
    p99, floor_p99 = percentile(ours, 99), percentile(floor, 99)
    idle, busy = stalls["idle"], stalls["busy"]
    assert isinstance(idle, list) and isinstance(busy, list)
    busy_max, busy_p99 = max(busy), percentile(busy, 99)
    res = Result(NAME, TITLE)
    res.rows += [
        Row(
            "Status request over the socket, p99",
            ms(p99),
            "< 5 ms",
            p99 < GOAL_P99,
            ms(floor_p99) + " (bare aiohttp)",
            f"{p99 / floor_p99:.2f}×",
        ),
        Row(
            "Status request over the socket, p50",
            ms(percentile(ours, 50)),
            "—",
            None,
            ms(percentile(floor, 50)) + " (bare aiohttp)",
            f"{percentile(ours, 50) / percentile(floor, 50):.2f}×",
        ),
        Row(
            "Event-loop stall during a backup, max",
            ms(busy_max),
            "< 20 ms",
            busy_max < GOAL_STALL,
            ms(max(idle)) + " (idle daemon)",
            "—",
        ),
        Row(
            "Event-loop stall during a backup, p99",
            ms(busy_p99),
            "—",
            None,
            ms(percentile(idle, 99)) + " (idle daemon)",
            "—",
        ),
    ]
    res.method = (
        f"{len(ours)} `GET /v1/status` requests, one after another on one connection, to the "
        "real daemon in its own process (a workspace holding the imported corpus), in rounds "
        "of 200 interleaved with the same number to a bare aiohttp handler returning a "
        "constant on a Unix socket; 100 warm-up requests each, not counted. Stalls: a 10 ms "
        "`asyncio.sleep` timer on the daemon's loop, its lateness recorded for 2 s idle and "
        f"then during a backup job of the whole corpus ({mb(float(stalls['raw']))}) to a "
        "folder target on the same disk."
    )
    res.details = [
        f"Backup took {ms(float(stalls['seconds']))}, {len(busy)} timer ticks during it.",
    ]
    return res


if __name__ == "__main__":
    _serve_constant(sys.argv[1])
