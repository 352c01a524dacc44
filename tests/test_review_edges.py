"""The review on awkward phases: empty, only errors, no usage; secrets and markup
from transcripts; re-runs; the command line."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from core.errors import BadInputError, NotFoundError
from core.local.db.database import Database
from core.local.pricing import PriceTable
from core.review.models import PhaseReview
from core.review.review import check_phase, compute, open_slice, run_review
from core.workspace import Workspace
from tests.review_data import PLANTED_KEY, Built, build
from tests.support import REPO


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(tmp_path_factory.mktemp("edges"), fixtures=False)


def review_of(built: Built, phase: str) -> PhaseReview:
    conn = open_slice(built.ws / "phases" / phase / "phase_analytics.db")
    try:
        return compute(conn, phase, PriceTable.load())[0]
    finally:
        conn.close()


def test_an_empty_phase_gives_a_sane_report(built: Built) -> None:
    folder = built.ws / "phases" / "empty"
    r = review_of(built, "empty")
    assert r.overview.sessions == 0 and r.overview.cost_usd == 0.0
    assert not (r.tools or r.errors or r.agents or r.cost_by_model or r.storage)
    assert not [x for x in r.latency if x.kind != "operation"]
    md = (folder / "phase_insights.md").read_text()
    assert "no sessions yet" in md and "No token usage" in md
    assert not list((folder / "charts").iterdir())  # nothing to draw, nothing drawn
    meta = orjson.loads((folder / "phase_metadata.json").read_bytes())
    assert meta["sessions"] == [] and meta["totals"]["sessions"] == 0
    assert "<h1>Phase review — empty</h1>" in (folder / "phase_insights.html").read_text()


def test_a_phase_of_only_errors_and_no_usage(built: Built) -> None:
    r = review_of(built, "errors-only")
    o = r.overview
    assert (o.status, o.sessions, o.sessions_without_usage, o.responses) == ("closed", 1, 1, 0)
    assert o.unparsable_lines == 1 and o.closed_at
    assert {t.tool: (t.calls, t.errors, t.success_rate) for t in r.tools} == {
        "Bash": (2, 2, 0.0), "Edit": (1, 1, 0.0)}  # fmt: skip
    counts = {(e.origin, e.name): e.count for e in r.errors}
    assert counts == {("tool", "Bash"): 2, ("tool", "Edit"): 1, ("import", "unparsable line"): 1}
    bash = next(e for e in r.errors if e.name == "Bash")
    assert (bash.first_seen, bash.last_seen) == ("2025-03-01T10:00:04Z", "2025-03-01T10:01:10Z")
    assert {x.name: x.count for x in r.latency if x.kind == "tool"} == {"Bash": 2, "Edit": 1}
    assert r.cost_by_model == [] and r.agents[0].success_rate == 0.0
    assert {rec.rule for rec in r.recommendations} >= {"missing-usage", "unparsable-lines"}


def test_planted_key_reaches_no_review_file(built: Built) -> None:
    folder = built.ws / "phases" / "errors-only"
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"phase_insights.md", "phase_analytics.db",
                                       "phase_metadata.json", "phase_insights.html"}  # fmt: skip
    for path in files:
        assert PLANTED_KEY.encode() not in path.read_bytes(), path
    md = (folder / "phase_insights.md").read_text()
    assert "[REDACTED:" in md  # the example is quoted, with the key cut out


def test_markup_from_transcripts_is_escaped(built: Built) -> None:
    folder = built.ws / "phases" / "errors-only"
    html = (folder / "phase_insights.html").read_text()
    md = (folder / "phase_insights.md").read_text()
    assert "<script" not in html.lower() and "<script" not in md.lower()
    assert "&lt;script&gt;alert(" in html
    assert "&lt;script&gt;alert(" in md
    assert "default-src 'none'" in html  # and no script could run anyway


def test_a_rerun_replaces_the_review_and_drops_what_it_no_longer_has(built: Built) -> None:
    folder = built.ws / "phases" / "errors-only"
    assert (folder / "phase_insights.html").exists()

    async def again() -> None:
        db = await Database.open(built.db)
        try:
            await run_review(db, Workspace(built.ws), "errors-only", PriceTable.load())
        finally:
            await db.close()

    asyncio.run(again())
    assert not (folder / "phase_insights.html").exists()
    meta = orjson.loads((folder / "phase_metadata.json").read_bytes())
    names = {f["name"] for f in meta["files"]}
    assert "phase_insights.html" not in names
    assert {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} == {
        *names, "phase_metadata.json"}  # fmt: skip


def tk(*args: str, ws: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "core.cli.entry", *args, "--workspace", str(ws)],
        cwd=REPO, capture_output=True, timeout=120,
    )  # fmt: skip


def test_cli_review_writes_the_files(built: Built) -> None:
    proc = tk("review", "errors-only", "--html", "--json", ws=built.ws)
    assert proc.returncode == 0, proc.stderr.decode()
    out = orjson.loads(proc.stdout)
    assert out["job"]["kind"] == "review" and out["job"]["state"] == "done"
    assert out["job"]["steps_done"] == out["job"]["steps_total"] == 5
    assert out["result"]["overview"]["sessions"] == 1
    assert Path(out["result"]["folder"], "phase_insights.html").exists()


def test_an_unknown_phase_is_refused_before_a_job_starts(built: Built) -> None:
    async def go() -> None:
        db = await Database.open(built.db)
        try:
            with pytest.raises(NotFoundError, match="No phase 'no-such-phase'"):
                await check_phase(db, "no-such-phase")
            with pytest.raises(BadInputError):
                await check_phase(db, "../etc")
        finally:
            await db.close()

    asyncio.run(go())
