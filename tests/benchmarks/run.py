"""`make bench`: run every benchmark and rewrite docs/BENCHMARKS.md.

    python -m tests.benchmarks.run --out docs/BENCHMARKS.md [--only a,b] [--quick]

Each benchmark runs in a child process of its own (first its `prepare`, if
any, then `run`), so one benchmark's memory, caches and threads never colour
another's figures, and peak RSS is measured per benchmark. A child prints its
result as one JSON line on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

from tests.benchmarks.measure import Result, Row, log, peak_rss_mb
from tests.benchmarks.report import render

BENCHMARKS = (
    "activity_log",
    "snapshots",
    "batch_writer",
    "lookup",
    "import",
    "search",
    "hook",
    "backup",
    "drive",
    "archive",
    "daemon",
    "cache",
    "recover",
    "gui",
    "package",
)


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"tests.benchmarks.bench_{name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.run", description=__doc__)
    parser.add_argument("--out", type=Path, help="markdown file to (re)write")
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--phase", choices=("prepare", "run"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        return _child(args.child, args.phase or "run", args.quick)

    names = list(BENCHMARKS)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in BENCHMARKS]
        if unknown:
            parser.error(f"unknown benchmark(s) {unknown}; known: {', '.join(BENCHMARKS)}")
    started = time.perf_counter()
    results = [_in_child(name, args.quick) for name in names]
    total = time.perf_counter() - started
    text = render(results, quick=args.quick, total_seconds=total)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        log(f"wrote {args.out} ({total / 60:.1f} min)")
    else:
        print(text)
    failed = [r.name for r in results if any(row.result == "ERROR" for row in r.rows)]
    if failed:
        log(f"benchmarks that crashed: {', '.join(failed)}")
        return 1
    return 0


def _in_child(name: str, quick: bool) -> Result:
    module = _module(name)
    base = [sys.executable, "-m", "tests.benchmarks.run", "--child", name]
    if quick:
        base.append("--quick")
    started = time.perf_counter()
    try:
        if hasattr(module, "prepare"):
            log(f"{name}: preparing data")
            subprocess.run([*base, "--phase", "prepare"], check=True)
        log(f"{name}: measuring")
        done = subprocess.run(
            [*base, "--phase", "run"], check=True, stdout=subprocess.PIPE, text=True
        )
        result = Result.from_json(json.loads(done.stdout.strip().splitlines()[-1]))
    except (subprocess.CalledProcessError, ValueError, IndexError) as exc:
        log(f"{name}: FAILED ({exc})")
        result = Result(name, getattr(module, "TITLE", name))
        result.rows.append(Row(getattr(module, "TITLE", name), "ERROR", passed=False))
        result.details.append(f"The benchmark crashed: `{exc}`; see the run's stderr.")
    result.seconds = time.perf_counter() - started
    return result


def _child(name: str, phase: str, quick: bool) -> int:
    module = _module(name)
    if phase == "prepare":
        module.prepare(quick)
        return 0
    result: Result = module.run(quick)
    result.peak_rss_mb = peak_rss_mb()
    print(json.dumps(result.to_json()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
