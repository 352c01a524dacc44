"""The service as its clients use it: import jobs, crash recovery, pricing, config."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest

from core.errors import BadInputError
from core.models import JobState
from core.service import Service
from tests.support import CLAUDE_FIXTURES, REPO, duplicate_rows


async def test_import_job_reports_progress_and_a_result(service: Service) -> None:
    sub = service.bus.subscribe(["job."])
    job = await service.start_import([str(CLAUDE_FIXTURES)])
    done = await service.jobs.wait(job.id)
    assert done.state == JobState.DONE
    assert done.result and done.result["files_failed"] == 0 and done.result["rows_stored"] > 0
    topics = []
    while True:
        event = await asyncio.wait_for(sub.__anext__(), 5)
        topics.append(event.topic)
        if event.topic == "job.finished":
            break
    await sub.aclose()
    assert topics[0] in ("job.queued", "job.started") and "job.progress" in topics
    assert done.bytes_total and done.bytes_done == done.bytes_total


KILLED_DURING_JOB = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from core.service import Service

    async def main():
        svc = await Service.start(sys.argv[1])
        sub = svc.bus.subscribe(["job.progress"])
        await svc.start_import([sys.argv[2]])
        async for event in sub:
            if event.data.get("bytes_done", 0) > 0:
                os.kill(os.getpid(), signal.SIGKILL)

    asyncio.run(main())
    """
)


async def test_import_job_killed_mid_way_resumes_on_the_next_start(tmp_path: Path) -> None:
    proj = tmp_path / "src" / "-proj"
    proj.mkdir(parents=True)
    for n in range(20):
        (proj / f"s{n}.jsonl").write_bytes(
            b"".join(
                orjson.dumps(
                    {
                        "type": "user",
                        "uuid": f"{n}-{i}",
                        "message": {"role": "user", "content": f"message {i} of session {n}"},
                    }
                )
                + b"\n"
                for i in range(400)
            )
        )
    ws = tmp_path / "ws"
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_DURING_JOB, str(ws), str(proj)],
        cwd=REPO, capture_output=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    async with await Service.start(ws) as svc:
        (job,) = await svc.jobs.list()
        done = await svc.jobs.wait(job.id)
        assert done.state == JobState.DONE
        assert await svc.db.scalar("SELECT count(*) FROM messages") == 20 * 400
        assert await duplicate_rows(svc.db) == 0


async def test_user_price_table_overrides_the_shipped_one(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    async with await Service.start(ws) as svc:
        await svc.import_now([str(CLAUDE_FIXTURES)])
        shipped = await svc.stats("model")
    prices = tmp_path / "prices.toml"
    prices.write_text('[[model]]\nmatch = "*"\ninput = 1000.0\noutput = 0\n'
                      'cache_write = 0\ncache_read = 0\n')  # fmt: skip
    cfg = (ws / "config.toml").read_text()
    (ws / "config.toml").write_text(f'pricing_file = "{prices}"\n' + cfg)
    async with await Service.start(ws) as svc:
        custom = await svc.stats("model")
    total_input = sum(r["input_tokens"] for r in custom)
    assert sum(r["cost_usd"] for r in custom) == pytest.approx(total_input * 1000 / 1e6)
    assert sum(r["cost_usd"] for r in custom) != sum(r["cost_usd"] for r in shipped)


async def test_a_broken_config_file_is_a_clear_error(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    async with await Service.start(ws):
        pass
    (ws / "config.toml").write_text("job_concurrency = 'lots'\n")
    with pytest.raises(BadInputError, match="not a valid Tierkeeper config"):
        await Service.start(ws)
    # and the lock was not left held
    (ws / "config.toml").write_text("")
    async with await Service.start(ws):
        pass
