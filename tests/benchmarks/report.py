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
    out.append("")
    return "\n".join(out)
