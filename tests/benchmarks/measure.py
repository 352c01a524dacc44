"""What every benchmark shares: the result shape, percentiles, the cache folder.

A benchmark module exposes `NAME`, `TITLE`, `run(quick) -> Result` and,
when it needs data that is slow to make, `prepare(quick) -> None`. `run.py`
calls each in a process of its own, so peak RSS belongs to one benchmark and
the data preparation does not count in it.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".bench-cache"
SHARED = REPO.parent / "shared"


@dataclass
class Row:
    """One line of the summary table."""

    benchmark: str
    result: str
    goal: str = "—"
    passed: bool | None = None
    baseline: str = "—"
    ratio: str = "—"


@dataclass
class Result:
    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    method: str = ""
    details: list[str] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Result:
        rows = [Row(**r) for r in data.pop("rows")]
        return cls(rows=rows, **data)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def median(values: list[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def peak_rss_mb() -> float:
    """Peak resident set size of this process (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def ms(seconds: float) -> str:
    """Milliseconds with sensible precision."""
    value = seconds * 1000
    if value >= 100:
        return f"{value:.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    if value >= 1:
        return f"{value:.2f} ms"
    return f"{value:.3f} ms"


def us(seconds: float) -> str:
    value = seconds * 1e6
    return f"{value:.0f} µs" if value >= 10 else f"{value:.1f} µs"


def short_time(seconds: float) -> str:
    return us(seconds) if seconds < 1e-3 else ms(seconds)


def rate(count: float, seconds: float) -> str:
    per = count / seconds if seconds > 0 else float("inf")
    if per >= 1e6:
        return f"{per / 1e6:.2f} M"
    if per >= 1e3:
        return f"{per / 1e3:.1f} k"
    return f"{per:.1f}"


def mb(nbytes: float) -> str:
    return f"{nbytes / 1e6:.1f} MB"


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}×" if base > 0 else "—"


def log(message: str) -> None:
    """Progress on stderr; stdout of a child process carries its JSON result."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def cache_dir() -> Path:
    CACHE.mkdir(exist_ok=True)
    return CACHE


def scratch_parent() -> Path | None:
    """Where temporary folders go: $BENCH_TMP if set, else the system default."""
    env = os.environ.get("BENCH_TMP")
    return Path(env) if env else None


_LAUNCH = (
    "import os, sys\n"
    "pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ)\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "print(usage.ru_maxrss, file=sys.stderr)\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def run_own_peak(argv: list[str], **kwargs: Any) -> tuple[str, float]:
    """Runs a program to the end; its stdout and its own peak RSS in MiB.

    A child's peak RSS keeps what it had before its exec, and a child forked
    from a benchmark (hundreds of MB after its set-up) starts with all of it:
    so a small launcher starts the program and reads its peak from wait4.
    """
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", _LAUNCH, *argv], check=True, capture_output=True, text=True,
        **kwargs,
    )  # fmt: skip
    peak_kb = int(done.stderr.strip().splitlines()[-1])
    return done.stdout, peak_kb / 1024
