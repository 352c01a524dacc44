"""Phases, their review and `phase close` through `core.client`, on both transports.

The same suite as test_client_conformance.py (its `t` fixture: an in-process
service, or a real daemon on a Unix socket): what the Phase review page asks
must answer alike either way, charts as PNG bytes, errors as the same classes.
"""

from __future__ import annotations

import asyncio

import aiohttp

from core.client import HttpClient
from core.errors import NotFoundError
from core.local import lifecycle
from core.models import JobState
from tests.test_client_conformance import SOURCE, Setup, same_error, t  # noqa: F401

PNG = b"\x89PNG\r\n\x1a\n"


async def test_a_review_is_written_read_and_its_charts_fetched(t: Setup) -> None:  # noqa: F811
    c, svc = t.client, t.svc
    assert await c.phases() == []
    await same_error(svc.review("p1"), c.review("p1"))
    await lifecycle.phase_new(svc.db, svc.workspace, "p1")
    job = await c.start_import([str(SOURCE)])
    assert (await asyncio.wait_for(c.wait_job(job.id), 10)).state == JobState.DONE
    err = await same_error(svc.review("p1"), c.review("p1"))  # a phase, no review yet
    assert isinstance(err, NotFoundError) and "no review yet" in err.message

    job = await c.start_review("p1", html=True)
    done = await asyncio.wait_for(c.wait_job(job.id), 30)
    assert done.state == JobState.DONE, done.error
    doc = await c.review("p1")
    assert doc.phase == "p1" and doc.markdown.startswith("# Phase review — p1")
    assert doc.html is not None and "<html" in doc.html.lower() and doc.html_path
    assert doc.charts and all(f"charts/{name}" in doc.markdown for name in doc.charts)
    assert doc.metadata["phase"] == "p1" and doc.metadata["generated_at"]
    png = await c.review_chart("p1", doc.charts[0])
    assert png.startswith(PNG) and png == await svc.review_chart("p1", doc.charts[0])
    for bad in ("nope.png", "../phase_metadata.json", "..", "a/b.png"):
        err = await same_error(svc.review_chart("p1", bad), c.review_chart("p1", bad))
        assert isinstance(err, NotFoundError) or "not a usable" in err.message
    await same_error(svc.review("../etc"), c.review("../etc"))
    if isinstance(c, HttpClient):  # the route answers a picture, not JSON
        url = f"http://tierkeeper/v1/phases/p1/review/charts/{doc.charts[0]}"
        async with (
            aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(c.socket))) as http,
            http.get(url) as resp,
        ):
            assert resp.status == 200 and resp.content_type == "image/png"

    (phase,) = await c.phases()
    assert phase.name == "p1" and phase.status == "open" and phase.current
    assert phase.sessions == 1 and phase.reviewed_at == doc.metadata["generated_at"]


async def test_phase_close_runs_as_one_job_and_lists_closed_phases_first(t: Setup) -> None:  # noqa: F811
    c, svc = t.client, t.svc
    await same_error(svc.start_phase_close(), c.start_phase_close())  # none is current
    await same_error(svc.start_phase_close("nope"), c.start_phase_close("nope"))
    await lifecycle.phase_new(svc.db, svc.workspace, "first")
    await lifecycle.phase_new(svc.db, svc.workspace, "second")
    await svc.add_folder_target("usb", str(t.tmp / "disk"))
    job = await c.start_phase_close("first")
    assert job.kind == "phase-close" and job.title == "Close phase first"
    done = await asyncio.wait_for(c.wait_job(job.id), 30)
    assert done.state == JobState.DONE, done.error
    assert done.steps_done == done.steps_total == 6
    result = done.result or {}
    assert result["phase"] == "first" and result["upload"]["target"] == "usb"
    assert (t.tmp / "disk" / "Tierkeeper" / "first" / "review" / "manifest.json").is_file()
    listed = await c.phases()
    assert [(p.name, p.status) for p in listed] == [("first", "closed"), ("second", "open")]
    assert listed[0].closed_at and listed[0].reviewed_at and listed[1].reviewed_at is None
    assert (await c.review("first")).markdown.startswith("# Phase review — first")
