"""The review's charts as PNG bytes, drawn with matplotlib's Agg canvas.

A `Figure` on an Agg canvas, not pyplot: no global state and no GUI backend,
so it is safe in a worker thread of a service that may also host a Qt window.
PNG metadata is pinned so the same figures give the same bytes, and the
metadata file's checksums stay stable across re-runs. A chart with nothing to
draw is left out rather than drawn empty.
"""

from __future__ import annotations

import io
import math

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from core.review.models import PhaseReview
from core.review.percentiles import percentile

SIZE = (7.5, 3.6)
DPI = 100
TOP_TOOLS = 12


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def latency_distribution(durations_ms: list[float]) -> bytes | None:
    """All timed tool calls on a log axis, with the percentiles the report quotes."""
    values = sorted(max(v, 1.0) for v in durations_ms)
    if not values:
        return None
    fig = Figure(figsize=SIZE, layout="tight")
    ax = fig.add_subplot()
    lo, hi = math.log10(values[0]), math.log10(values[-1])
    if hi - lo < 0.5:
        lo, hi = lo - 0.25, hi + 0.25
    edges = [10 ** (lo + (hi - lo) * i / 40) for i in range(41)]
    ax.hist(values, bins=edges, color="#4c72b0")
    ax.set_xscale("log")
    for p, style in ((50, "-"), (95, "--"), (99, ":")):
        at = percentile(values, p)
        if at is not None:
            ax.axvline(at, color="#c44e52", linestyle=style, label=f"p{p} {at / 1000:.1f} s")
    ax.set_xlabel("tool call duration (ms, log scale)")
    ax.set_ylabel("calls")
    ax.set_title("Latency distribution")
    ax.legend(loc="upper right", fontsize="small")
    return _png(fig)


def cost_over_time(review: PhaseReview) -> bytes | None:
    days = [d for d in review.cost_by_day if d.key != "(unknown)"]
    if not days:
        return None
    fig = Figure(figsize=SIZE, layout="tight")
    ax = fig.add_subplot()
    labels = [d.key for d in days]
    daily = [d.cost_usd for d in days]
    running, total = [], 0.0
    for v in daily:
        total += v
        running.append(total)
    xs = list(range(len(days)))
    ax.bar(xs, daily, color="#8da0cb", label="per day")
    ax2 = ax.twinx()
    ax2.plot(xs, running, color="#c44e52", marker="o", markersize=3, label="cumulative")
    step = max(1, len(xs) // 10)
    ax.set_xticks(xs[::step], labels[::step], rotation=30, ha="right", fontsize="small")
    ax.set_ylabel("USD per day")
    ax2.set_ylabel("USD cumulative")
    ax.set_title("Cost over time")
    return _png(fig)


def tool_usage(review: PhaseReview) -> bytes | None:
    tools = review.tools[:TOP_TOOLS]
    if not tools:
        return None
    fig = Figure(figsize=SIZE, layout="tight")
    ax = fig.add_subplot()
    names = [t.tool for t in reversed(tools)]
    ok = [t.calls - t.errors for t in reversed(tools)]
    failed = [t.errors for t in reversed(tools)]
    ax.barh(names, ok, color="#55a868", label="succeeded")
    ax.barh(names, failed, left=ok, color="#c44e52", label="failed")
    ax.set_xlabel("calls")
    ax.set_title("Tool usage")
    ax.legend(loc="lower right", fontsize="small")
    return _png(fig)


def draw_all(review: PhaseReview, durations_ms: list[float]) -> dict[str, bytes]:
    """File name → PNG, for the charts that have data."""
    drawn = {
        "latency_distribution.png": latency_distribution(durations_ms),
        "cost_over_time.png": cost_over_time(review),
        "tool_usage.png": tool_usage(review),
    }
    return {name: png for name, png in drawn.items() if png is not None}
