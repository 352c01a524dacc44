"""Recommendations: fixed rules over the review's figures, each showing its evidence.

A rule fires only on numbers the report itself prints, and quotes them, so a
reader can check the advice against the tables instead of trusting it. The
thresholds are deliberately plain constants: a review is read once per phase,
and advice that fires on noise teaches people to skip the section.
"""

from __future__ import annotations

from collections.abc import Callable

from core.review.models import Evidence, PhaseReview, Recommendation

MIN_CALLS = 5
ERROR_RATE = 0.20
TAIL_MIN_CALLS = 10
TAIL_FACTOR = 5.0
TAIL_MIN_P95_MS = 10_000.0
COST_SHARE = 0.80
COST_MIN_USD = 1.0
CACHE_MIN_TOKENS = 100_000
CACHE_HIT_RATE = 0.50
AGENT_MIN_CALLS = 20
AGENT_SUCCESS = 0.70
OP_P95_MS = 2_000.0
RATIO_MIN = 2.0


def _pct(x: float) -> str:
    return f"{x * 100:.1f} %"


def _ms(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x / 1000:.1f} s" if x >= 999.5 else f"{x:.0f} ms"


def _ev(**items: str) -> list[Evidence]:
    return [Evidence(label=k.replace("_", " "), value=v) for k, v in items.items()]


def tool_errors(r: PhaseReview) -> list[Recommendation]:
    out = []
    for t in r.tools:
        if t.calls < MIN_CALLS or t.success_rate is None or 1 - t.success_rate < ERROR_RATE:
            continue
        top = next((e for e in r.errors if e.origin == "tool" and e.name == t.tool), None)
        ev = _ev(calls=str(t.calls), failed=str(t.errors), failure_rate=_pct(1 - t.success_rate))
        if top is not None:
            ev.append(Evidence(label="most frequent error", value=f"{top.signature} ×{top.count}"))
        out.append(
            Recommendation(
                rule="tool-errors",
                severity="warn",
                title=f"{t.tool} fails {_pct(1 - t.success_rate)} of its calls",
                detail="Look at the most frequent error below: a wrong path, a permission the "
                "agent lacks or a rejected edit repeats until its instructions change.",
                evidence=ev,
            )
        )
    return out


def slow_tail(r: PhaseReview) -> list[Recommendation]:
    out = []
    for lat in r.latency:
        if lat.kind != "tool" or lat.count < TAIL_MIN_CALLS:
            continue
        if lat.p50_ms is None or lat.p95_ms is None or lat.p95_ms < TAIL_MIN_P95_MS:
            continue
        if lat.p95_ms < TAIL_FACTOR * max(lat.p50_ms, 1.0):
            continue
        out.append(
            Recommendation(
                rule="slow-tail",
                severity="info",
                title=f"{lat.name} has a long tail: p95 {_ms(lat.p95_ms)}, "
                f"median {_ms(lat.p50_ms)}",
                detail="A few calls take most of the time (often a build, a test run or a wait "
                "for the user); the slowest calls below say which.",
                evidence=_ev(
                    calls=str(lat.count),
                    p50=_ms(lat.p50_ms),
                    p95=_ms(lat.p95_ms),
                    slowest=_ms(lat.max_ms),
                ),
            )
        )
    return out


def cost_concentration(r: PhaseReview) -> list[Recommendation]:
    total = r.overview.cost_usd
    if total < COST_MIN_USD or len(r.cost_by_model) < 2:
        return []
    top = r.cost_by_model[0]
    share = top.cost_usd / total
    if share < COST_SHARE:
        return []
    return [
        Recommendation(
            rule="cost-concentration",
            severity="info",
            title=f"{top.key} accounts for {_pct(share)} of the phase's cost",
            detail="Routine work (searches, subagents, summaries) on a cheaper model would cut "
            "most of the bill if the quality holds.",
            evidence=_ev(
                model_cost=f"${top.cost_usd:,.2f}",
                phase_cost=f"${total:,.2f}",
                responses=str(top.responses),
            ),
        )
    ]


def prompt_cache(r: PhaseReview) -> list[Recommendation]:
    out = []
    for c in r.cache:
        if c.basis != "prompt tokens" or c.lookups < CACHE_MIN_TOKENS or c.hit_rate is None:
            continue
        if c.hit_rate >= CACHE_HIT_RATE:
            continue
        out.append(
            Recommendation(
                rule="prompt-cache",
                severity="warn",
                title=f"Only {_pct(c.hit_rate)} of {c.name}'s prompt tokens came from the cache",
                detail="Cache reads cost a tenth of fresh input: keep the start of prompts stable "
                "(system prompt, tool list, project notes) so the provider can reuse it.",
                evidence=_ev(cache_read_tokens=f"{c.hits:,}", prompt_tokens=f"{c.lookups:,}"),
            )
        )
    return out


