"""The phase review's figures, each checked against an independent computation.

The review reads its phase's slice with its own SQL; these tests recompute
every figure another way — from the raw transcript files, from the main DB with
different SQL, with Python's datetime and numpy — so a wrong join, a double
count or an off-by-one percentile shows up as a mismatch.
"""

from __future__ import annotations

import hashlib
import math
import sqlite3
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from core.local.db.schema import LATEST
from core.local.pricing import PriceTable
from core.review.models import PhaseReview
from core.review.review import compute, open_slice
from tests.review_data import OP_SAMPLES, Built, build
from tests.support import CLAUDE_FIXTURES

PCTS = (50, 95, 99)
MS = 0.05
"""Tolerance in ms: the importer's durations go through SQLite's julianday (a double of
days, ~20 µs of resolution at today's dates), these tests through datetime."""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(tmp_path_factory.mktemp("review"))


@pytest.fixture(scope="module")
def folder(built: Built) -> Path:
    return built.ws / "phases" / "p1"


@pytest.fixture(scope="module")
def review(folder: Path) -> PhaseReview:
    conn = open_slice(folder / "phase_analytics.db")
    try:
        return compute(conn, "p1", PriceTable.load())[0]
    finally:
        conn.close()


@pytest.fixture(scope="module")
def main(built: Built) -> sqlite3.Connection:
    conn = sqlite3.connect(f"{built.db.as_uri()}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def raw_usage() -> dict[tuple[str, str], dict[str, Any]]:
    """Usage straight from the transcript files: the first line of each (message id,
    request id), however many lines repeat it."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(CLAUDE_FIXTURES.rglob("*.jsonl")):
        for line in path.read_bytes().splitlines():
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(obj, dict):
                continue
            msg = obj.get("message")
            if obj.get("type") != "assistant" or not isinstance(msg, dict):
                continue
            usage = msg.get("usage")
            if not isinstance(usage, dict):
                continue
            mid = msg.get("id") if isinstance(msg.get("id"), str) else f"uuid:{obj.get('uuid')}"
            rid = obj.get("requestId") if isinstance(obj.get("requestId"), str) else ""

            def n(key: str, u: dict[str, Any] = usage) -> int:
                v = u.get(key)
                return v if isinstance(v, int) and not isinstance(v, bool) else 0

            seen.setdefault((mid, rid), {
                "model": msg.get("model") if isinstance(msg.get("model"), str) else None,
                "day": obj["timestamp"][:10] if isinstance(obj.get("timestamp"), str) else None,
                "in": n("input_tokens"), "out": n("output_tokens"),
                "cw": n("cache_creation_input_tokens"), "cr": n("cache_read_input_tokens"),
            })  # fmt: skip
    return seen


def durations(main: sqlite3.Connection, phase: str = "p1") -> list[tuple[str, str, float, int]]:
    """(tool, agent, ms, failed) from the raw timestamps, computed with datetime."""
    out = []
    for r in main.execute(
        "SELECT t.name, s.agent, t.started_at, t.finished_at, t.is_error FROM tool_calls t, "
        "sessions s WHERE s.id = t.session_id AND s.phase = ? AND t.name <> ''",
        (phase,),
    ):
        if r[2] is None or r[3] is None:
            continue
        ms = (datetime.fromisoformat(r[3]) - datetime.fromisoformat(r[2])).total_seconds() * 1e3
        if ms >= 0:
            out.append((r[0], r[1], ms, int(r[4] or 0)))
    return out


# tokens and cost ---------------------------------------------------------------------------
def test_tokens_per_model_equal_the_transcripts_deduplicated(review: PhaseReview) -> None:
    raw = raw_usage()
    want: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for u in raw.values():
        w = want[u["model"] or "(unknown)"]
        for i, k in enumerate(("in", "out", "cw", "cr")):
            w[i] += u[k]
        w[4] += 1
    got = {c.key: [c.input_tokens, c.output_tokens, c.cache_write_tokens, c.cache_read_tokens,
                   c.responses] for c in review.cost_by_model}  # fmt: skip
    assert got == dict(want)
    assert review.overview.responses == len(raw) == 409
    # a line-per-content-block count would be larger: the dedupe is doing work
    lines = sum(1 for p in CLAUDE_FIXTURES.rglob("*.jsonl") for ln in p.read_bytes().splitlines()
                if b'"usage"' in ln and b'"assistant"' in ln)  # fmt: skip
    assert lines > len(raw)


def test_cost_per_model_is_the_price_times_the_tokens(review: PhaseReview) -> None:
    prices = PriceTable.load()
    total = 0.0
    for c in review.cost_by_model:
        p = prices.find(c.key)
        expect = (
            0.0
            if p is None
            else (
                c.input_tokens * p.input
                + c.output_tokens * p.output
                + c.cache_write_tokens * p.cache_write
                + c.cache_read_tokens * p.cache_read
            )
            / 1e6
        )
        assert c.cost_usd == pytest.approx(expect, rel=1e-9, abs=1e-12)
        total += expect
    assert review.overview.cost_usd == pytest.approx(total, rel=1e-9)
    assert sum(c.cost_usd for c in review.cost_by_day) == pytest.approx(total, rel=1e-9)
    assert sum(c.cost_usd for c in review.cost_by_agent) == pytest.approx(total, rel=1e-9)
    assert sum(c.cost_usd for c in review.cost_by_session) == pytest.approx(total, rel=1e-9)


def test_tokens_per_day_agent_and_session(review: PhaseReview, main: sqlite3.Connection) -> None:
    per_day: dict[str, int] = defaultdict(int)
    for u in raw_usage().values():
        per_day[u["day"] or "(unknown)"] += u["out"]
    assert {c.key: c.output_tokens for c in review.cost_by_day} == dict(per_day)
    assert [c.key for c in review.cost_by_day] == sorted(per_day)
    by_session = {
        r[0]: (r[1], r[2])
        for r in main.execute(
            "SELECT session_id, count(*), total(input_tokens) + total(cache_read_tokens) "
            "FROM usage "
            "WHERE session_id IN (SELECT id FROM sessions WHERE phase = 'p1') GROUP BY session_id"
        )
    }
    assert {c.key: (c.responses, c.input_tokens + c.cache_read_tokens)
            for c in review.cost_by_session} == by_session  # fmt: skip
    by_agent = {
        r[0]: r[1]
        for r in main.execute(
            "SELECT s.agent, total(u.output_tokens) FROM sessions s JOIN usage u "
            "ON u.session_id = s.id WHERE s.phase = 'p1' GROUP BY s.agent"
        )
    }
    assert {c.key: c.output_tokens for c in review.cost_by_agent} == by_agent  # fmt: skip


def test_prompt_cache_hit_rate_per_model(review: PhaseReview) -> None:
    hits: dict[str, int] = defaultdict(int)
    prompt: dict[str, int] = defaultdict(int)
    for u in raw_usage().values():
        hits[u["model"]] += u["cr"]
        prompt[u["model"]] += u["in"] + u["cw"] + u["cr"]
    rates = {c.name: c for c in review.cache if c.basis == "prompt tokens"}
    assert set(rates) == set(prompt)
    for model, c in rates.items():
        assert (c.hits, c.lookups) == (hits[model], prompt[model])
        assert c.hit_rate == pytest.approx(hits[model] / prompt[model] if prompt[model] else 0.0)


# latency and bottlenecks ------------------------------------------------------------------
def test_tool_latency_percentiles_match_numpy(
    review: PhaseReview, main: sqlite3.Connection
) -> None:
    samples: dict[str, list[float]] = defaultdict(list)
    for tool, _, ms, _ in durations(main):
        samples[tool].append(ms)
    got = {x.name: x for x in review.latency if x.kind == "tool"}
    assert set(got) == set(samples)
    for tool, values in samples.items():
        x = got[tool]
        assert x.count == len(values)
        assert x.avg_ms == pytest.approx(float(np.mean(values)), abs=MS)
        assert x.max_ms == pytest.approx(max(values), abs=MS)
        for p, v in zip(PCTS, (x.p50_ms, x.p95_ms, x.p99_ms), strict=True):
            assert v == pytest.approx(float(np.percentile(values, p)), abs=MS), (tool, p)


def test_agent_latency_matches_numpy(review: PhaseReview, main: sqlite3.Connection) -> None:
    samples: dict[str, list[float]] = defaultdict(list)
    for _, agent, ms, _ in durations(main):
        samples[agent].append(ms)
    got = {x.name: x for x in review.latency if x.kind == "agent"}
    assert set(got) == set(samples)
    for agent, values in samples.items():
        assert got[agent].count == len(values)
        assert got[agent].p95_ms == pytest.approx(float(np.percentile(values, 95)), abs=MS)


def test_operation_latency_from_metrics_counts_each_observation_once(review: PhaseReview) -> None:
    put = next(x for x in review.latency if x.kind == "operation" and x.name == "put@folder")
    assert put.count == len(OP_SAMPLES)  # the minute row, not the minute and its hour
    assert put.errors == 1
    assert put.avg_ms == pytest.approx(float(np.mean(OP_SAMPLES)) * 1000)
    assert put.max_ms == pytest.approx(max(OP_SAMPLES) * 1000)
    assert not put.exact
    ordered = sorted(OP_SAMPLES)
    n = len(ordered)
    for p, v in zip(PCTS, (put.p50_ms, put.p95_ms, put.p99_ms), strict=True):
        # a histogram places rank q·n inside its bucket: between the samples around that
        # rank, give or take one bucket's width (16 a decade: 15 %)
        low = ordered[math.floor((n - 1) * p / 100)] * 1000 / 1.16
        high = ordered[min(n - 1, math.ceil(n * p / 100) - 1)] * 1000 * 1.16
        assert v is not None and low <= v <= high, (p, v, low, high)


def test_slowest_calls_and_sessions(review: PhaseReview, main: sqlite3.Connection) -> None:
    top = sorted((ms for _, _, ms, _ in durations(main)), reverse=True)[:10]
    assert [c.duration_ms for c in review.slowest_calls] == pytest.approx(top, abs=MS)
    lengths = sorted(
        ((datetime.fromisoformat(r[1]) - datetime.fromisoformat(r[0])).total_seconds()
         for r in main.execute("SELECT started_at, ended_at FROM sessions WHERE phase = 'p1' "
                               "AND started_at IS NOT NULL AND ended_at IS NOT NULL")),
        reverse=True,
    )[:10]  # fmt: skip
    assert [s.duration_s for s in review.slowest_sessions] == pytest.approx(lengths, abs=MS)


# errors, tools, agents --------------------------------------------------------------------
def test_top_errors_counts_and_dates(review: PhaseReview, main: sqlite3.Connection) -> None:
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in main.execute(
        "SELECT t.name, t.output, t.finished_at FROM tool_calls t JOIN sessions s ON "
        "s.id = t.session_id WHERE s.phase = 'p1' AND t.is_error = 1"
    ):
        first = next((ln.strip() for ln in (r[1] or "").split("\n") if ln.strip()), "")
        groups[(r[0], first[:160])].append(r[2])
    want = sorted(((len(v), k) for k, v in groups.items()), key=lambda x: -x[0])[:10]
    got = [(e.count, (e.name, e.signature)) for e in review.errors]
    assert [c for c, _ in got] == [c for c, _ in want]
    for e in review.errors:
        stamps = [t for t in groups[(e.name, e.signature)] if t]
        assert e.count == len(groups[(e.name, e.signature)])
        assert (e.first_seen, e.last_seen) == (min(stamps), max(stamps))
        assert e.example.split("\n")[0].strip().startswith(e.signature[:40])


def test_tool_usage_calls_success_and_time_share(
    review: PhaseReview, main: sqlite3.Connection
) -> None:
    rows = main.execute(
        "SELECT t.name, t.is_error, t.finished_at, t.duration_ms FROM tool_calls t, sessions s "
        "WHERE s.id = t.session_id AND s.phase = 'p1' AND t.name <> ''"
    ).fetchall()
    calls: dict[str, int] = defaultdict(int)
    failed: dict[str, int] = defaultdict(int)
    answered: dict[str, int] = defaultdict(int)
    time_ms: dict[str, float] = defaultdict(float)
    for name, is_error, finished, ms in rows:
        calls[name] += 1
        failed[name] += is_error == 1
        answered[name] += is_error is not None or finished is not None
        time_ms[name] += ms if ms is not None and ms >= 0 else 0.0
    total = sum(time_ms.values())
    got = {t.tool: t for t in review.tools}
    assert set(got) == set(calls)
    for name, t in got.items():
        assert (t.calls, t.errors) == (calls[name], failed[name])
        if answered[name]:
            assert t.success_rate == pytest.approx(1 - failed[name] / answered[name])
        else:
            assert t.success_rate is None
        assert t.time_share == pytest.approx(time_ms[name] / total)
    assert sum(t.time_share or 0 for t in review.tools) == pytest.approx(1.0)


def test_agent_performance(review: PhaseReview, main: sqlite3.Connection) -> None:
    sessions: dict[str, list[str]] = defaultdict(list)
    for sid, agent in main.execute("SELECT id, agent FROM sessions WHERE phase = 'p1'"):
        sessions[agent].append(sid)
    tokens = {r[0]: r[1] for r in main.execute(
        "SELECT s.agent, sum(u.input_tokens + u.output_tokens + u.cache_write_tokens + "
        "u.cache_read_tokens) FROM usage u JOIN sessions s ON s.id = u.session_id "
        "WHERE s.phase = 'p1' GROUP BY s.agent")}  # fmt: skip
    got = {a.agent: a for a in review.agents}
    assert set(got) == set(sessions)
    for agent, ids in sessions.items():
        a = got[agent]
        assert a.sessions == len(ids)
        assert a.tokens == tokens.get(agent, 0)
        assert a.tokens_per_session == pytest.approx(tokens.get(agent, 0) / len(ids))
    timed = [d for d in durations(main) if d[1] == "claude-code"]
    fails = sum(d[3] for d in timed)
    assert got["claude-code"].tool_errors >= fails


# overview and storage ---------------------------------------------------------------------
def test_overview_counts(review: PhaseReview, main: sqlite3.Connection) -> None:
    o = review.overview
    ids = {r[0] for r in main.execute("SELECT id FROM sessions WHERE phase = 'p1'")}
    with_usage = {r[0] for r in main.execute("SELECT DISTINCT session_id FROM usage")}
    assert o.sessions == len(ids) == 73
    assert o.sessions_without_usage == len(ids - with_usage)
    assert o.messages == main.execute(
        "SELECT count(*) FROM messages m JOIN sessions s ON s.id = m.session_id "
        "WHERE s.phase = 'p1'").fetchone()[0]  # fmt: skip
    assert o.status == "open"


def test_local_bytes_are_the_source_files_on_disk(review: PhaseReview) -> None:
    on_disk = sum(p.stat().st_size for p in CLAUDE_FIXTURES.rglob("*")
                  if p.is_file() and p.suffix in (".jsonl", ".json"))  # fmt: skip
    local = next(s for s in review.storage if s.tier == "local")
    assert local.raw_bytes == on_disk
    assert [s.tier for s in review.storage] == ["local"]  # nothing backed up yet
    assert any(r.rule == "backup-missing" for r in review.recommendations)


def test_every_recommendation_cites_figures_of_the_report(review: PhaseReview) -> None:
    assert review.recommendations
    for rec in review.recommendations:
        assert rec.evidence and all(e.value for e in rec.evidence)
    tool_rule = [r for r in review.recommendations if r.rule == "tool-errors"]
    for rec in tool_rule:
        tool = rec.title.split(" fails ")[0]
        t = next(t for t in review.tools if t.tool == tool)
        ev = {e.label: e.value for e in rec.evidence}
        assert ev["calls"] == str(t.calls) and ev["failed"] == str(t.errors)


# files ---------------------------------------------------------------------------------------
def test_slice_holds_only_the_phase_and_opens_as_an_analytics_db(
    folder: Path, main: sqlite3.Connection
) -> None:
    conn = sqlite3.connect(folder / "phase_analytics.db")
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST
        phases = {r[0] for r in conn.execute("SELECT DISTINCT phase FROM sessions")}
        assert phases == {"p1"}
        for table in ("sessions", "messages", "tool_calls", "usage"):
            col = "id" if table == "sessions" else "session_id"
            mine = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            want = main.execute(
                f"SELECT count(*) FROM {table} WHERE {col} IN "
                "(SELECT id FROM sessions WHERE phase = 'p1')").fetchone()[0]  # fmt: skip
            assert mine == want > 0, table
        assert conn.execute("SELECT count(*) FROM sessions WHERE id = 'planted_errors'"
                            ).fetchone()[0] == 0  # fmt: skip
        hits = conn.execute(
            "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'decorators'"
        ).fetchone()[0]
        assert hits > 0  # searchable on its own
        assert conn.execute("SELECT count(*) FROM raw_chunks").fetchone()[0] == 0
    finally:
        conn.close()


def test_metadata_lists_sessions_and_checksums_of_every_file(folder: Path, built: Built) -> None:
    meta = orjson.loads((folder / "phase_metadata.json").read_bytes())
    assert meta["phase"] == "p1" and meta["tool_version"]
    assert meta["totals"]["sessions"] == len(meta["sessions"]) == 73
    names = {f["name"] for f in meta["files"]}
    assert {"phase_insights.md", "phase_insights.html", "phase_analytics.db",
            "charts/latency_distribution.png", "charts/cost_over_time.png",
            "charts/tool_usage.png"} <= names  # fmt: skip
    for f in meta["files"]:
        data = (folder / f["name"]).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (f["size"], f["sha256"])
    assert not list(folder.glob(".review-*"))  # the staging folder is gone
    assert built.p1_job["folder"] == str(folder)


def test_report_shows_the_figures_and_embeds_the_charts(folder: Path, review: PhaseReview) -> None:
    md = (folder / "phase_insights.md").read_text()
    for heading in ("Latency", "Bottlenecks", "Top errors", "Tool usage", "Agent performance",
                    "Tokens and cost", "Storage", "Recommendations"):  # fmt: skip
        assert f"## {heading}" in md
    assert "](charts/latency_distribution.png)" in md
    assert f"{review.overview.responses:,}" in md
    html = (folder / "phase_insights.html").read_text()
    assert html.count('src="data:image/png;base64,') == 3
    assert "charts/" not in html  # self-contained
    assert "<script" not in html.lower()
