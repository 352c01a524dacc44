"""RetryingStore around a real FolderStore; faults injected only where a disk cannot make them."""

from __future__ import annotations

import hashlib
import io
import random
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

import pytest

from core.remote.base import (
    NeedsReconnect,
    ObjectInfo,
    ObjectNotFound,
    PermanentError,
    ProgressFn,
    PutSource,
    ResumeSlot,
    Store,
    TransientError,
)
from core.remote.folder import FolderStore
from core.remote.retry import RetryingStore


def make_source(path: Path, data: bytes) -> PutSource:
    path.write_bytes(data)
    return PutSource(
        path, len(data), hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest()
    )


class FlakyStore(FolderStore):
    """A real folder store whose first `fail[op]` calls of an operation raise TransientError."""

    def __init__(self, root: Path, fail: dict[str, int] | None = None) -> None:
        super().__init__(root, name="flaky")
        self.fail = Counter(fail or {})
        self.calls: Counter[str] = Counter()
        self.raised: list[TransientError] = []
        self.get_ranges: list[tuple[int, int | None]] = []
        self.get_partial = False
        self.delete_then_fail = False
        self.list_fail_after_first = False
        self.fatal: Exception | None = None

    def _hit(self, op: str) -> None:
        self.calls[op] += 1
        if self.fatal is not None:
            raise self.fatal
        if self.fail[op] > 0:
            self.fail[op] -= 1
            err = TransientError(f"{op} #{self.calls[op]}: connection reset")
            self.raised.append(err)
            raise err

    async def put(
        self,
        key: str,
        source: PutSource,
        progress: ProgressFn | None = None,
        *,
        resume: ResumeSlot | None = None,
    ) -> ObjectInfo:
        self._hit("put")
        return await super().put(key, source, progress, resume=resume)

    async def get(
        self,
        key: str,
        dest: BinaryIO,
        *,
        offset: int = 0,
        length: int | None = None,
        progress: ProgressFn | None = None,
    ) -> int:
        self.get_ranges.append((offset, length))
        if self.get_partial and self.fail["get"] > 0:
            # the connection drops after half of the range has been written
            half = (length if length is not None else 1000) // 2
            await super().get(key, dest, offset=offset, length=half)
        self._hit("get")
        return await super().get(key, dest, offset=offset, length=length, progress=progress)

    async def stat(self, key: str) -> ObjectInfo:
        self._hit("stat")
        return await super().stat(key)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        self._hit("list")
        async for info in super().list(prefix):
            yield info
            if self.list_fail_after_first:
                raise TransientError("listing dropped after the first page")

    async def delete(self, key: str) -> None:
        if self.delete_then_fail and self.calls["delete"] == 0:
            self.calls["delete"] += 1
            await super().delete(key)  # done on the server, but the answer was lost
            raise TransientError("connection reset after delete")
        self._hit("delete")
        await super().delete(key)


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


class AlwaysTop(random.Random):
    """Jitter pinned to its upper bound, so the exponential cap itself is visible."""

    def random(self) -> float:
        return 1.0


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "backup"
    r.mkdir()
    return r


async def test_transient_failures_are_retried_until_success(root: Path, tmp_path: Path) -> None:
    inner = FlakyStore(root, {"put": 2, "stat": 3})
    sleeps = Sleeps()
    store: Store = RetryingStore(inner, attempts=6, base_delay=0.5, max_delay=30, sleep=sleeps)
    src = make_source(tmp_path / "src", b"session data")

    info = await store.put("p1/s1/a", src)
    assert info.sha256 == src.sha256
    assert inner.calls["put"] == 3
    assert len(sleeps.delays) == 2

    assert (await store.stat("p1/s1/a")).md5 == src.md5
    assert inner.calls["stat"] == 4
    assert len(sleeps.delays) == 5
    assert store.name == "flaky"


async def test_delays_grow_exponentially_and_stop_at_max(root: Path) -> None:
    inner = FlakyStore(root, {"stat": 100})
    sleeps = Sleeps()
    store = RetryingStore(
        inner, attempts=8, base_delay=0.5, max_delay=4.0, sleep=sleeps, rng=AlwaysTop()
    )
    with pytest.raises(TransientError, match="gave up after 8 attempts"):
        await store.stat("k")
    assert sleeps.delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]


async def test_jittered_delays_stay_under_the_cap(root: Path) -> None:
    inner = FlakyStore(root, {"stat": 100})
    sleeps = Sleeps()
    store = RetryingStore(
        inner, attempts=31, base_delay=0.25, max_delay=5.0, sleep=sleeps, rng=random.Random(7)
    )
    with pytest.raises(TransientError, match="gave up after 31 attempts"):
        await store.stat("k")
    assert len(sleeps.delays) == 30
    for retry, delay in enumerate(sleeps.delays, start=1):
        assert 0.0 <= delay <= min(5.0, 0.25 * 2 ** (retry - 1))
    assert max(sleeps.delays) <= 5.0
    assert len(set(sleeps.delays)) > 1  # jittered, not a fixed schedule


