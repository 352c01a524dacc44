"""The installers: the .deb's size, the bundle's, and how fast the frozen programs start.

Measures what `make package` left in packaging/dist (it never builds: packaging
takes minutes, `make bench` must not). Start to first window is the frozen
`tierkeeper-gui --time-to-window` (process creation, as the kernel recorded it,
to the first paint of the window, offscreen) on a workspace made by a first,
unmeasured run. The frozen hook is timed as in the hook benchmark, interleaved
with `python -c pass`: `tierkeeper hook install` from the .deb writes the bundle's
`tierkeeper-hook` into Claude Code's settings (older installs wrote `tierkeeper
hook`, timed alongside).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks.bench_hook import SESSION, payload
from tests.benchmarks.measure import (
    REPO,
    Result,
    Row,
    log,
    mb,
    median,
    ms,
    ratio,
    scratch_parent,
)

NAME = "package"
TITLE = "Packaging: .deb and bundle size, frozen start-up"
DIST = REPO / "packaging" / "dist"
GOAL_DEB = 100e6
GOAL_WINDOW = 1.0
GOAL_HOOK_RATIO = 3.0
HOOK_PROGRAM = "tierkeeper-hook"


def newest_deb() -> Path | None:
    debs = sorted(DIST.glob("tierkeeper_*.deb"), key=lambda p: p.stat().st_mtime)
    return debs[-1] if debs else None


def run(quick: bool) -> Result:
    result = Result(NAME, TITLE)
    deb = newest_deb()
    bundle = DIST / "tierkeeper"
    if deb is None or not (bundle / "tierkeeper-gui").is_file():
        result.rows.append(Row("Packaging", "not built: run make package"))
        result.method = "Nothing measured: packaging/dist has no .deb and bundle."
        return result
    size = deb.stat().st_size
    result.rows.append(Row(f"`.deb` size ({deb.name})", mb(size), f"≤ {mb(GOAL_DEB)}",
                           size <= GOAL_DEB))  # fmt: skip
    result.rows.append(Row("PyInstaller bundle, installed size", mb(_files_size(bundle))))

    runs = 3 if quick else 7
    with tempfile.TemporaryDirectory(prefix="bench-package-", dir=scratch_parent()) as tmp:
        env = _env(Path(tmp))
        window, wall = _time_to_window(bundle, Path(tmp) / "ws", env, runs)
        result.rows.append(Row("Frozen start to first window (median)", ms(median(window)),
                               f"< {ms(GOAL_WINDOW)}", median(window) < GOAL_WINDOW))  # fmt: skip
        hooks, floor = _hook(bundle, Path(tmp) / "ws", env, 10 if quick else 40)
    for name, times in hooks.items():
        installed = name == HOOK_PROGRAM or len(hooks) == 1  # what `hook install` writes
        result.rows.append(
            Row(f"Frozen `{name}` (median)" + ("" if installed else ", older installs' hook"),
                ms(median(times)), f"≤ {GOAL_HOOK_RATIO:.0f}× `python -c pass`" if installed
                else "—", median(times) <= GOAL_HOOK_RATIO * median(floor) if installed else None,
                ms(median(floor)), ratio(median(times), median(floor)))
        )  # fmt: skip
    result.method = (
        f"`make package` output in packaging/dist. Start to first window: {runs} runs of "
        "`tierkeeper-gui --time-to-window --workspace WS` (QT_QPA_PLATFORM=offscreen), "
        "after one unmeasured run that creates the workspace; the figure is the program's "
        "own, from its process creation to the first paint. Hook: the frozen "
        "`tierkeeper-hook` and `tierkeeper hook` with a PreToolUse payload, interleaved "
        "with the venv's `python -c pass`; every run checked to have appended its line "
        "to the workspace's activity log."
    )
    result.details.append(
        "Start to first window, each run: " + ", ".join(ms(s) for s in window)
        + f"; whole process (to exit) median {ms(median(wall))}."
    )  # fmt: skip
    return result


def _files_size(folder: Path) -> int:
    """Bytes on disk as installed; the bundle links some libraries twice, counted once."""
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def _env(home: Path) -> dict[str, str]:
    """A scratch home: the window's settings and caches must not land in the real one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIERKEEPER")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"),
               XDG_CACHE_HOME=str(home / "cache"), QT_QPA_PLATFORM="offscreen")  # fmt: skip
    return env


def _time_to_window(
    bundle: Path, ws: Path, env: dict[str, str], runs: int
) -> tuple[list[float], list[float]]:
    argv = [str(bundle / "tierkeeper-gui"), "--workspace", str(ws), "--time-to-window"]
    log("package: first (unmeasured) window run creates the workspace")
    subprocess.run(argv, env=env, check=True, capture_output=True, timeout=120)
    own: list[float] = []
    wall: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(argv, env=env, check=True, capture_output=True, text=True,
                              timeout=120)  # fmt: skip
        wall.append(time.perf_counter() - started)
        line = next(x for x in done.stdout.splitlines() if x.startswith("time-to-window "))
        own.append(float(line.split()[1]))
    return own, wall


def _hook(
    bundle: Path, ws: Path, env: dict[str, str], rounds: int
) -> tuple[dict[str, list[float]], list[float]]:
    """Each hook command's times (the hook program first, when built) and the floor's."""
    hook_env = {**env, "TIERKEEPER_HOME": str(ws)}
    commands = {
        HOOK_PROGRAM: [str(bundle / HOOK_PROGRAM)],
        "tierkeeper hook": [str(bundle / "tierkeeper"), "hook"],
        "floor": [sys.executable, "-c", "pass"],
    }
    if not (bundle / HOOK_PROGRAM).is_file():  # a bundle from before it existed
        del commands[HOOK_PROGRAM]
    activity = ws / "logs" / f"session_{SESSION}.jsonl"
    before = _lines(activity)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for i in range(rounds):
        for n, (name, argv) in enumerate(commands.items()):
            data = payload(i * len(commands) + n)
            started = time.perf_counter()
            subprocess.run(argv, input=data, env=hook_env, check=True, capture_output=True)
            times[name].append(time.perf_counter() - started)
    recorded, expected = _lines(activity) - before, rounds * (len(commands) - 1)
    assert recorded == expected, f"frozen hooks recorded {recorded} of {expected} events"
    assert not (ws / "fallback" / "hook_payloads.jsonl").exists(), "a hook event went to fallback"
    floor = times.pop("floor")
    return times, floor


def _lines(path: Path) -> int:
    return len(path.read_bytes().splitlines()) if path.exists() else 0
