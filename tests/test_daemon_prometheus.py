"""A Prometheus server scrapes the daemon: the text it gets is the live snapshot, strictly
in the 0.0.4 exposition format, and counts what the daemon just did."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from core.client import HttpClient, connect_daemon
from core.daemon.server import Daemon
from core.models import JobState
from tests.support import CLAUDE_FIXTURES
from tests.test_metrics import parse

SOURCE = CLAUDE_FIXTURES / "claude-code-log-cases" / "edge_cases.jsonl"


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    d = await Daemon.start(tmp_path / "ws", socket=tmp_path / "d.sock")
    try:
        yield d
    finally:
        await d.stop()


async def scrape(sock: Path) -> tuple[int, str, str]:
    async with (
        aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(sock))) as http,
        http.get("http://tierkeeper/v1/metrics/prometheus") as resp,
    ):
        return resp.status, resp.headers["Content-Type"], await resp.text()


async def test_the_prometheus_route_serves_the_live_metrics_as_text(
    daemon: Daemon, tmp_path: Path
) -> None:
    client = await connect_daemon(socket=daemon.socket)
    assert isinstance(client, HttpClient)
    try:
        job = await client.start_import([str(SOURCE)])
        assert (await asyncio.wait_for(client.wait_job(job.id), 20)).state == JobState.DONE
        status, content_type, text = await scrape(daemon.socket)
    finally:
        await client.close()
    assert status == 200
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    samples, types = parse(text)  # every line a comment or a well-formed sample
    assert types["tierkeeper_jobs"] == "gauge"
    states = {v for (name, labels) in samples if name == "tierkeeper_jobs" for (k, v) in labels}
    assert states == {"queued", "running", "waiting"}
    assert samples[("tierkeeper_uptime_seconds", frozenset())] >= 0
    # the import's DB writes were timed: the summary has counts for them
    counts = [v for (name, _), v in samples.items() if name == "tierkeeper_op_seconds_count"]
    assert counts and sum(counts) > 0