async def test_a_retry_after_from_the_server_is_honoured(root: Path, tmp_path: Path) -> None:
    class AskToWait(FlakyStore):
        def _hit(self, op: str) -> None:
            self.calls[op] += 1
            if self.calls[op] == 1:
                raise TransientError("429 rate limited", retry_after=7.0)

    sleeps = Sleeps()
    store = RetryingStore(AskToWait(root), base_delay=0.1, max_delay=30, sleep=sleeps)
    await store.put("a.bin", make_source(tmp_path / "src", b"x" * 10))
    assert len(sleeps.delays) == 1
    assert sleeps.delays[0] >= 7.0  # not the 0.1 s jitter the policy alone would pick


async def test_gives_up_with_the_last_error_saying_how_often(root: Path) -> None:
    inner = FlakyStore(root, {"stat": 100})
    sleeps = Sleeps()
    store = RetryingStore(inner, attempts=4, sleep=sleeps)

    with pytest.raises(TransientError) as caught:
        await store.stat("k")

    assert caught.value is inner.raised[-1]
    assert "stat #4: connection reset" in str(caught.value)
    assert "gave up after 4 attempts" in str(caught.value)
    assert inner.calls["stat"] == 4
    assert len(sleeps.delays) == 3


@pytest.mark.parametrize(
    "fatal",
    [
        PermanentError("quota exceeded"),
        ObjectNotFound("no such key"),
        NeedsReconnect("token revoked"),
    ],
)
async def test_non_transient_errors_pass_through_at_once(
    root: Path, tmp_path: Path, fatal: Exception
) -> None:
    inner = FlakyStore(root)
    inner.fatal = fatal
    sleeps = Sleeps()
    store = RetryingStore(inner, sleep=sleeps)
    with pytest.raises(type(fatal)) as caught:
        await store.put("k", make_source(tmp_path / "src", b"x"))
    assert caught.value is fatal
    assert inner.calls["put"] == 1
    assert sleeps.delays == []


async def test_real_permanent_and_missing_errors_are_not_retried(
    root: Path, tmp_path: Path
) -> None:
    inner = FlakyStore(root)
    sleeps = Sleeps()
    store = RetryingStore(inner, sleep=sleeps)
    with pytest.raises(ObjectNotFound):
        await store.get("absent", io.BytesIO())
    with pytest.raises(PermanentError):
        await store.put("../escape", make_source(tmp_path / "src", b"x"))
    assert inner.calls["get"] == 1 and inner.calls["put"] == 1
    assert sleeps.delays == []


async def test_waits_for_a_disk_that_is_plugged_in_meanwhile(tmp_path: Path) -> None:
    """No injection: the folder is really missing until the second pause."""
    root = tmp_path / "usb"
    delays: list[float] = []

    async def plug_in_later(delay: float) -> None:
        delays.append(delay)
        if len(delays) == 2:
            root.mkdir()

    store = RetryingStore(FolderStore(root), sleep=plug_in_later)
    info = await store.put("k", make_source(tmp_path / "src", b"waited for the disk"))
    assert info.size == 19
    assert len(delays) == 2
    assert (root / "k").read_bytes() == b"waited for the disk"


async def test_get_retry_continues_where_the_failed_attempt_stopped(
    root: Path, tmp_path: Path
) -> None:
    data = bytes(range(256)) * 8
    inner = FlakyStore(root, {"get": 1})
    inner.get_partial = True
    store = RetryingStore(inner, sleep=Sleeps())
    await store.put("blob", make_source(tmp_path / "src", data))

    buf = io.BytesIO(b"header:")
    buf.seek(0, io.SEEK_END)
    n = await store.get("blob", buf, offset=100, length=1000)

    assert n == 1000
    assert buf.getvalue() == b"header:" + data[100:1100]
    assert inner.get_ranges == [(100, 1000), (600, 500)]


async def test_list_retries_only_before_the_first_item(root: Path, tmp_path: Path) -> None:
    inner = FlakyStore(root, {"list": 2})
    store = RetryingStore(inner, sleep=Sleeps())
    for key in ("b", "a", "c"):
        await inner.put(key, make_source(tmp_path / "src", key.encode()))

    assert [i.key async for i in store.list()] == ["a", "b", "c"]
    assert inner.calls["list"] == 3

    inner.list_fail_after_first = True
    seen: list[str] = []
    with pytest.raises(TransientError, match="first page"):
        async for info in store.list():
            seen.append(info.key)
    assert seen == ["a"]  # nothing repeated: the failure after an item is the caller's
    assert inner.calls["list"] == 4


async def test_delete_whose_answer_was_lost_counts_as_done(root: Path, tmp_path: Path) -> None:
    inner = FlakyStore(root)
    store = RetryingStore(inner, sleep=Sleeps())
    await store.put("k", make_source(tmp_path / "src", b"x"))
    inner.delete_then_fail = True

    await store.delete("k")

    assert not (root / "k").exists()
    assert inner.calls["delete"] == 2
    with pytest.raises(ObjectNotFound):
        await store.delete("k")  # on a first attempt, missing is still an error


def test_bad_settings_refused(root: Path) -> None:
    with pytest.raises(ValueError):
        RetryingStore(FolderStore(root), attempts=0)
    with pytest.raises(ValueError):
        RetryingStore(FolderStore(root), base_delay=-1)
