"""The read-through cache: hit ratio on a skewed workload, and what a hit saves.

Hit ratio: a Zipf(s = 1.0) trace of reads over N equal-sized objects, through
`CachingStore`'s memory layer sized to hold 10 % of them. The yardstick is an
exact LRU of the same capacity simulated on the same trace in this run (the
goal: within 5 % of it), with Belady's OPT (evict the object needed furthest
in the future) for how far any policy could go.

Speed-up: restores-like reads (the same objects read several times) from the
Drive v3 test server and from an S3 server (moto, in process), each uncached
(the retry wrapper straight over the store) and through the cache with its
memory and disk layers; then through the disk layer alone, as after a restart.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import heapq
import io
import itertools
import os
import random
import tempfile
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path

from core.cache.objects import ENTRY_OVERHEAD, ObjectCache
from core.cache.store import CachingStore
from core.metrics.registry import Metrics
from core.remote.base import PutSource, Store
from core.remote.folder import FolderStore
from core.remote.retry import RetryingStore
from tests.benchmarks.measure import Result, Row, log, mb, scratch_parent, short_time

NAME = "cache"
TITLE = "Read-through cache: hit ratio (Zipf) and read speed-up over Drive and S3"
GOAL_WITHIN = 0.05
ZIPF_S = 1.0
OBJECT_SIZE = 1024


def _sizes(quick: bool) -> dict[str, int]:
    if quick:
        return {"keys": 500, "reads": 10_000, "objects": 8, "object_kib": 256, "rounds": 3}
    return {"keys": 5_000, "reads": 100_000, "objects": 24, "object_kib": 512, "rounds": 4}


# the trace and its yardsticks ------------------------------------------------------------
def zipf_trace(keys: int, reads: int, s: float, seed: int = 7) -> list[int]:
    """Key ranks drawn with P(rank k) ∝ 1 / k^s, shuffled onto key ids."""
    rng = random.Random(seed)
    weights = [1.0 / (k**s) for k in range(1, keys + 1)]
    cumulative = list(itertools.accumulate(weights))
    total = cumulative[-1]
    ids = list(range(keys))
    rng.shuffle(ids)  # popularity unrelated to the key's name
    return [ids[bisect.bisect_left(cumulative, rng.random() * total)] for _ in range(reads)]


def lru_hits(trace: list[int], capacity: int) -> int:
    cache: OrderedDict[int, None] = OrderedDict()
    hits = 0
    for key in trace:
        if key in cache:
            hits += 1
            cache.move_to_end(key)
        else:
            cache[key] = None
            if len(cache) > capacity:
                cache.popitem(last=False)
    return hits


def opt_hits(trace: list[int], capacity: int) -> int:
    """Belady: on a miss with a full cache, evict the key whose next use is furthest."""
    never = len(trace)
    following = [never] * len(trace)
    last: dict[int, int] = {}
    for i in range(len(trace) - 1, -1, -1):
        following[i] = last.get(trace[i], never)
        last[trace[i]] = i
    cached: dict[int, int] = {}  # key -> its next use
    heap: list[tuple[int, int]] = []  # (-next use, key); stale entries skipped
    hits = 0
    for i, key in enumerate(trace):
        if key in cached:
            hits += 1
        elif len(cached) >= capacity:
            while True:
                neg, victim = heapq.heappop(heap)
                if cached.get(victim) == -neg:
                    del cached[victim]
                    break
        cached[key] = following[i]
        heapq.heappush(heap, (-following[i], key))
    return hits


def _source(folder: Path, name: str, data: bytes) -> PutSource:
    path = folder / name
    path.write_bytes(data)
    return PutSource(
        path,
        len(data),
        hashlib.sha256(data).hexdigest(),
        hashlib.md5(data, usedforsecurity=False).hexdigest(),
    )


async def _hit_ratio(root: Path, keys: int, trace: list[int], capacity: int) -> dict[str, float]:
    folder = FolderStore(root / "zipf")
    folder.root.mkdir()
    for k in range(keys):
        await folder.put(f"k/{k}", _source(root, "src", random.Random(k).randbytes(OBJECT_SIZE)))
    metrics = Metrics()
    cache = ObjectCache(
        memory_bytes=capacity * (OBJECT_SIZE + ENTRY_OVERHEAD), disk_dir=None, metrics=metrics
    )
    store = CachingStore(folder, cache, "zipf")
    t0 = time.perf_counter()
    for key in trace:
        await store.get(f"k/{key}", io.BytesIO())
    seconds = time.perf_counter() - t0
    memory = next(c for c in metrics.snapshot().cache if c.layer == "memory")
    return {"hits": memory.hits, "lookups": memory.hits + memory.misses, "seconds": seconds}


# speed-up over a real remote ---------------------------------------------------------------
async def _reads(store: Store, keys: list[str], rounds: int) -> float:
    t0 = time.perf_counter()
    for _ in range(rounds):
        for key in keys:
            buf = io.BytesIO()
            await store.get(key, buf)
    return time.perf_counter() - t0


async def _speedup(
    root: Path, name: str, make: Callable[[], Store], objects: int, size: int, rounds: int
) -> dict[str, float]:
    remote = make()
    keys = [f"Tierkeeper/p/sessions/session_{i}/a.zst" for i in range(objects)]
    for i, key in enumerate(keys):
        await remote.put(key, _source(root, f"{name}-{i}", random.Random(i).randbytes(size)))
    await remote.close()

    async def connected() -> Store:
        """A store past its first request (client set-up is not what is compared)."""
        store = RetryingStore(make())
        await store.stat(keys[-1])
        return store

    uncached = await connected()
    plain_s = await _reads(uncached, keys, rounds)
    await uncached.close()

    cache_dir = root / f"cache-{name}"
    cache = ObjectCache(memory_bytes=256 << 20, disk_dir=cache_dir, disk_bytes=1 << 30)
    cached = CachingStore(await connected(), cache, name)
    cached_s = await _reads(cached, keys, rounds)
    warm_s = await _reads(cached, keys, rounds)  # every read a memory hit
    await cached.close()

    restarted = ObjectCache(memory_bytes=0, disk_dir=cache_dir, disk_bytes=1 << 30)
    from_disk = CachingStore(await connected(), restarted, name)
    await _reads(from_disk, keys, 1)  # validates each object once (a stat), then trusted
    disk_s = await _reads(from_disk, keys, rounds)
    await from_disk.close()
    return {"plain": plain_s, "cached": cached_s, "warm": warm_s, "disk": disk_s}


async def _drive(root: Path, n: dict[str, int]) -> dict[str, float]:
    from core.remote.drive import DriveStore
    from tests.drive_server.fixture import running_drive

    with running_drive() as drive:
        creds = drive.credentials()

        def make() -> Store:
            return DriveStore(creds, api_root=drive.base_url)

        return await _speedup(root, "drive", make, n["objects"], n["object_kib"] << 10, n["rounds"])


async def _s3(root: Path, n: dict[str, int]) -> dict[str, float]:
    from core.remote.s3 import S3Settings, S3Store
    from tests.s3_server.moto import running_moto

    with running_moto() as server:
        bucket = server.make_bucket()
        settings = S3Settings(bucket=bucket, endpoint_url=server.endpoint, region=server.region,
                              addressing="path", storage_class="STANDARD")  # fmt: skip

        def make() -> Store:
            return S3Store(settings, access_key=server.access_key, secret_key=server.secret_key)

        return await _speedup(root, "s3", make, n["objects"], n["object_kib"] << 10, n["rounds"])


def _run(coro: Awaitable[dict[str, float]]) -> dict[str, float]:
    async def main() -> dict[str, float]:
        return await coro

    return asyncio.run(main())


def run(quick: bool) -> Result:
    n = _sizes(quick)
    capacity = n["keys"] // 10
    trace = zipf_trace(n["keys"], n["reads"], ZIPF_S)
    log(f"cache: Zipf trace of {len(trace)} reads over {n['keys']} keys, capacity {capacity}")
    lru = lru_hits(trace, capacity) / len(trace)
    opt = opt_hits(trace, capacity) / len(trace)
    res = Result(NAME, TITLE)
    with tempfile.TemporaryDirectory(prefix="bench-cache-", dir=scratch_parent()) as tmp:
        root = Path(tmp)
        ours = _run(_hit_ratio(root, n["keys"], trace, capacity))
        ratio = ours["hits"] / ours["lookups"]
        log("cache: reads from the Drive test server, uncached and cached")
        drive = _run(_drive(root, n))
        os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
        log("cache: reads from S3 (moto), uncached and cached")
        s3 = _run(_s3(root, n))
    gap = abs(ratio - lru) / lru
    res.rows.append(
        Row(
            f"Hit ratio, Zipf s={ZIPF_S} over {n['keys']} keys, cache holds 10 %",
            f"{ratio:.1%}",
            "within 5 % of exact LRU",
            gap <= GOAL_WITHIN,
            f"LRU {lru:.1%} (OPT {opt:.1%})",
            f"{ratio / lru:.3f}×",
        )
    )
    reads = n["objects"] * n["rounds"]
    size = f"{n['objects']} × {n['object_kib']} KiB"
    for label, m in (("Drive", drive), ("S3", s3)):
        res.rows.append(
            Row(
                f"{label}: {reads} reads of {size} ({n['rounds']} rounds), first round misses",
                short_time(m["cached"]),
                "faster than uncached",
                m["cached"] < m["plain"],
                short_time(m["plain"]) + " uncached",
                f"{m['plain'] / m['cached']:.1f}× faster",
            )
        )
        res.rows.append(
            Row(
                f"{label}: the same reads, all hits (memory / disk after a restart)",
                f"{short_time(m['warm'])} / {short_time(m['disk'])}",
                "—",
                None,
                short_time(m["plain"]) + " uncached",
                f"{m['plain'] / m['warm']:.0f}× / {m['plain'] / m['disk']:.0f}×",
            )
        )
    res.method = (
        f"Hit ratio: {len(trace)} reads drawn from Zipf(s={ZIPF_S}) over {n['keys']} objects "
        f"of {OBJECT_SIZE} B on a folder store, read through `CachingStore` whose memory "
        f"layer holds exactly {capacity} of them (disk layer off); the hit ratio is the "
        "memory layer's own hit/miss counters. Exact LRU and Belady's OPT are simulated on "
        "the same trace with the same capacity. Speed-up: "
        f"{size} put on the Drive v3 test server (loopback, in process, real "
        "google-api-python-client) and on moto's S3 server (in process, boto3), then read "
        f"{n['rounds']} times over (each store past its first request before timing): "
        "uncached (RetryingStore over the store), through the "
        "cache from cold (first round downloads and fills memory and disk), warm (memory "
        "hits), and from the disk layer alone in a fresh cache (as after a restart: one "
        "validating stat per object, not timed, then checksum-verified disk reads)."
    )
    res.details = [
        f"Zipf: ours {ours['hits']:.0f}/{ours['lookups']:.0f} hits = {ratio:.2%}; exact LRU "
        f"{lru:.2%}; OPT {opt:.2%}; {ours['lookups'] / ours['seconds']:,.0f} cached reads/s "
        "including misses to the folder store.",
        f"Drive: uncached {short_time(drive['plain'])}, cold cache "
        f"{short_time(drive['cached'])}, warm {short_time(drive['warm'])}, disk "
        f"{short_time(drive['disk'])}. S3: uncached {short_time(s3['plain'])}, cold "
        f"{short_time(s3['cached'])}, warm {short_time(s3['warm'])}, disk "
        f"{short_time(s3['disk'])}. Objects {mb(n['object_kib'] << 10)} each.",
    ]
    return res
