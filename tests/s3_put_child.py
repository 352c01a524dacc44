"""A child process that uploads one multipart object to SeaweedFS, to be killed with SIGKILL.

test_s3_store.py runs this file as a script. After `TK_S3_STALL_AFTER` parts have gone
through, the next part hangs (a network that stalls), so the parent can kill the child
with some parts acknowledged and the upload id saved in the slot file.

Usage: python s3_put_child.py SOURCE SHA256 MD5 SLOT_FILE KEY
Environment: TK_S3_ENDPOINT, TK_S3_BUCKET, TK_S3_ACCESS, TK_S3_SECRET, TK_S3_STALL_AFTER.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

from core.remote.base import PutSource
from core.remote.s3 import S3Settings, S3Store
from tests.drive_put_child import JsonFileSlot

PART = 5 * 1024 * 1024


def stall_after(client: Any, parts: int) -> None:
    real = client.upload_part
    sent = 0

    def upload_part(**kwargs: Any) -> Any:
        nonlocal sent
        if sent >= parts:
            time.sleep(120)
        sent += 1
        return real(**kwargs)

    client.upload_part = upload_part


def stalling_store() -> S3Store:
    """The store the environment names, whose parts stall after TK_S3_STALL_AFTER."""
    env = os.environ
    store = S3Store(
        S3Settings(bucket=env["TK_S3_BUCKET"], endpoint_url=env["TK_S3_ENDPOINT"],
                   region="us-east-1"),
        access_key=env["TK_S3_ACCESS"],
        secret_key=env["TK_S3_SECRET"],
        part_size=PART,
    )  # fmt: skip
    stall_after(store._client(), int(env["TK_S3_STALL_AFTER"]))
    return store


async def main(source: PutSource, slot: Path, key: str) -> None:
    store = stalling_store()
    try:
        await store.put(key, source, resume=JsonFileSlot(slot))
    finally:
        await store.close()


if __name__ == "__main__":
    path, sha256, md5, slot_file, object_key = sys.argv[1:6]
    src = PutSource(Path(path), Path(path).stat().st_size, sha256, md5)
    asyncio.run(main(src, Path(slot_file), object_key))
