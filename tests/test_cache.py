"""The read-through cache over a real FolderStore (and the Drive test server): what a
restore gets, how many remote calls it costs, and that it never serves wrong bytes."""

from __future__ import annotations

import hashlib
import io
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.cache.disk import DiskCache
from core.cache.lru import Lru
from core.cache.objects import ObjectCache
from core.cache.store import CachingStore
from core.cache.tee import TeeWriter
from core.cache.ttl import AdaptiveTtl
from core.metrics.registry import Metrics
from core.metrics.store import MeteredStore
from core.remote.base import ObjectNotFound, PutSource, TransientError
from core.remote.drive import DriveStore
from core.remote.folder import FolderStore
from core.remote.retry import RetryingStore
from tests.drive_server.fixture import DriveHarness, drive_fixture

drive = drive_fixture()

KiB = 1024


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def source(folder: Path, data: bytes, name: str = "src.bin") -> PutSource:
    path = folder / name
    path.write_bytes(data)
    return PutSource(
        path,
        len(data),
        hashlib.sha256(data).hexdigest(),
        hashlib.md5(data, usedforsecurity=False).hexdigest(),
    )


def remote_calls(metrics: Metrics, op: str) -> int:
    return sum(o.count for o in metrics.snapshot().ops if o.op == op)


def layer(metrics: Metrics, name: str) -> tuple[int, int]:
    for c in metrics.snapshot().cache:
        if c.layer == name:
            return c.hits, c.misses
    return 0, 0


class Setup:
    """A folder target behind metering (what the remote really did) and the cache."""

    def __init__(self, tmp: Path, *, memory: int = 1 << 20, disk: int = 4 << 20) -> None:
        self.tmp = tmp
        self.clock = Clock()
        self.remote = Metrics()  # counts remote calls only
        self.metrics = Metrics()  # the cache's layers
        self.folder = FolderStore(tmp / "target")
        self.folder.root.mkdir()
        self.memory, self.disk = memory, disk
        self.cache = self.new_cache()
        self.store = self.wrap(self.cache)

    def new_cache(self, **options: object) -> ObjectCache:
        """A fresh cache on the same disk folder: what the next service start sees."""
        return ObjectCache(
            memory_bytes=self.memory,
            disk_dir=self.tmp / "cache",
            disk_bytes=self.disk,
            metrics=self.metrics,
            ttl=AdaptiveTtl(clock=self.clock, min_s=1, base_s=10, max_s=100),
            **options,  # type: ignore[arg-type]
        )

    def wrap(self, cache: ObjectCache, **options: bool) -> CachingStore:
        metered = MeteredStore(self.folder, self.remote, "folder")
        return CachingStore(metered, cache, "ns", **options)

    async def put(self, key: str, data: bytes) -> None:
        await self.store.put(key, source(self.tmp, data))

    async def read(self, key: str, store: CachingStore | None = None, **rng: int) -> bytes:
        buf = io.BytesIO()
        await (store or self.store).get(key, buf, **rng)  # type: ignore[arg-type]
        return buf.getvalue()


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    s = Setup(tmp_path)
    yield s
    await s.store.close()


