"""One function per figure of the review, each plain SQL over a phase's slice.

They read `phase_analytics.db` (see slice.py), which holds only the phase's
rows, so none of them filters by phase: the report's numbers are exactly what
anyone gets by querying the uploaded slice. Token usage is already one row per
(message id, request id) — the table's primary key, which the importer fills
with INSERT OR IGNORE because a Claude Code transcript repeats one API
response's usage on each of its content lines — so summing rows is summing
responses. Tool call durations below zero (clock skew between the lines that
open and close a call) are left out of latency figures.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable

from core.local.pricing import PriceTable
from core.metrics.histogram import Histogram
from core.redact import redact_text
from core.review.models import (
    AgentPerformance,
    CacheRate,
    ErrorGroup,
    Latency,
    Overview,
    SlowCall,
    SlowSession,
    StorageTier,
    TokenCost,
    ToolUsage,
)
from core.review.percentiles import percentile

UNKNOWN = "(unknown)"
EXAMPLE_CHARS = 600
SIGNATURE_CHARS = 160

_TIMED_CALLS = """SELECT tc.name AS tool, COALESCE(s.agent, '(unknown)') AS agent,
  tc.duration_ms AS ms, COALESCE(tc.is_error, 0) AS failed
FROM tool_calls tc LEFT JOIN sessions s ON s.id = tc.session_id
WHERE tc.name != '' AND tc.duration_ms IS NOT NULL AND tc.duration_ms >= 0"""

_SESSION_SECONDS = "(julianday(ended_at) - julianday(started_at)) * 86400.0"

_USAGE_BY = """SELECT {key} AS k, u.model AS model, count(*) AS responses,
  sum(u.input_tokens) AS input_tokens, sum(u.output_tokens) AS output_tokens,
  sum(u.cache_write_tokens) AS cache_write_tokens, sum(u.cache_read_tokens) AS cache_read_tokens
FROM usage u LEFT JOIN sessions s ON s.id = u.session_id
GROUP BY k, u.model"""

_USAGE_KEYS = {
    "model": "COALESCE(u.model, '(unknown)')",
    "agent": "COALESCE(s.agent, '(unknown)')",
    "session": "u.session_id",
    "day": "COALESCE(substr(u.ts, 1, 10), '(unknown)')",
}


# overview -----------------------------------------------------------------------------------
def overview(conn: sqlite3.Connection, phase: str, prices: PriceTable) -> Overview:
    row = conn.execute(
        "SELECT status, created_at, closed_at FROM phases WHERE name = ?", (phase,)
    ).fetchone()
    counts = conn.execute(
        """SELECT count(*), COALESCE(sum(is_subagent), 0), min(started_at), max(ended_at),
                  COALESCE(sum(NOT EXISTS (SELECT 1 FROM usage u WHERE u.session_id = s.id)), 0)
           FROM sessions s"""
    ).fetchone()
    messages = conn.execute(
        "SELECT count(*), COALESCE(sum(parse_error IS NOT NULL), 0) FROM messages"
    ).fetchone()
    totals = _sum_costs(conn.execute(_USAGE_BY.format(key="'all'")).fetchall(), prices)
    total = totals.get("all") or TokenCost(
        key="all",
        responses=0,
        input_tokens=0,
        output_tokens=0,
        cache_write_tokens=0,
        cache_read_tokens=0,
        cost_usd=0.0,
    )
    return Overview(
        phase=phase,
        status=str(row[0]) if row else "unknown",
        created_at=row[1] if row else None,
        closed_at=row[2] if row else None,
        sessions=int(counts[0]),
        subagent_sessions=int(counts[1]),
        first_activity=counts[2],
        last_activity=counts[3],
        sessions_without_usage=int(counts[4]),
        messages=int(messages[0]),
        unparsable_lines=int(messages[1]),
        responses=total.responses,
        input_tokens=total.input_tokens,
        output_tokens=total.output_tokens,
        cache_write_tokens=total.cache_write_tokens,
        cache_read_tokens=total.cache_read_tokens,
        cost_usd=total.cost_usd,
        unpriced_responses=total.unpriced_responses,
    )


# latency ------------------------------------------------------------------------------------
def _latency(kind: str, name: str, samples: list[float], errors: int) -> Latency:
    samples.sort()
    return Latency(
        kind=kind,
        name=name,
        count=len(samples),
        errors=errors,
        avg_ms=sum(samples) / len(samples) if samples else None,
        p50_ms=percentile(samples, 50),
        p95_ms=percentile(samples, 95),
        p99_ms=percentile(samples, 99),
        max_ms=samples[-1] if samples else None,
    )


def _grouped_latency(conn: sqlite3.Connection, kind: str, column: str) -> list[Latency]:
    samples: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    for r in conn.execute(_TIMED_CALLS):
        samples[r[column]].append(float(r["ms"]))
        errors[r[column]] += int(r["failed"])
    out = [_latency(kind, name, values, errors[name]) for name, values in samples.items()]
    return sorted(out, key=lambda x: (-x.count, x.name))


def tool_durations(conn: sqlite3.Connection) -> list[float]:
    """Every timed tool call, in milliseconds: the latency chart's samples."""
    return [float(r["ms"]) for r in conn.execute(_TIMED_CALLS)]


