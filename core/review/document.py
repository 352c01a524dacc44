"""The report's content once, as blocks both renderers turn into their format.

Markdown and HTML then cannot drift apart in what they say: the renderers
only decide how a paragraph, a table, a chart or a piece of advice looks, and
where text needs escaping. Cells are plain text here, never markup.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.review.models import Latency, PhaseReview, Recommendation, TokenCost

TOP_SESSIONS = 15


@dataclass(frozen=True, slots=True)
class Paragraph:
    text: str


@dataclass(frozen=True, slots=True)
class TableBlock:
    headers: list[str]
    rows: list[list[str]]
    numeric: frozenset[int] = frozenset()
    caption: str | None = None


@dataclass(frozen=True, slots=True)
class Chart:
    name: str
    alt: str


@dataclass(frozen=True, slots=True)
class Advice:
    rec: Recommendation


Block = Paragraph | TableBlock | Chart | Advice


@dataclass(slots=True)
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


# formatting -------------------------------------------------------------------------------
def ms(v: float | None) -> str:
    if v is None:
        return "–"
    if v >= 7_200_000:
        return f"{v / 3_600_000:.1f} h"
    if v >= 60_000:
        return f"{v / 60_000:.1f} min"
    return f"{v / 1000:.2f} s" if v >= 999.5 else f"{v:.0f} ms"


def secs(v: float | None) -> str:
    return "–" if v is None else ms(v * 1000.0)


def pct(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:.1f} %"


def usd(v: float) -> str:
    return f"${v:,.4f}" if 0 < v < 0.01 else f"${v:,.2f}"


def num(v: float | None) -> str:
    return "–" if v is None else f"{v:,.0f}"


def size(n: int) -> str:
    x = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if x < 1000:
            return f"{x:.0f} {unit}" if unit == "B" else f"{x:.1f} {unit}"
        x /= 1000
    return f"{x:.1f} TB"


def text(v: str | None) -> str:
    return "" if v is None else v


def title(v: str | None, limit: int = 80) -> str:
    """A session title is a prompt's first line: long, and only there to recognise it."""
    v = " ".join((v or "").split())
    return v if len(v) <= limit else v[: limit - 1] + "…"


# building -----------------------------------------------------------------------------------
def build(review: PhaseReview, charts: set[str]) -> tuple[str, list[Section]]:
    """(title, sections) for the review; `charts` are the chart files that were drawn."""
    o = review.overview
    sections = [_overview(review)]
    if review.recommendations:
        sections.append(Section("Recommendations", [Advice(r) for r in review.recommendations]))
    sections += [
        _latency(review, charts),
        _bottlenecks(review),
        _errors(review),
        _tools(review, charts),
        _agents(review),
        _cost(review, charts),
        _storage(review),
    ]
    return f"Phase review — {o.phase}", sections


def _overview(r: PhaseReview) -> Section:
    o = r.overview
    period = f"{text(o.first_activity) or '?'} → {text(o.last_activity) or '?'}"
    rows = [
        ["Status", o.status + (f" (closed {o.closed_at})" if o.closed_at else "")],
        ["Activity", period if o.sessions else "no sessions"],
        ["Sessions", f"{o.sessions} ({o.subagent_sessions} subagent)"],
        [
            "Messages",
            f"{o.messages:,}"
            + (f" ({o.unparsable_lines} unparsable)" if o.unparsable_lines else ""),
        ],
        ["Responses with usage", f"{o.responses:,}"],
        ["Tokens in / out", f"{o.input_tokens:,} / {o.output_tokens:,}"],
        ["Cache write / read", f"{o.cache_write_tokens:,} / {o.cache_read_tokens:,}"],
        [
            "Cost",
            usd(o.cost_usd)
            + (f" ({o.unpriced_responses} responses unpriced)" if o.unpriced_responses else ""),
        ],
        ["Sessions without usage", str(o.sessions_without_usage)],
    ]
    blocks: list[Block] = []
    if not o.sessions:
        blocks.append(Paragraph("This phase has no sessions yet: every figure below is empty."))
    blocks.append(TableBlock(["", ""], rows))
    blocks.append(
        Paragraph(
            f"Generated {r.generated_at} by Tierkeeper {r.tool_version}. "
            f"Percentiles: {r.percentile_method}."
        )
    )
    return Section("Overview", blocks)


def _latency_table(rows: list[Latency], caption: str) -> TableBlock:
    return TableBlock(
        ["name", "count", "errors", "avg", "p50", "p95", "p99", "max"],
        [
            [
                x.name,
                str(x.count),
                str(x.errors),
                ms(x.avg_ms),
                ms(x.p50_ms),
                ms(x.p95_ms),
                ms(x.p99_ms),
                ms(x.max_ms),
            ]
            for x in rows
        ],
        frozenset(range(1, 8)),
        caption,
    )


def _latency(r: PhaseReview, charts: set[str]) -> Section:
    s = Section("Latency")
    for kind, caption in (
        ("tool", "Per tool (tool call to its result)"),
        ("agent", "Per agent (its tool calls)"),
        ("operation", "Per store and DB operation (from persisted metrics)"),
    ):
        rows = [x for x in r.latency if x.kind == kind]
        if rows:
            s.blocks.append(_latency_table(rows, caption))
    if not s.blocks:
        s.blocks.append(Paragraph("No timed tool calls or operations in this phase."))
    if "latency_distribution.png" in charts:
        s.blocks.append(Chart("latency_distribution.png", "Distribution of tool call durations"))
    return s