def missing_usage(r: PhaseReview) -> list[Recommendation]:
    o = r.overview
    if not o.sessions_without_usage:
        return []
    return [
        Recommendation(
            rule="missing-usage",
            severity="info",
            title=f"{o.sessions_without_usage} of {o.sessions} sessions carry no token usage",
            detail="Their cost is not in the totals (a transcript without usage lines, or a "
            "session recorded by hooks only), so the phase cost is a lower bound.",
            evidence=_ev(sessions=str(o.sessions), without_usage=str(o.sessions_without_usage)),
        )
    ]


def unpriced(r: PhaseReview) -> list[Recommendation]:
    if not r.overview.unpriced_responses:
        return []
    models = [c.key for c in r.cost_by_model if c.unpriced_responses]
    return [
        Recommendation(
            rule="unpriced-models",
            severity="warn",
            title=f"{r.overview.unpriced_responses} responses come from models with no price",
            detail="They count as free. Add the models to a pricing file (config.toml "
            "`pricing_file`) and run the review again.",
            evidence=_ev(
                models=", ".join(models) or "(unknown)",
                responses=str(r.overview.unpriced_responses),
            ),
        )
    ]


def unparsable(r: PhaseReview) -> list[Recommendation]:
    n = r.overview.unparsable_lines
    if not n:
        return []
    return [
        Recommendation(
            rule="unparsable-lines",
            severity="info",
            title=f"{n} transcript lines could not be parsed",
            detail="They are kept raw (nothing is lost) but add nothing to these figures; the "
            "errors table names the reasons.",
            evidence=_ev(lines=str(n), messages=str(r.overview.messages)),
        )
    ]


def backups(r: PhaseReview) -> list[Recommendation]:
    local = next((s for s in r.storage if s.tier == "local"), None)
    if local is None:
        return []
    backed = max((s.sessions for s in r.storage if s.tier == "backup"), default=0)
    out = []
    if backed < local.sessions:
        out.append(
            Recommendation(
                rule="backup-missing",
                severity="warn",
                title=f"{local.sessions - backed} sessions of this phase have no backup",
                detail="Run `tierkeeper backup` before the phase is closed and archived: the "
                "archive is built from the Tier 2 copies.",
                evidence=_ev(sessions_with_files=str(local.sessions), backed_up=str(backed)),
            )
        )
    for s in r.storage:
        if s.tier == "backup" and s.ratio is not None and s.ratio < RATIO_MIN:
            out.append(
                Recommendation(
                    rule="low-compression",
                    severity="info",
                    title=f"Backups on {s.target} shrink only {s.ratio:.1f}×",
                    detail="Session data usually compresses 4× or more with zstd; already "
                    "compressed attachments or encryption before compression would explain it.",
                    evidence=_ev(raw=f"{s.raw_bytes:,} B", stored=f"{s.stored_bytes:,} B"),
                )
            )
    return out


def agents(r: PhaseReview) -> list[Recommendation]:
    out = []
    for a in r.agents:
        if a.tool_calls < AGENT_MIN_CALLS or a.success_rate is None:
            continue
        if a.success_rate >= AGENT_SUCCESS:
            continue
        out.append(
            Recommendation(
                rule="agent-success",
                severity="warn",
                title=f"{a.agent}'s tool calls succeed only {_pct(a.success_rate)} of the time",
                detail="Check its instructions and permissions against the errors table.",
                evidence=_ev(
                    tool_calls=str(a.tool_calls),
                    failed=str(a.tool_errors),
                    sessions=str(a.sessions),
                ),
            )
        )
    return out


def slow_operations(r: PhaseReview) -> list[Recommendation]:
    out = []
    for lat in r.latency:
        if lat.kind == "operation" and lat.p95_ms is not None and lat.p95_ms >= OP_P95_MS:
            out.append(
                Recommendation(
                    rule="slow-operation",
                    severity="info",
                    title=f"{lat.name} took {_ms(lat.p95_ms)} at p95",
                    detail="Storage calls this slow stretch backups; check the link to the target "
                    "or use larger chunks.",
                    evidence=_ev(
                        calls=str(lat.count),
                        p50=_ms(lat.p50_ms),
                        p95=_ms(lat.p95_ms),
                        errors=str(lat.errors),
                    ),
                )
            )
    return out


RULES: tuple[Callable[[PhaseReview], list[Recommendation]], ...] = (
    backups,
    unpriced,
    tool_errors,
    agents,
    prompt_cache,
    cost_concentration,
    slow_tail,
    slow_operations,
    missing_usage,
    unparsable,
)


def recommend(review: PhaseReview) -> list[Recommendation]:
    """Warnings first, then the rest, each group in rule order."""
    found = [rec for rule in RULES for rec in rule(review)]
    return sorted(found, key=lambda rec: rec.severity != "warn")