def tool_latency(conn: sqlite3.Connection) -> list[Latency]:
    """Per tool, over its timed calls (from the call to its result in the transcript)."""
    return _grouped_latency(conn, "tool", "tool")


def agent_latency(conn: sqlite3.Connection) -> list[Latency]:
    """Per agent, over the timed tool calls of its sessions."""
    return _grouped_latency(conn, "agent", "agent")


def operation_latency(conn: sqlite3.Connection) -> list[Latency]:
    """Per store or DB operation, from the metrics persisted during the phase.

    Minute rows where they still exist, the hour's row where its minutes were
    pruned, so no observation counts twice."""
    rows = conn.execute(
        """SELECT op, tier, errors, hist FROM metrics m WHERE resolution = '1m'
           UNION ALL
           SELECT op, tier, errors, hist FROM metrics h WHERE resolution = '1h'
             AND NOT EXISTS (SELECT 1 FROM metrics m WHERE m.resolution = '1m'
               AND m.op = h.op AND m.tier = h.tier AND substr(m.ts, 1, 13) = substr(h.ts, 1, 13))"""
    ).fetchall()
    hists: dict[str, Histogram] = defaultdict(Histogram)
    errors: dict[str, int] = defaultdict(int)
    for r in rows:
        key = f"{r['op']}@{r['tier']}"
        hists[key].merge(_histogram(r["hist"]))
        errors[key] += int(r["errors"])
    out = []
    for key, h in hists.items():
        if not h.count:
            continue
        ms = [
            None if v is None else v * 1000.0
            for v in (h.mean, h.quantile(0.5), h.quantile(0.95), h.quantile(0.99))
        ]
        out.append(
            Latency(
                kind="operation",
                name=key,
                count=h.count,
                errors=errors[key],
                avg_ms=ms[0],
                p50_ms=ms[1],
                p95_ms=ms[2],
                p99_ms=ms[3],
                max_ms=h.max * 1000.0,
                exact=False,
            )
        )
    return sorted(out, key=lambda x: (-x.count, x.name))


def _histogram(text: str | None) -> Histogram:
    import orjson

    try:
        data = orjson.loads(text or "{}")
    except orjson.JSONDecodeError:
        return Histogram()
    return Histogram.from_sparse(data) if isinstance(data, dict) else Histogram()


# bottlenecks --------------------------------------------------------------------------------
def slowest_calls(conn: sqlite3.Connection, limit: int = 10) -> list[SlowCall]:
    rows = conn.execute(
        """SELECT session_id, name, duration_ms, started_at FROM tool_calls
           WHERE name != '' AND duration_ms IS NOT NULL AND duration_ms >= 0
           ORDER BY duration_ms DESC, id LIMIT ?""",
        (limit,),
    ).fetchall()
    return [
        SlowCall(session_id=r[0], tool=r[1], duration_ms=float(r[2]), started_at=r[3]) for r in rows
    ]


def slowest_sessions(conn: sqlite3.Connection, limit: int = 10) -> list[SlowSession]:
    rows = conn.execute(
        f"""SELECT s.id, s.agent, s.title, {_SESSION_SECONDS} AS secs, s.message_count,
              (SELECT COALESCE(sum(duration_ms), 0) FROM tool_calls tc
               WHERE tc.session_id = s.id AND tc.duration_ms >= 0) AS tool_ms
            FROM sessions s WHERE started_at IS NOT NULL AND ended_at IS NOT NULL
            ORDER BY secs DESC, s.id LIMIT ?""",
        (limit,),
    ).fetchall()
    return [
        SlowSession(
            session_id=r["id"],
            agent=r["agent"],
            title=r["title"],
            duration_s=float(r["secs"]),
            tool_time_s=float(r["tool_ms"]) / 1000.0,
            messages=int(r["message_count"]),
        )
        for r in rows
    ]


# errors -------------------------------------------------------------------------------------
def signature(text: str | None) -> str:
    """The first non-empty line: what two occurrences of one error share."""
    for line in (text or "").splitlines():
        line = line.strip()
        if line:
            return redact_text(line)[:SIGNATURE_CHARS]
    return "(no message)"


