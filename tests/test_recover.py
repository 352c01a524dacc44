"""The laptop died: rebuild the catalog from the remotes alone, then bring sessions back.

Real parts: two phases of real Claude Code fixture sessions, a folder target
for Tier 2, SeaweedFS for the archived phase (STANDARD class, so it reads back
without a thaw), the real job runner. The whole first workspace is deleted
before the recovery starts in a new one.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import pytest

from core.errors import NotFoundError
from core.local import lifecycle
from core.models import JobState, SearchQuery
from core.recovery.ops import set_aside_damaged_db
from core.service import Service
from core.tier2.targets import RetryPolicy
from tests.s3_server.fixtures import SeaweedHarness, seaweed  # noqa: F401
from tests.support import CLAUDE_FIXTURES

CASES = CLAUDE_FIXTURES / "claude-code-log-cases"
P1 = sorted(CASES.glob("dag_*.jsonl"))
P2 = [CASES / n for n in ("edit_tool.jsonl", "representative_messages.jsonl",
                          "sidechain_main.jsonl", "memory_interactions.jsonl")]  # fmt: skip
WORDS = ("file", "error", "test", "function", "memory")
FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.05)


@pytest.fixture
def keyring_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


async def view(svc: Service) -> dict[str, Any]:
    """What a user sees: the sessions list, token totals, tool stats and search results."""
    hits = {}
    for word in WORDS:
        found = await svc.search(SearchQuery(text=word, limit=200))
        hits[word] = sorted((h.session_id, h.project, h.role, h.ts, h.snippet) for h in found)
    return {
        # the same rows; `in_backup_only` is what tells a recovered one from a local one
        "sessions": [s.model_dump(exclude={"in_backup_only"}) for s in await svc.list_sessions()],
        "by_model": await svc.stats("model"),
        "by_session": await svc.stats("session"),
        "tools": await svc.stats("tool"),
        "search": hits,
    }


async def done(svc: Service, job_id: int) -> dict[str, Any]:
    info = await svc.jobs.wait(job_id)
    assert info.state == JobState.DONE, info.error
    return info.result or {}


async def two_phases(ws: Path, tier2: Path, archive: dict[str, str] | None) -> dict[str, Any]:
    """p1 (backed up; archived when `archive` names a bucket) and p2 (backed up)."""
    svc = await Service.start(ws, retry=FAST)
    try:
        await svc.add_folder_target("t2", str(tier2))
        await lifecycle.phase_new(svc.db, svc.workspace, "p1")
        await svc.import_now([str(p) for p in P1])
        await done(svc, (await svc.start_backup([], "t2")).id)
        await lifecycle.phase_close(svc.db, svc.workspace, "p1")
        await lifecycle.phase_new(svc.db, svc.workspace, "p2")
        await svc.import_now([str(p) for p in P2])
        await done(svc, (await svc.start_backup([], "t2")).id)
        if archive is not None:
            svc.config.retention.backup_phases = 1  # p1 leaves Tier 2 once archived
            await svc.add_s3_target("deep", **archive)  # type: ignore[arg-type]
            result = await done(svc, (await svc.start_archive("p1", target="deep")).id)
            assert result["tier2_phases_removed"] == ["p1"]
        return await view(svc)
    finally:
        await svc.stop()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_a_dead_laptop_comes_back_from_tier2_and_the_archive(
    seaweed: SeaweedHarness,  # noqa: F811
    tmp_path: Path,
    keyring_file: None,
) -> None:
    tier2, ws1, ws2 = tmp_path / "t2", tmp_path / "ws1", tmp_path / "ws2"
    s3 = {"bucket": seaweed.make_bucket(), "endpoint_url": seaweed.endpoint,
          "region": seaweed.region, "addressing": "path", "storage_class": "STANDARD",
          "access_key": seaweed.access_key, "secret_key": seaweed.secret_key}  # fmt: skip
    before = await two_phases(ws1, tier2, s3)
    assert not (tier2 / "Tierkeeper" / "p1").exists()  # only the archive holds p1 now
    shutil.rmtree(ws1)

    svc = await Service.start(ws2, retry=FAST)
    try:
        await svc.add_folder_target("t2", str(tier2))
        await svc.add_s3_target("deep", **s3)  # type: ignore[arg-type]
        reports = await svc.recover()
        by_tier = {(r.target, r.tier): r for r in reports}
        t2, t3 = by_tier["t2", 2], by_tier["deep", 3]
        assert t2.index == "ok" and t3.index == "ok"
        assert not t2.problems and not t3.problems
        assert t2.sessions_added == len(P2) and t3.sessions_added == len(P1)
        # only the index, manifests and catalogs were read: no data blob
        assert t2.objects_read == 1 + 2 * len(P2)
        assert t3.objects_read == 1 + 2  # index, p1's manifest, p1's catalog

        rebuilt = await view(svc)
        assert rebuilt["sessions"] == before["sessions"]
        assert rebuilt["by_model"] == before["by_model"]
        assert rebuilt["by_session"] == before["by_session"]
        assert rebuilt["tools"] == before["tools"]
        assert lifecycle.current_phase(svc.workspace).name == "p2"  # type: ignore[union-attr]

        # Tier 2 sessions come back at once; the archived phase through archive-restore
        result = await svc.restore_recovered()
        assert not result.failed and len(result.restored) == len(P2)
        assert sorted(result.archived) == ["p1"]
        back = tmp_path / "back"
        await done(svc, (await svc.start_archive_restore("p1", str(back), target="deep")).id)

        after = await view(svc)
        assert after["sessions"] == before["sessions"]
        assert after["by_model"] == before["by_model"]
        assert after["tools"] == before["tools"]
        assert after["search"] == before["search"] and any(after["search"].values())
        for src in P2:
            (restored,) = (svc.workspace.root / "restored").rglob(src.name)
            assert sha(restored) == sha(src)
        for src in P1:
            (restored,) = back.rglob(src.name)
            assert sha(restored) == sha(src)
        assert await svc.db.scalar("SELECT count(*) FROM recovered WHERE restored_at IS NULL") == 0
        # the rebuild again adds nothing and changes nothing
        again = await svc.recover()
        assert sum(r.sessions_added for r in again) == 0
        assert (await view(svc))["sessions"] == before["sessions"]
    finally:
        await svc.stop()


async def test_a_truncated_db_is_set_aside_and_rebuilt(tmp_path: Path) -> None:
    tier2, ws = tmp_path / "t2", tmp_path / "ws"
    before = await two_phases(ws, tier2, None)
    db = ws / "analytics" / "agent_metrics.db"
    svc = await Service.start(ws, run_jobs=False)
    await svc.db.checkpoint()
    await svc.stop()
    with open(db, "r+b") as fh:
        fh.truncate(db.stat().st_size // 2)
    aside = set_aside_damaged_db(svc.workspace)
    assert aside is not None and aside.exists() and not db.exists()
    remote_before = {p: sha(p) for p in tier2.rglob("*") if p.is_file()}

    svc = await Service.start(ws, retry=FAST)
    try:
        (report,) = await svc.recover()
        assert report.sessions_added == len(P1) + len(P2) and not report.problems
        rebuilt = await view(svc)
        for key in ("sessions", "by_model", "by_session", "tools"):
            assert rebuilt[key] == before[key]
        await svc.restore_recovered()
        assert (await view(svc))["search"] == before["search"]
    finally:
        await svc.stop()
    # nothing on the remote was written or deleted by the rebuild or the restore
    assert {p: sha(p) for p in tier2.rglob("*") if p.is_file()} == remote_before


async def test_a_missing_manifest_is_reported_and_the_rest_recovered(tmp_path: Path) -> None:
    tier2, ws1 = tmp_path / "t2", tmp_path / "ws1"
    before = await two_phases(ws1, tier2, None)
    shutil.rmtree(ws1)
    lost = P2[0].stem
    (manifest,) = tier2.glob(f"Tierkeeper/p2/sessions/session_{lost}/manifest.json")
    manifest.unlink()

    svc = await Service.start(tmp_path / "ws2", retry=FAST)
    try:
        await svc.add_folder_target("t2", str(tier2))
        (report,) = await svc.recover()
        assert report.sessions_added == len(P1) + len(P2) - 1
        (problem,) = report.problems
        assert lost in problem and "manifest" in problem
        rebuilt = [s for s in (await view(svc))["sessions"]]
        assert rebuilt == [s for s in before["sessions"] if s["id"] != lost]
        drift = await svc.catalog_drift("t2")
        assert [d.clean for d in drift] == [True]
        # sessions whose bytes are only remote are never "backed up" again from nothing
        result = await done(svc, (await svc.start_backup([], "t2")).id)
        assert result["unchanged"] == len(rebuilt) and not result["failed"]
        with pytest.raises(NotFoundError, match="in a backup"):
            await svc.export(rebuilt[0]["id"], tmp_path / "out")
    finally:
        await svc.stop()


async def test_a_session_without_its_catalog_still_comes_back_by_its_manifest(
    tmp_path: Path,
) -> None:
    """A backup older than catalogs, or one whose catalog was lost, still has its
    manifest: the session is recovered from that (id, phase, files) and restores, and
    the rest of the target is recovered as usual. It used to stop the whole rebuild
    on the DB's NOT NULL columns."""
    tier2, ws1 = tmp_path / "t2", tmp_path / "ws1"
    before = await two_phases(ws1, tier2, None)
    shutil.rmtree(ws1)
    bare = P2[1].stem
    (cat,) = tier2.glob(f"Tierkeeper/p2/sessions/session_{bare}/catalog.json.zst")
    cat.unlink()

    svc = await Service.start(tmp_path / "ws2", retry=FAST)
    try:
        await svc.add_folder_target("t2", str(tier2))
        (report,) = await svc.recover()
        assert report.sessions_added == len(P1) + len(P2)
        assert report.without_catalog == 1
        rebuilt = {s["id"]: s for s in (await view(svc))["sessions"]}
        assert set(rebuilt) == {s["id"] for s in before["sessions"]}
        assert rebuilt[bare]["phase"] == "p2" and rebuilt[bare]["message_count"] == 0
        (restored,) = await svc.restore(bare, tmp_path / "back")
        assert sha(restored) == sha(P2[1])
    finally:
        await svc.stop()