def blob(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


# the LRU and the TTL ---------------------------------------------------------------------
def test_lru_evicts_least_recently_used_within_both_bounds() -> None:
    evicted: list[str] = []
    lru: Lru[str, bytes] = Lru(
        max_entries=3, max_weight=10, weigh=len, on_evict=lambda k, _v: evicted.append(k)
    )
    for key in "abc":
        lru.put(key, b"xx")
    assert lru.get("a") == b"xx"  # a is now the most recent
    lru.put("d", b"xx")  # four entries: b (the oldest) goes
    assert evicted == ["b"] and list(lru) == ["c", "a", "d"]
    lru.put("e", b"xxxxxxx")  # 13 bytes > 10: c and a go, in age order
    assert evicted == ["b", "c", "a"] and lru.weight == 9
    assert lru.put("huge", b"x" * 11) is False and "huge" not in lru and "e" in lru
    assert lru.evictions == 3


def test_ttl_grows_for_stable_keys_read_often_and_shrinks_for_changing_ones() -> None:
    clock = Clock()
    ttl = AdaptiveTtl(min_s=2, base_s=10, max_s=300, clock=clock)
    ttl.read("rare")
    for _ in range(20):
        ttl.read("hot")
    assert ttl.ttl("hot") > ttl.ttl("rare")  # read often: trusted longer
    before = ttl.ttl("rare")
    assert ttl.refreshed("rare", changed=False) > before  # unchanged: trusted longer
    grown = ttl.refreshed("rare", changed=False)
    assert ttl.refreshed("rare", changed=True) < grown / 2  # changed: much shorter
    ttl.wrote("hot")
    ttl.wrote("hot")
    assert ttl.ttl("hot") < 10  # a key we keep writing drops below the base
    for _ in range(50):
        ttl.refreshed("rare", changed=False)
        ttl.refreshed("flappy", changed=True)
    assert ttl.ttl("rare") == 300 and ttl.ttl("flappy") == 2  # clamped both ways
    for _ in range(100):
        ttl.read("burst")
    assert ttl.ttl("burst") > 60
    clock.now += 10 * 3600  # reads decay: yesterday's burst no longer counts
    assert ttl.ttl("burst") == pytest.approx(10, rel=0.01)


# read-through layers -----------------------------------------------------------------------
async def test_reads_go_memory_then_disk_then_remote(setup: Setup) -> None:
    data = blob(40 * KiB)
    await setup.put("p/a.zst", data)
    assert await setup.read("p/a.zst") == data  # miss everywhere: one download
    assert await setup.read("p/a.zst") == data  # from memory
    assert remote_calls(setup.remote, "get") == 1
    assert layer(setup.metrics, "memory") == (1, 1)
    assert layer(setup.metrics, "disk") == (0, 1)

    restarted = setup.wrap(setup.new_cache())  # memory empty, the disk folder kept
    assert await setup.read("p/a.zst", restarted) == data
    assert remote_calls(setup.remote, "get") == 1  # from disk (after one stat to validate)
    assert remote_calls(setup.remote, "stat") == 1
    assert layer(setup.metrics, "disk") == (1, 1)
    assert await setup.read("p/a.zst", restarted) == data  # promoted into memory
    assert layer(setup.metrics, "memory") == (2, 2)
    assert remote_calls(setup.remote, "get") == 1


async def test_a_range_is_served_from_the_cached_whole_object(setup: Setup) -> None:
    data = blob(64 * KiB, seed=1)
    await setup.put("k", data)
    assert await setup.read("k") == data
    assert await setup.read("k", offset=1000, length=5000) == data[1000:6000]
    assert await setup.read("k", offset=60 * KiB) == data[60 * KiB :]
    assert remote_calls(setup.remote, "get") == 1


async def test_put_and_delete_through_the_cache_invalidate_objects_and_listings(
    setup: Setup,
) -> None:
    await setup.put("phase/s1/manifest.json", b"one")
    assert await setup.read("phase/s1/manifest.json") == b"one"
    assert [i.key async for i in setup.store.list("phase/")] == ["phase/s1/manifest.json"]
    await setup.put("phase/s1/manifest.json", b"two")  # rewritten in place, as backups do
    assert await setup.read("phase/s1/manifest.json") == b"two"
    await setup.put("phase/s2/manifest.json", b"three")
    keys = [i.key async for i in setup.store.list("phase/")]
    assert keys == ["phase/s1/manifest.json", "phase/s2/manifest.json"]
    await setup.store.delete("phase/s1/manifest.json")
    assert [i.key async for i in setup.store.list("phase/")] == ["phase/s2/manifest.json"]
    with pytest.raises(ObjectNotFound):
        await setup.read("phase/s1/manifest.json")


async def test_listings_and_stats_are_cached_for_their_ttl(setup: Setup) -> None:
    for i in range(3):
        await setup.put(f"d/{i}", blob(100, i))
    first = [i.key async for i in setup.store.list("d/")]
    again = [i.key async for i in setup.store.list("d/")]
    assert first == again and remote_calls(setup.remote, "list") == 1
    info = await setup.store.stat("d/1")  # answered by the listing
    assert info.size == 100 and remote_calls(setup.remote, "stat") == 0
    assert layer(setup.metrics, "listing") == (2, 1)
    setup.clock.now += 1000  # past any TTL
    assert [i.key async for i in setup.store.list("d/")] == first
    assert remote_calls(setup.remote, "list") == 2


async def test_a_change_behind_the_caches_back_is_seen_once_the_ttl_runs_out(
    setup: Setup,
) -> None:
    await setup.put("m", b"old contents")
    assert await setup.read("m") == b"old contents"
    await setup.folder.put("m", source(setup.tmp, b"new contents!", "other.bin"))  # another machine
    setup.clock.now += 1000
    assert await setup.read("m") == b"new contents!"  # the stat's digest no longer matched
    assert remote_calls(setup.remote, "get") == 2


@pytest.mark.parametrize("streamed", [False, True], ids=["read-whole", "streamed"])
async def test_a_corrupt_disk_entry_is_dropped_and_fetched_again(
    setup: Setup, streamed: bool
) -> None:
    data = blob(50 * KiB, seed=2)
    await setup.put("c", data)
    assert await setup.read("c") == data
    disk = setup.cache.disk
    assert disk is not None
    entry = disk.lookup("ns\x00c")
    assert entry is not None
    damaged = bytearray(entry.path.read_bytes())
    damaged[1234] ^= 0xFF  # bit rot in the cache, same size
    entry.path.write_bytes(bytes(damaged))

    setup.memory = 0  # from here on every hit is a disk read
    fresh = setup.new_cache()
    assert fresh.disk is not None
    fresh.disk.whole_read = 0 if streamed else fresh.disk.whole_read  # as big entries are
    assert await setup.read("c", setup.wrap(fresh)) == data  # never the damaged bytes
    assert remote_calls(setup.remote, "get") == 2
    assert layer(setup.metrics, "disk")[0] == 0  # not a hit
    healed = setup.new_cache()
    assert healed.disk is not None
    healed.disk.whole_read = fresh.disk.whole_read
    assert await setup.read("c", setup.wrap(healed), offset=10, length=99) == data[10:109]
    assert remote_calls(setup.remote, "get") == 2  # the fetched copy replaced the bad one
    assert layer(setup.metrics, "disk")[0] == 1


async def test_size_bounds_hold_and_the_oldest_objects_go_first(tmp_path: Path) -> None:
    setup = Setup(tmp_path, memory=64 * KiB, disk=400 * KiB)
    for i in range(8):
        await setup.put(f"o/{i}", blob(60 * KiB, i))
        assert await setup.read(f"o/{i}") == blob(60 * KiB, i)
    disk = setup.cache.disk
    assert disk is not None and disk.size <= 400 * KiB
    kept = {k.split("\x00")[1] for k in setup.cache.memory} | {
        f"o/{i}" for i in range(8) if disk.lookup(f"ns\x00o/{i}") is not None
    }
    assert "o/7" in kept and "o/0" not in kept  # newest kept, oldest evicted
    assert len(setup.cache.memory) == 0  # 60 KiB is over an eighth of 64 KiB: never in memory
    await setup.put("big", blob(150 * KiB))  # over a quarter of the disk bound
    assert await setup.read("big") == blob(150 * KiB)
    assert disk.lookup("ns\x00big") is None
    snap = {c.layer: c for c in setup.metrics.snapshot().cache}
    assert snap["disk"].evictions >= 2 and 0 < snap["disk"].bytes <= 400 * KiB


async def test_verify_mode_always_reads_the_remote_and_drops_what_it_contradicts(
    setup: Setup,
) -> None:
    await setup.put("v", b"good")
    assert await setup.read("v") == b"good"
    verify = setup.wrap(setup.cache, read_through=False)
    assert await setup.read("v", verify) == b"good"
    assert remote_calls(setup.remote, "get") == 2  # the verify read went to the remote
    await setup.folder.put("v", source(setup.tmp, b"evil", "x.bin"))  # changed elsewhere
    await verify.stat("v")  # what verify learns drops the stale copy at once
    assert await setup.read("v") == b"evil"


def test_the_tee_follows_a_rewind_like_the_caller_s_file(tmp_path: Path) -> None:
    with open(tmp_path / "dest", "w+b") as dest, open(tmp_path / "copy", "w+b") as copy:
        dest.write(b"HEAD")  # the caller's file already holds something
        tee = TeeWriter(dest, copy, limit=1000)
        tee.write(b"damaged")
        tee.seek(4)  # a store taking back a damaged download (S3 does)
        tee.truncate()
        tee.write(b"good")
        dest.seek(0)
        copy.seek(0)
        assert dest.read() == b"HEADgood" and copy.read() == b"good" and tee.kept
        tee.write(b"x" * 2000)
        assert not tee.kept  # too big to keep; the caller still got it all
    assert (tmp_path / "dest").stat().st_size == 2008


def test_the_disk_index_survives_a_restart_and_drops_leftovers(tmp_path: Path) -> None:
    disk = DiskCache(tmp_path, 1 << 20)
    disk.load()
    temp, fh = disk.new_temp()
    fh.write(b"payload")
    from core.cache.disk import digest_file

    disk.admit("k", temp, fh, digest_file(fh))
    fh.close()
    leftover, fh2 = disk.new_temp()  # a download cut short by a crash
    fh2.close()
    again = DiskCache(tmp_path, 1 << 20)
    again.load()
    entry = again.lookup("k")
    assert entry is not None and entry.digests.size == 7 and not leftover.exists()
    buf = io.BytesIO()
    again.read("k", entry, buf, 2, 3)
    assert buf.getvalue() == b"ylo"


# a real remote -----------------------------------------------------------------------------
async def test_drive_restores_read_through_the_cache(drive: DriveHarness, tmp_path: Path) -> None:
    metrics = Metrics()
    inner = DriveStore(drive.credentials(), api_root=drive.base_url, chunk_size=256 * KiB)
    clock = Clock()
    cache = ObjectCache(
        memory_bytes=4 << 20,
        disk_dir=tmp_path / "cache",
        metrics=metrics,
        ttl=AdaptiveTtl(clock=clock),
    )
    retrying = RetryingStore(inner, attempts=2, base_delay=0.01, max_delay=0.02)
    store = CachingStore(retrying, cache, "drive")
    try:
        data = blob(300 * KiB, seed=3)
        await store.put("Tierkeeper/p/sessions/s/a.zst", source(tmp_path, data))
        before = drive.traffic.count("files.get_media")
        for _ in range(3):
            assert await _read(store, "Tierkeeper/p/sessions/s/a.zst") == data
        assert drive.traffic.count("files.get_media") - before == 2  # 300 KiB: two chunks, once
        assert layer(metrics, "memory") == (2, 1)

        clock.now += 10 * 3600  # long past the TTL, and Drive is down: serve what we have
        drive.faults.server_error(503, times=None)
        assert await _read(store, "Tierkeeper/p/sessions/s/a.zst") == data
        with pytest.raises(TransientError):  # what we never read cannot come from anywhere
            await _read(store, "Tierkeeper/p/other")
        drive.faults.clear()

        await store.put("Tierkeeper/p/sessions/s/a.zst", source(tmp_path, b"replaced", "b"))
        assert await _read(store, "Tierkeeper/p/sessions/s/a.zst") == b"replaced"
    finally:
        await store.close()


async def _read(store: CachingStore, key: str) -> bytes:
    buf = io.BytesIO()
    await store.get(key, buf)
    return buf.getvalue()


# through the service ---------------------------------------------------------------------
async def test_a_second_restore_from_drive_costs_no_download(
    drive: DriveHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.config import TargetConfig
    from core.models import JobState
    from core.service import Service
    from core.tier2.drive_target import keep_tokens
    from tests.support import CLAUDE_FIXTURES

    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    async with await Service.start(tmp_path / "ws", schedule=False) as svc:
        await svc.import_now([str(CLAUDE_FIXTURES / "claude-code-log-cases")])
        gd = TargetConfig(name="gd", kind="drive", client_id=drive.server.client_id,
                          token_uri=drive.server.token_uri, api_root=drive.base_url)  # fmt: skip
        keep_tokens(gd, svc.scope, drive.credentials().refresh_token, drive.server.client_secret)
        svc.config.targets.append(gd)
        sid = (await svc.list_sessions())[0].id
        assert (await svc.jobs.wait((await svc.start_backup([sid], "gd")).id)).state == (
            JobState.DONE
        )

        first = await svc.restore(sid, tmp_path / "r1", target="gd")
        before = drive.traffic.count("files.get_media")
        second = await svc.restore(sid, tmp_path / "r2", target="gd")
        assert drive.traffic.count("files.get_media") == before  # all from the cache
        assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
        asked = drive.traffic.count("files.list")
        results = await svc.verify("gd")  # verify still asks the target itself
        assert all(r.ok for r in results)
        assert drive.traffic.count("files.list") > asked


async def test_a_restore_from_a_folder_reads_the_folder_and_keeps_no_copy(
    tmp_path: Path,
) -> None:
    """A copy of every restored file in the cache doubled a restore from a folder, to
    save a read that costs what reading the copy costs."""
    from core.models import JobState
    from core.service import Service
    from tests.support import CLAUDE_FIXTURES

    async with await Service.start(tmp_path / "ws", schedule=False) as svc:
        await svc.import_now([str(CLAUDE_FIXTURES)])
        await svc.add_folder_target("disk", str(tmp_path / "disk"))
        sid = (await svc.list_sessions())[0].id
        job = await svc.start_backup([sid], "disk")
        assert (await svc.jobs.wait(job.id)).state == JobState.DONE

        def downloads() -> int:
            ops = svc.metrics.snapshot().ops
            return sum(o.count for o in ops if o.op == "get" and o.tier == "folder")

        first = await svc.restore(sid, tmp_path / "r1", target="disk")
        before = downloads()
        second = await svc.restore(sid, tmp_path / "r2", target="disk")
        assert downloads() > before  # read from the folder again
        assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
        cached = tmp_path / "ws" / "cache" / "objects"
        assert not cached.is_dir() or not [p for p in cached.rglob("*") if p.is_file()]
