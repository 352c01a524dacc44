"""Token, cost and activity totals grouped the ways people ask for them."""

from __future__ import annotations

from typing import Any

from core.errors import BadInputError
from core.local.db.database import Database
from core.local.pricing import PriceTable

GROUPS = ("model", "agent", "project", "session", "day", "tool")

_USAGE_SQL = """
SELECT {key} AS k, u.model AS model, count(*) AS responses,
       sum(u.input_tokens) AS input_tokens, sum(u.output_tokens) AS output_tokens,
       sum(u.cache_write_tokens) AS cache_write_tokens,
       sum(u.cache_read_tokens) AS cache_read_tokens
FROM usage u {join}
GROUP BY k, u.model
"""

_KEYS = {
    "model": ("u.model", ""),
    "agent": ("s.agent", "LEFT JOIN sessions s ON s.id = u.session_id"),
    "project": ("s.project", "LEFT JOIN sessions s ON s.id = u.session_id"),
    "session": ("u.session_id", ""),
    "day": ("substr(u.ts, 1, 10)", ""),
}


async def usage_stats(db: Database, by: str, prices: PriceTable) -> list[dict[str, Any]]:
    """Rows per group with tokens and cost; cost is priced per model, then summed."""
    if by == "tool":
        return await tool_stats(db)
    if by not in _KEYS:
        raise BadInputError(f"Cannot group by {by!r}", hint=f"use one of: {', '.join(GROUPS)}")
    key, join = _KEYS[by]
    rows = await db.fetchall(_USAGE_SQL.format(key=key, join=join))
    groups: dict[str, dict[str, Any]] = {}
    for r in rows:
        name = r["k"] if r["k"] is not None else "(unknown)"
        g = groups.setdefault(
            name,
            {
                by: name,
                "responses": 0,
                "input_tokens": 0,
                "output_tokens": 0,
                "cache_write_tokens": 0,
                "cache_read_tokens": 0,
                "cost_usd": 0.0,
                "unpriced_responses": 0,
            },
        )
        for field in ("responses", "input_tokens", "output_tokens"):
            g[field] += r[field]
        g["cache_write_tokens"] += r["cache_write_tokens"]
        g["cache_read_tokens"] += r["cache_read_tokens"]
        if prices.find(r["model"]) is None:
            g["unpriced_responses"] += r["responses"]
        g["cost_usd"] += prices.cost(
            r["model"],
            r["input_tokens"],
            r["output_tokens"],
            r["cache_write_tokens"],
            r["cache_read_tokens"],
        )
    return sorted(groups.values(), key=lambda g: (-g["cost_usd"], str(g[by])))


async def tool_stats(db: Database) -> list[dict[str, Any]]:
    rows = await db.fetchall(
        """SELECT name, count(*) AS calls, sum(COALESCE(is_error, 0)) AS errors,
                  avg(duration_ms) AS avg_ms, max(duration_ms) AS max_ms
           FROM tool_calls WHERE name != '' GROUP BY name ORDER BY calls DESC, name"""
    )
    return [
        {
            "tool": r["name"],
            "calls": r["calls"],
            "errors": r["errors"],
            "avg_ms": None if r["avg_ms"] is None else round(r["avg_ms"], 1),
            "max_ms": r["max_ms"],
        }
        for r in rows
    ]


async def session_costs(db: Database, prices: PriceTable) -> dict[str, dict[str, Any]]:
    rows = await db.fetchall(_USAGE_SQL.format(key="u.session_id", join=""))
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        g = out.setdefault(
            r["k"],
            {"input_tokens": 0, "output_tokens": 0, "cache_write_tokens": 0,
             "cache_read_tokens": 0, "cost_usd": 0.0},
        )  # fmt: skip
        for field in ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens"):
            g[field] += r[field]
        g["cost_usd"] += prices.cost(
            r["model"], r["input_tokens"], r["output_tokens"], r["cache_write_tokens"],
            r["cache_read_tokens"],
        )  # fmt: skip
    return out
