"""Renders benchmark results as docs/BENCHMARKS.md.

The machine section names hardware and versions but never a host name or a
path: the file is committed and compared across runs and machines.
"""

from __future__ import annotations

import os
import platform
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from tests.benchmarks.measure import Result


def machine() -> list[tuple[str, str]]:
    return [
        ("CPU", _cpu_model()),
        ("Cores", str(os.cpu_count() or "?")),
        ("RAM", _ram()),
        ("OS", f"{_os_name()} (kernel {platform.release()})"),
        ("Python", platform.python_version()),
        ("SQLite", sqlite3.sqlite_version),
        ("Scratch filesystem", _fs_type(Path(os.environ.get("BENCH_TMP") or "/tmp"))),
    ]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / (1 << 20):.1f} GiB"
    except OSError:
        pass
    return "?"


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return f"{platform.system()}"


def _fs_type(path: Path) -> str:
    """The filesystem the temporary files live on (tmpfs would make fsync free)."""
    try:
        target = str(path.resolve())
        best, kind = "", "?"
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            mount = parts[1]
            inside = target == mount or target.startswith(mount.rstrip("/") + "/")
            if inside and len(mount) > len(best):
                best, kind = mount, parts[2]
        return kind
    except OSError:
        return "?"


def verdict(passed: bool | None) -> str:
    return "—" if passed is None else ("PASS" if passed else "**MISS**")


def render(results: list[Result], *, quick: bool, total_seconds: float) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m tests.benchmarks.run --out docs/BENCHMARKS.md`);"
        " do not edit by hand.",
        "",
        f"Run: {now}{' — **quick (smoke) sizes**, not comparable' if quick else ''};"
        f" {total_seconds / 60:.1f} min in all.",
        "",
        "| Machine | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in machine()),
        "",
        "Figures on 2-core shared (virtual) machines are noisy: absolute times move by tens of"
        " percent between runs. Compare the **ratio to the baseline measured in the same run**,"
        " not absolute figures across runs or machines. Each benchmark runs in a fresh process"
        " (its peak RSS is its own); goals are never asserted in the test suite.",
        "",
        "## Summary",
        "",
        "| Benchmark | Result | Goal | | Baseline (same run) | Ratio |",
        "|---|---|---|---|---|---|",
    ]
    for res in results:
        for row in res.rows:
            out.append(
                f"| {row.benchmark} | {row.result} | {row.goal} | {verdict(row.passed)} "
                f"| {row.baseline} | {row.ratio} |"
            )
    for res in results:
        out += ["", f"## {res.title}", ""]
        if res.method:
            out += [f"Method: {res.method}", ""]
        out += res.details
        out += ["", f"Peak RSS {res.peak_rss_mb:.0f} MB; {res.seconds:.1f} s for this benchmark."]
    out += peers_section()
    out.append("")
    return "\n".join(out)


PEER_RESULTS = Path(__file__).resolve().parents[2] / "docs" / "bench-results"


def peers_section(results: Path = PEER_RESULTS) -> list[str]:
    """The newest `make bench-peers` run (../shared/bench/peers.sh), kept as it was measured:
    that script takes minutes, so `make bench` renders its last result instead of rerunning."""
    runs = sorted(results.glob("*.jsonl"))
    if not runs:
        return []
    import json

    newest = runs[-1]
    rows = [json.loads(line) for line in newest.read_text().splitlines() if line.strip()]
    if not rows:
        return []
    stamp = newest.name.split("-", 1)[0]
    try:
        when = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        when = stamp
    floor = rows[0]["mb_s"] or 1.0
    out = [
        "",
        "## Peers (../shared/bench)",
        "",
        f"Run: {when} (`make bench-peers`, {newest.name}). restic, rclone and borg beside"
        " Tierkeeper's `tree backup`/`tree restore` on the same generated agent data and one"
        " local SeaweedFS S3 server (borg: a local repository, it has no S3 backend); the"
        " incremental round follows a change to 5 % of the sessions. × floor is throughput"
        " relative to `tar | zstd -3` plus one upload; stored/in counts everything in the"
        " bucket (for incremental rows: both rounds).",
        "",
        "| tool | scenario | MB in | s | MB/s | × floor | CPU s | RSS MB | stored/in"
        " | restore s | verify |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        restore = f"{r['restore_s']:.1f}" if r.get("restore_s") is not None else "-"
        tool = str(r["tool"]).replace("|", r"\|")  # "tar|zstd" must not split the row
        out.append(
            f"| {tool} | {r['scenario']} | {r['mb_in']:.0f} | {r['seconds']:.1f}"
            f" | {r['mb_s']:.0f} | {r['mb_s'] / floor:.2f} | {r['cpu_s']:.1f} | {r['rss_mb']}"
            f" | {r['ratio']:.3f} | {restore} | {r.get('verify') or '-'} |"
        )
    return out
