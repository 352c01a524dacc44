"""The lane: digests taken beside the build must equal inline ones, and a failed
check must stop the build that queued it."""

from __future__ import annotations

import hashlib
import os

import pytest

from core.lane import Lane


def test_digests_equal_hashing_inline_in_order() -> None:
    chunks = [os.urandom(n) for n in (0, 1, 4096, 300_000, 17, 1 << 20)] * 5
    lane = Lane(depth=4)
    a, b = hashlib.sha256(), hashlib.sha256()
    for chunk in chunks:
        lane.update(a, chunk)
        lane.update(b, chunk[::-1])
    lane.close()
    assert a.hexdigest() == hashlib.sha256(b"".join(chunks)).hexdigest()
    assert b.hexdigest() == hashlib.sha256(b"".join(c[::-1] for c in chunks)).hexdigest()


def test_a_check_sees_every_update_queued_before_it() -> None:
    lane = Lane(depth=2)
    sha = hashlib.sha256()
    seen: list[str] = []
    for i in range(50):
        lane.update(sha, bytes([i]) * 10_000)
        lane.then(lambda: seen.append(sha.copy().hexdigest()))
    lane.close()
    expected = hashlib.sha256()
    for i in range(50):
        expected.update(bytes([i]) * 10_000)
        assert seen[i] == expected.hexdigest()


def test_a_failed_check_is_raised_in_the_producer_and_at_close() -> None:
    lane = Lane(depth=2)
    sha = hashlib.sha256()

    def check() -> None:
        raise ValueError("member 3 differs")

    lane.then(check)
    with pytest.raises(ValueError, match="member 3 differs"):
        for _ in range(1000):  # raised at a later call, once the lane has run the check
            lane.update(sha, b"x" * 1024)
    with pytest.raises(ValueError, match="member 3 differs"):
        lane.close()


def test_abandon_returns_even_with_a_full_queue() -> None:
    lane = Lane(depth=1)
    sha = hashlib.sha256()
    for _ in range(3):
        lane.update(sha, b"y" * (1 << 20))
    lane.abandon()  # no error to raise, and no hang
    lane.abandon()