def _bottlenecks(r: PhaseReview) -> Section:
    s = Section("Bottlenecks")
    if r.slowest_calls:
        s.blocks.append(
            TableBlock(
                ["tool", "duration", "session", "started"],
                [
                    [c.tool, ms(c.duration_ms), c.session_id, text(c.started_at)]
                    for c in r.slowest_calls
                ],
                frozenset({1}),
                "Slowest tool calls",
            )
        )
    if r.slowest_sessions:
        s.blocks.append(
            TableBlock(
                ["session", "agent", "duration", "tool time", "messages", "title"],
                [
                    [
                        x.session_id,
                        text(x.agent),
                        secs(x.duration_s),
                        secs(x.tool_time_s),
                        str(x.messages),
                        title(x.title),
                    ]
                    for x in r.slowest_sessions
                ],
                frozenset({2, 3, 4}),
                "Longest sessions",
            )
        )
    if not s.blocks:
        s.blocks.append(Paragraph("Nothing timed in this phase."))
    return s


def _errors(r: PhaseReview) -> Section:
    if not r.errors:
        return Section("Top errors", [Paragraph("No failed tool calls and no unparsable lines.")])
    table = TableBlock(
        ["where", "error", "count", "first seen", "last seen"],
        [
            [e.name, e.signature, str(e.count), text(e.first_seen), text(e.last_seen)]
            for e in r.errors
        ],
        frozenset({2}),
    )
    examples = TableBlock(
        ["where", "session", "example"],
        [[e.name, e.example_session, e.example] for e in r.errors],
        caption="An example of each",
    )
    return Section("Top errors", [table, examples])


def _tools(r: PhaseReview, charts: set[str]) -> Section:
    if not r.tools:
        return Section("Tool usage", [Paragraph("No tool calls in this phase.")])
    s = Section(
        "Tool usage",
        [
            TableBlock(
                ["tool", "calls", "failed", "success", "time", "time share"],
                [
                    [
                        t.tool,
                        str(t.calls),
                        str(t.errors),
                        pct(t.success_rate),
                        ms(t.total_ms),
                        pct(t.time_share),
                    ]
                    for t in r.tools
                ],
                frozenset(range(1, 6)),
            )
        ],
    )
    if "tool_usage.png" in charts:
        s.blocks.append(Chart("tool_usage.png", "Calls per tool, succeeded and failed"))
    return s


def _agents(r: PhaseReview) -> Section:
    if not r.agents:
        return Section("Agent performance", [Paragraph("No sessions in this phase.")])
    return Section(
        "Agent performance",
        [
            TableBlock(
                [
                    "agent",
                    "sessions",
                    "total time",
                    "avg session",
                    "tool calls",
                    "success",
                    "tokens per session",
                    "cost",
                ],
                [
                    [
                        a.agent,
                        str(a.sessions),
                        secs(a.total_duration_s),
                        secs(a.avg_duration_s),
                        str(a.tool_calls),
                        pct(a.success_rate),
                        num(a.tokens_per_session),
                        usd(a.cost_usd),
                    ]
                    for a in r.agents
                ],
                frozenset(range(1, 8)),
            ),
            Paragraph(
                "A session is one task; success is the share of its tool calls that got a "
                "result and did not fail; tokens count input, output and cache traffic."
            ),
        ],
    )


def _cost_table(rows: list[TokenCost], key: str, caption: str) -> TableBlock:
    return TableBlock(
        [key, "responses", "input", "output", "cache write", "cache read", "cost"],
        [
            [
                c.key,
                str(c.responses),
                f"{c.input_tokens:,}",
                f"{c.output_tokens:,}",
                f"{c.cache_write_tokens:,}",
                f"{c.cache_read_tokens:,}",
                usd(c.cost_usd) + (" *" if c.unpriced_responses else ""),
            ]
            for c in rows
        ],
        frozenset(range(1, 7)),
        caption,
    )


def _cost(r: PhaseReview, charts: set[str]) -> Section:
    s = Section("Tokens and cost")
    if not r.cost_by_model:
        s.blocks.append(Paragraph("No token usage recorded in this phase."))
        return s
    s.blocks.append(
        Paragraph(
            "Counted once per API response (message id, request id); "
            "* marks rows with models missing from the price table."
        )
    )
    s.blocks.append(_cost_table(r.cost_by_model, "model", "Per model"))
    s.blocks.append(_cost_table(r.cost_by_agent, "agent", "Per agent"))
    top = r.cost_by_session[:TOP_SESSIONS]
    caption = "Per session" + (
        f" (top {TOP_SESSIONS} of {len(r.cost_by_session)})"
        if len(r.cost_by_session) > TOP_SESSIONS
        else ""
    )
    s.blocks.append(_cost_table(top, "session", caption))
    if "cost_over_time.png" in charts:
        s.blocks.append(Chart("cost_over_time.png", "Cost per day and cumulative"))
    return s


def _storage(r: PhaseReview) -> Section:
    s = Section("Storage")
    if r.storage:
        s.blocks.append(
            TableBlock(
                ["tier", "where", "sessions", "raw", "stored", "ratio"],
                [
                    [
                        t.tier,
                        t.target,
                        str(t.sessions),
                        size(t.raw_bytes),
                        size(t.stored_bytes),
                        "–" if t.ratio is None else f"{t.ratio:.2f}×",
                    ]
                    for t in r.storage
                ],
                frozenset({2, 3, 4, 5}),
                "Bytes per tier",
            )
        )
    if r.cache:
        s.blocks.append(
            TableBlock(
                ["cache", "counted", "hits", "lookups", "hit rate"],
                [
                    [c.name, c.basis, f"{c.hits:,}", f"{c.lookups:,}", pct(c.hit_rate)]
                    for c in r.cache
                ],
                frozenset({2, 3, 4}),
                "Cache hit rates",
            )
        )
    if not s.blocks:
        s.blocks.append(Paragraph("Nothing stored for this phase yet."))
    return s
