"""A job that records each step it does, and a child-process entry that dies mid-job.

test_jobs.py runs this file as a script to get a real crash (SIGKILL, no
cleanup, no graceful stop) and loads `steps_job` from it to resume the job.

Usage: python crash_job_helper.py DB_PATH LOG_PATH STEPS CRASH_AT
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

from core.events import EventBus
from core.jobs import JobContext, JobRunner
from core.local.db.database import Database

CRASH_AT_ENV = "TIERKEEPER_TEST_CRASH_AT"


async def steps_job(ctx: JobContext) -> dict[str, Any]:
    """Step n appends "pid n" to the log, then checkpoints {"step": n}."""
    log = Path(ctx.params["log"])
    total = int(ctx.params["steps"])
    crash_at = int(os.environ.get(CRASH_AT_ENV, "0"))
    first = (ctx.checkpoint or {"step": 0})["step"] + 1
    with log.open("a") as out:
        out.write(f"resume {os.getpid()} {ctx.checkpoint}\n")
    ctx.progress(steps_total=total)
    for step in range(first, total + 1):
        if step == crash_at:
            os.kill(os.getpid(), signal.SIGKILL)
        with log.open("a") as out:
            out.write(f"step {os.getpid()} {step}\n")
        await ctx.save_checkpoint({"step": step}, steps_done=step)
    return {"last_step": total}


async def main(db_path: Path, log: Path, steps: int) -> None:
    db = await Database.open(db_path)
    runner = JobRunner(db, EventBus(), concurrency=1)
    runner.register("steps", steps_job)
    await runner.start()
    info = await runner.submit("steps", {"log": str(log), "steps": steps}, title="crash test")
    await runner.wait(info.id)  # never returns: the job kills this process


if __name__ == "__main__":
    os.environ[CRASH_AT_ENV] = sys.argv[4]
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])))
