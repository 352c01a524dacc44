"""Wall time of the hook process, against an interpreter that does nothing.

Claude Code waits for `tierkeeper hook` on every tool call, so what counts is
process start to exit. Three commands run interleaved (so machine load hits
all alike): `python -c pass` (the floor any Python hook pays), `python -m
core.hooks.record`, and the installed console script `tierkeeper hook`, all
with the same interpreter, a PreToolUse payload on stdin and TIERKEEPER_HOME
pointing at a temporary workspace.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks.measure import REPO, Result, Row, log, median, ms, percentile, scratch_parent

NAME = "hook"
TITLE = "Hook process start-up"
GOAL_RATIO = 3.0
SESSION = "0f6c1b9e-0000-4000-8000-00000000h00k"


def payload(n: int) -> bytes:
    return json.dumps(
        {
            "session_id": SESSION,
            "transcript_path": f"/home/dev/.claude/projects/-home-dev-proj/{SESSION}.jsonl",
            "cwd": "/home/dev/proj",
            "permission_mode": "default",
            "hook_event_name": "PreToolUse",
            "tool_name": "Bash",
            "tool_input": {
                "command": "pytest -q tests/test_search.py -k 'prefix and not slow'",
                "description": "Run the search tests",
            },
            "tool_use_id": f"toolu_01ABCDEF{n:010d}",
        }
    ).encode()


def run(quick: bool) -> Result:
    rounds = 10 if quick else 40
    script = Path(sys.executable).with_name("tierkeeper")
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -m core.hooks.record": [sys.executable, "-m", "core.hooks.record"],
        "tierkeeper hook (console script)": [str(script), "hook"],
    }
    if not script.exists():
        del commands["tierkeeper hook (console script)"]
    times: dict[str, list[float]] = {name: [] for name in commands}
    log(f"hook: {rounds} interleaved runs of {len(commands)} commands")
    with tempfile.TemporaryDirectory(prefix="bench-hook-", dir=scratch_parent()) as tmp:
        env = dict(os.environ, TIERKEEPER_HOME=str(Path(tmp) / "ws"))
        names = list(commands)
        for n in range(rounds + 2):
            order = names[n % len(names) :] + names[: n % len(names)]
            for name in order:
                data = payload(n * 10 + names.index(name))
                t0 = time.perf_counter()
                subprocess.run(
                    commands[name], input=data, env=env, cwd=REPO, check=True, capture_output=True
                )
                if n >= 2:  # the first two rounds warm the page cache and .pyc files
                    times[name].append(time.perf_counter() - t0)
        log_file = Path(tmp) / "ws" / "logs" / f"session_{SESSION}.jsonl"
        recorded = len(log_file.read_bytes().splitlines()) if log_file.exists() else 0
        fallback = (Path(tmp) / "ws" / "fallback").exists()
    hook_runs = (rounds + 2) * (len(commands) - 1)
    assert recorded == hook_runs and not fallback, f"{recorded} of {hook_runs} events recorded"

    floor = median(times["python -c pass"])
    res = Result(NAME, TITLE)
    for name in names[1:]:
        m = median(times[name])
        res.rows.append(
            Row(f"Hook: `{name}` (median)", ms(m), "≤ 3× `python -c pass`", m <= GOAL_RATIO * floor,
                ms(floor), f"{m / floor:.2f}×")
        )  # fmt: skip
    res.method = (
        f"{rounds} interleaved runs of each command (after 2 warm-up rounds), wall time from "
        "`subprocess.run` start to exit, a ~450-byte PreToolUse (Bash) payload on stdin, "
        "TIERKEEPER_HOME set to a temporary workspace, same interpreter for all. Every hook run "
        f"was checked to have appended its line ({recorded} lines, no fallback file)."
    )
    res.details = [
        "| Command | median | p90 | min | max | ÷ `python -c pass` |",
        "|---|---|---|---|---|---|",
    ]
    for name, ts in times.items():
        res.details.append(
            f"| `{name}` | {ms(median(ts))} | {ms(percentile(ts, 90))} | {ms(min(ts))} "
            f"| {ms(max(ts))} | {median(ts) / floor:.2f}× |"
        )
    child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    res.details += ["", f"Largest peak RSS of any of these child processes: {child_rss:.0f} MB."]
    return res
