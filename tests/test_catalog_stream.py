"""The catalog a backup streams from the DB file is the document recovery reads.

Recovery (tests/test_recover.py) checks the rows come back; this pins the
streamed form to the dict form on every fixture session, floats and missing
values included, and checks that damage and a cut-short catalog are refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import BadInputError
from core.local.db.read_pool import ReadPool
from core.recovery import catalog
from core.recovery.catalog_stream import CatalogReader
from core.service import Service
from tests.support import CLAUDE_FIXTURES


async def test_the_streamed_catalog_is_the_same_document_for_every_fixture_session(
    tmp_path: Path,
) -> None:
    async with await Service.start(tmp_path / "ws") as svc:
        await svc.import_now([str(CLAUDE_FIXTURES)])
        sessions = [s.id for s in await svc.list_sessions()]
        assert len(sessions) > 20
        # a duration with more digits than SQLite prints by default
        await svc.db.execute("UPDATE tool_calls SET duration_ms = 16016.006469726562 "
                             "WHERE rowid = (SELECT min(rowid) FROM tool_calls)")  # fmt: skip
        pool = ReadPool(svc.db.path)
        try:
            with_rows = 0
            for sid in sessions:
                want = await catalog.session_catalog(svc.db, sid)
                dst = tmp_path / f"{sid}.zst"
                packed = CatalogReader(pool).write(sid, dst)
                data = dst.read_bytes()
                assert packed.size == len(data)
                assert catalog.decode(data, sid) == want
                with_rows += bool(want["usage"] or want["tool_calls"])
            assert with_rows > 5  # the rows that make the catalog worth having were there
        finally:
            pool.close()


async def test_a_damaged_or_cut_short_catalog_is_refused(tmp_path: Path) -> None:
    async with await Service.start(tmp_path / "ws") as svc:
        await svc.import_now([str(CLAUDE_FIXTURES / "claude-code-log-cases" / "edit_tool.jsonl")])
        (session,) = await svc.list_sessions()
        pool = ReadPool(svc.db.path)
        try:
            CatalogReader(pool).write(session.id, tmp_path / "c.zst")
        finally:
            pool.close()
    data = (tmp_path / "c.zst").read_bytes()
    with pytest.raises(BadInputError, match=r"cut short|damaged"):
        catalog.decode(data[: len(data) // 2], "the catalog")
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    with pytest.raises(BadInputError, match="damaged"):
        catalog.decode(bytes(flipped), "the catalog")


async def test_an_unknown_session_has_no_catalog(tmp_path: Path) -> None:
    async with await Service.start(tmp_path / "ws") as svc:
        pool = ReadPool(svc.db.path)
        try:
            with pytest.raises(BadInputError, match="No session"):
                CatalogReader(pool).write("nope", tmp_path / "c.zst")
        finally:
            pool.close()


async def test_the_phase_catalog_rendered_by_sqlite_is_the_dict_document(tmp_path: Path) -> None:
    from core.local import lifecycle
    from core.packing.crypto import new_key_params
    from core.recovery.publish import render_phase_catalog

    async with await Service.start(tmp_path / "ws") as svc:
        await lifecycle.phase_new(svc.db, svc.workspace, "p1")
        await svc.import_now([str(CLAUDE_FIXTURES)])
        sessions = sorted(s.id for s in await svc.list_sessions())
        assert len(sessions) > 20
        want = catalog.phase_catalog(
            "p1", [await catalog.session_catalog(svc.db, sid) for sid in sessions]
        )
        assert catalog.decode(await render_phase_catalog(svc.db, "p1", None), "p1") == want
        key = new_key_params(n=2**10).derive("correct horse battery staple")
        sealed = await render_phase_catalog(svc.db, "p1", key)
        assert catalog.decode(sealed, "p1", key) == want
        empty = catalog.decode(await render_phase_catalog(svc.db, "nothing", None), "none")
        assert empty == catalog.phase_catalog("nothing", [])