def top_errors(conn: sqlite3.Connection, limit: int = 10) -> list[ErrorGroup]:
    """Failed tool calls grouped by tool and first line, and lines the import could not
    parse grouped by reason. Examples pass through redaction once more: a DB imported
    by an older version may hold an unredacted preview."""
    items: list[tuple[str, str, str | None, str, str]] = []
    for r in conn.execute(
        """SELECT name, output, COALESCE(finished_at, started_at), session_id FROM tool_calls
           WHERE is_error = 1 ORDER BY COALESCE(finished_at, started_at), id"""
    ):
        items.append(("tool", r[0] or UNKNOWN, r[2], r[1] or "", r[3]))
    for r in conn.execute(
        "SELECT parse_error, ts, session_id, seq FROM messages WHERE parse_error IS NOT NULL "
        "ORDER BY ts, id"
    ):
        items.append(("import", "unparsable line", r[1], f"{r[0]} (line {r[3] + 1})", r[2]))
    groups: dict[tuple[str, str, str], list[tuple[str | None, str, str]]] = defaultdict(list)
    for origin, name, ts, text, session in items:
        sig = signature(text if origin == "tool" else text.rsplit(" (line ", 1)[0])
        groups[(origin, name, sig)].append((ts, text, session))
    out = []
    for (origin, name, sig), seen in groups.items():
        stamps = [ts for ts, _, _ in seen if ts]
        _, example, session = seen[0]
        out.append(
            ErrorGroup(
                origin=origin,
                name=name,
                signature=sig,
                count=len(seen),
                first_seen=min(stamps) if stamps else None,
                last_seen=max(stamps) if stamps else None,
                example=_clip(redact_text(example)),
                example_session=session,
            )
        )
    out.sort(key=lambda g: (-g.count, g.first_seen or "", g.name, g.signature))
    return out[:limit]


def _clip(text: str) -> str:
    return text if len(text) <= EXAMPLE_CHARS else text[:EXAMPLE_CHARS] + " …"


# tools and agents ---------------------------------------------------------------------------
def tool_usage(conn: sqlite3.Connection) -> list[ToolUsage]:
    rows = conn.execute(
        """SELECT name, count(*) AS calls, COALESCE(sum(is_error = 1), 0) AS errors,
                  count(CASE WHEN is_error IS NOT NULL OR finished_at IS NOT NULL THEN 1 END)
                    AS known,
                  COALESCE(sum(CASE WHEN duration_ms >= 0 THEN duration_ms END), 0) AS ms
           FROM tool_calls WHERE name != '' GROUP BY name"""
    ).fetchall()
    total = sum(float(r["ms"]) for r in rows)
    out = [
        ToolUsage(
            tool=r["name"],
            calls=int(r["calls"]),
            errors=int(r["errors"]),
            success_rate=(1 - r["errors"] / r["known"]) if r["known"] else None,
            total_ms=float(r["ms"]),
            time_share=float(r["ms"]) / total if total else None,
        )
        for r in rows
    ]
    return sorted(out, key=lambda t: (-t.calls, t.tool))


def agent_performance(conn: sqlite3.Connection, prices: PriceTable) -> list[AgentPerformance]:
    """Per agent. A session is one task; success is the share of its tool calls that got
    a result (one the transcript does not mark as an error counts as a success) and did
    not fail."""
    sessions = conn.execute(
        f"""SELECT COALESCE(agent, '(unknown)') AS agent, count(*) AS n,
                   COALESCE(sum({_SESSION_SECONDS}), 0) AS secs, count({_SESSION_SECONDS}) AS timed
            FROM sessions GROUP BY 1"""
    ).fetchall()
    calls = {
        r[0]: (int(r[1]), int(r[2]), int(r[3]))
        for r in conn.execute(
            """SELECT COALESCE(s.agent, '(unknown)'), count(*), COALESCE(sum(tc.is_error = 1), 0),
                      count(CASE WHEN tc.is_error IS NOT NULL OR tc.finished_at IS NOT NULL
                                 THEN 1 END)
               FROM tool_calls tc LEFT JOIN sessions s ON s.id = tc.session_id
               WHERE tc.name != '' GROUP BY 1"""
        )
    }
    costs = _sum_costs(conn.execute(_USAGE_BY.format(key=_USAGE_KEYS["agent"])).fetchall(), prices)
    out = []
    for r in sessions:
        n_calls, failed, known = calls.get(r["agent"], (0, 0, 0))
        cost = costs.get(r["agent"])
        tokens = (
            0
            if cost is None
            else (
                cost.input_tokens
                + cost.output_tokens
                + cost.cache_write_tokens
                + cost.cache_read_tokens
            )
        )
        out.append(
            AgentPerformance(
                agent=r["agent"],
                sessions=int(r["n"]),
                total_duration_s=float(r["secs"]),
                avg_duration_s=float(r["secs"]) / r["timed"] if r["timed"] else None,
                tool_calls=n_calls,
                tool_errors=failed,
                success_rate=1 - failed / known if known else None,
                tokens=tokens,
                tokens_per_session=tokens / r["n"] if r["n"] else None,
                cost_usd=0.0 if cost is None else cost.cost_usd,
            )
        )
    return sorted(out, key=lambda a: (-a.sessions, a.agent))


