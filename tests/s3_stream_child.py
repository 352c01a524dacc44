"""A child process that streams one object to SeaweedFS with `put_stream`, to be SIGKILLed.

test_s3_stream.py runs this file as a script. The producer writes seeded random
bytes (the same on every run, as a rebuilt phase tarball is); after
`TK_S3_STALL_AFTER` parts have gone through, the next part hangs (a network
that stalls), so the parent can kill the child with parts acknowledged and the
upload id saved in the slot file.

Usage: python s3_stream_child.py SLOT_FILE KEY SIZE SEED TAG
Environment: TK_S3_ENDPOINT, TK_S3_BUCKET, TK_S3_ACCESS, TK_S3_SECRET, TK_S3_STALL_AFTER.
"""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.drive_put_child import JsonFileSlot
from tests.s3_put_child import stalling_store


def seeded_producer(size: int, seed: int, block: int = 256 * 1024) -> Callable[[Any], int]:
    """Writes `size` seeded random bytes in blocks; the same bytes for the same seed."""

    def produce(sink: Any) -> int:
        rng = random.Random(seed)
        left = size
        while left:
            n = min(block, left)
            sink.write(rng.randbytes(n))
            left -= n
        return size

    return produce


async def main(slot: Path, key: str, size: int, seed: int, tag: str) -> None:
    store = stalling_store()
    try:
        await store.put_stream(
            key, seeded_producer(size, seed), tag=tag, size_bound=size,
            resume=JsonFileSlot(slot),
        )  # fmt: skip
    finally:
        await store.close()


if __name__ == "__main__":
    slot_file, object_key, total, seed_text, stream_tag = sys.argv[1:6]
    asyncio.run(main(Path(slot_file), object_key, int(total), int(seed_text), stream_tag))
