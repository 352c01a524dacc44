"""The table's numbers and times: what a person reads must be right to the unit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gui.format import (
    DASH,
    home_relative,
    human_ago,
    human_cost,
    human_count,
    human_duration,
    human_size,
    human_time,
    parse_ts,
    shorten,
)


@pytest.fixture
def utc_local(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 kB"),
        (1536, "1.5 kB"),
        (999_499, "999 kB"),
        (1_250_000, "1.2 MB"),
        (84_000_000, "84.0 MB"),
        (3_400_000_000, "3.4 GB"),
        (None, DASH),
        (-1, DASH),
    ],
)
def test_human_size(n: int | None, text: str) -> None:
    assert human_size(n) == text


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0"), (999, "999"), (1000, "1.0k"), (12_345, "12.3k"), (250_000, "250k"),
     (3_400_000, "3.4M"), (None, DASH)],
)  # fmt: skip
def test_human_count(n: int | None, text: str) -> None:
    assert human_count(n) == text


@pytest.mark.parametrize(
    ("usd", "text"),
    [(0.0, DASH), (None, DASH), (0.004, "<$0.01"), (0.42, "$0.42"), (12.5, "$12.50"),
     (1234.4, "$1,234")],
)  # fmt: skip
def test_human_cost(usd: float | None, text: str) -> None:
    assert human_cost(usd) == text


@pytest.mark.parametrize(
    ("s", "text"),
    [(0.42, "0.4 s"), (12.4, "12 s"), (185, "3 min 5 s"), (180, "3 min"),
     (7800, "2 h 10 min"), (None, DASH)],
)  # fmt: skip
def test_human_duration(s: float | None, text: str) -> None:
    assert human_duration(s) == text


def test_parse_ts_accepts_z_and_naive_as_utc() -> None:
    assert parse_ts("2025-06-12T14:03:00Z") == datetime(2025, 6, 12, 14, 3, tzinfo=UTC)
    assert parse_ts("2025-06-12T14:03:00") == datetime(2025, 6, 12, 14, 3, tzinfo=UTC)
    assert parse_ts("not a time") is None
    assert parse_ts(None) is None


def test_human_time_shows_only_the_date_parts_needed(utc_local: None) -> None:
    now = datetime(2025, 6, 12, 18, 0, tzinfo=UTC)
    assert human_time("2025-06-12T14:03:00.123Z", now=now) == "14:03"
    assert human_time("2025-03-02T09:15:00Z", now=now) == "2 Mar 09:15"
    assert human_time("2024-12-31T23:59:00Z", now=now) == "31 Dec 2024 23:59"
    assert human_time(None, now=now) == DASH
    assert human_time("garbage", now=now) == "garbage"  # shown as stored, not hidden


def test_human_time_uses_local_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # UTC+9, no DST
    time.tzset()
    try:
        now = datetime(2025, 6, 12, 1, 0, tzinfo=UTC)
        assert human_time("2025-06-12T00:30:00Z", now=now) == "09:30"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_human_ago() -> None:
    now = datetime(2025, 6, 12, 18, 0, tzinfo=UTC)
    assert human_ago("2025-06-12T17:59:30Z", now=now) == "just now"
    assert human_ago("2025-06-12T17:55:00Z", now=now) == "5 min ago"
    assert human_ago("2025-06-12T15:00:00Z", now=now) == "3 h ago"
    assert human_ago("2025-06-11T18:00:00Z", now=now) == "1 day ago"
    assert human_ago("2025-06-02T18:00:00Z", now=now) == "10 days ago"
    assert human_ago(None, now=now) == "never"


def test_shorten_flattens_and_cuts() -> None:
    assert shorten("a\n  b\tc", 10) == "a b c"
    assert shorten("abcdefghijk", 5) == "abcd…"
    assert shorten(None, 5) == ""


def test_home_relative() -> None:
    assert home_relative(Path.home() / "agent-work" / "x") == "~/agent-work/x"
    assert home_relative(Path("/srv/data")) == "/srv/data"


def test_a_message_shows_an_apostrophe_not_its_entity(qtbot) -> None:  # type: ignore[no-untyped-def]
    """Messages are escaped HTML; one without a tag was shown as plain text, so an error
    like "does not open usb's backups" read "usb&#x27;s"."""
    from PySide6.QtGui import QTextDocument

    from gui.wizard_common import Message

    message = Message()
    qtbot.addWidget(message)
    said = "That passphrase does not open usb's backups — check it"
    message.error(said)
    shown = QTextDocument()
    shown.setHtml(message.text())
    assert message.textFormat().name == "RichText" and shown.toPlainText() == said