# tokens and cost ----------------------------------------------------------------------------
def cost_by(conn: sqlite3.Connection, prices: PriceTable, key: str) -> list[TokenCost]:
    """Tokens and cost per model, agent, session or day; priced per model, then summed."""
    if key not in _USAGE_KEYS:
        raise ValueError(f"cannot group usage by {key!r}")
    rows = conn.execute(_USAGE_BY.format(key=_USAGE_KEYS[key])).fetchall()
    groups = _sum_costs(rows, prices)
    order = (lambda c: c.key) if key == "day" else (lambda c: (-c.cost_usd, -c.responses, c.key))
    return sorted(groups.values(), key=order)


def _sum_costs(rows: Iterable[sqlite3.Row], prices: PriceTable) -> dict[str, TokenCost]:
    groups: dict[str, TokenCost] = {}
    for r in rows:
        g = groups.get(r["k"]) or TokenCost(
            key=r["k"],
            responses=0,
            input_tokens=0,
            output_tokens=0,
            cache_write_tokens=0,
            cache_read_tokens=0,
            cost_usd=0.0,
        )
        g.responses += int(r["responses"])
        g.input_tokens += int(r["input_tokens"])
        g.output_tokens += int(r["output_tokens"])
        g.cache_write_tokens += int(r["cache_write_tokens"])
        g.cache_read_tokens += int(r["cache_read_tokens"])
        g.cost_usd += prices.cost(
            r["model"],
            int(r["input_tokens"]),
            int(r["output_tokens"]),
            int(r["cache_write_tokens"]),
            int(r["cache_read_tokens"]),
        )
        if prices.find(r["model"]) is None:
            g.unpriced_responses += int(r["responses"])
        groups[r["k"]] = g
    return groups


# storage and caches -------------------------------------------------------------------------
def storage(conn: sqlite3.Connection) -> list[StorageTier]:
    """Bytes per tier: the source files (local), each session's latest backup per target,
    and the phase's latest verified archive per target."""
    out: list[StorageTier] = []
    local = conn.execute(
        "SELECT count(DISTINCT session_id), COALESCE(sum(size), 0) FROM sources "
        "WHERE session_id IS NOT NULL"
    ).fetchone()
    if local[0]:
        out.append(
            StorageTier(
                tier="local",
                target="workspace",
                sessions=int(local[0]),
                raw_bytes=int(local[1]),
                stored_bytes=int(local[1]),
            )
        )
    for r in conn.execute(
        """SELECT target, count(*), sum(raw_bytes), sum(stored_bytes) FROM backups
           WHERE id IN (SELECT max(id) FROM backups GROUP BY session_id, target)
           GROUP BY target ORDER BY target"""
    ):
        out.append(_tier("backup", r))
    for r in conn.execute(
        """SELECT target, sessions, raw_bytes, stored_bytes FROM archives
           WHERE id IN (SELECT max(id) FROM archives WHERE verify_status = 'ok' GROUP BY target)
           ORDER BY target"""
    ):
        out.append(_tier("archive", r))
    return out


def _tier(tier: str, r: sqlite3.Row) -> StorageTier:
    raw, stored = int(r[2] or 0), int(r[3] or 0)
    return StorageTier(
        tier=tier,
        target=r[0],
        sessions=int(r[1]),
        raw_bytes=raw,
        stored_bytes=stored,
        ratio=raw / stored if stored else None,
    )


def prompt_cache(conn: sqlite3.Connection) -> list[CacheRate]:
    """Per model: the share of prompt tokens read from the provider's prompt cache."""
    rows = conn.execute(
        """SELECT COALESCE(model, '(unknown)'), sum(cache_read_tokens),
                  sum(input_tokens + cache_write_tokens + cache_read_tokens)
           FROM usage GROUP BY 1 ORDER BY 1"""
    ).fetchall()
    return [
        CacheRate(
            name=r[0],
            basis="prompt tokens",
            hits=int(r[1]),
            lookups=int(r[2]),
            hit_rate=r[1] / r[2] if r[2] else None,
        )
        for r in rows
    ]
