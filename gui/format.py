"""Numbers and times as a person reads them in a table cell.

Kept free of Qt so the rules can be unit-tested on plain values and reused by
any widget; every function accepts "nothing known" and answers with a dash
rather than raising, because half-imported data is normal.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

DASH = "—"
_SIZE_UNITS = ("B", "kB", "MB", "GB", "TB", "PB")


def human_size(n: int | float | None) -> str:
    """Decimal units (1 kB = 1000 B), matching what file managers and cloud consoles show."""
    if n is None or n < 0:
        return DASH
    value = float(n)
    for unit in _SIZE_UNITS:
        if value < 1000 or unit == _SIZE_UNITS[-1]:
            if unit == "B":
                return f"{int(value)} B"
            return f"{value:.0f} {unit}" if value >= 100 else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def human_count(n: int | None) -> str:
    """Token counts: exact below a thousand, then one decimal with k/M/B."""
    if n is None:
        return DASH
    if abs(n) < 1000:
        return str(n)
    value = float(n)
    for suffix in ("k", "M", "B"):
        value /= 1000
        if abs(value) < 1000 or suffix == "B":
            return f"{value:.0f}{suffix}" if abs(value) >= 100 else f"{value:.1f}{suffix}"
    raise AssertionError("unreachable")  # pragma: no cover


def human_cost(usd: float | None) -> str:
    if usd is None or usd <= 0:
        return DASH
    if usd < 0.01:
        return "<$0.01"
    if usd < 100:
        return f"${usd:.2f}"
    return f"${usd:,.0f}"


def human_duration(seconds: float | None) -> str:
    """Short durations for ETAs and job times: "0.4 s", "12 s", "3 min 5 s", "2 h 10 min"."""
    if seconds is None or seconds < 0:
        return DASH
    if seconds < 10:
        return f"{seconds:.1f} s"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    minutes, s = divmod(s, 60)
    if minutes < 60:
        return f"{minutes} min {s} s" if s else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def parse_ts(value: str | None) -> datetime | None:
    """An ISO 8601 timestamp (a trailing Z allowed) as an aware datetime; naive means UTC."""
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def human_time(value: str | datetime | None, *, now: datetime | None = None) -> str:
    """Local wall-clock time, with only as much date as is needed to place it.

    Today → "14:03"; this year → "12 Jun 14:03"; otherwise "12 Jun 2024 14:03".
    """
    dt = parse_ts(value) if isinstance(value, str) or value is None else value
    if dt is None:
        return DASH if value is None or value == "" else str(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    local = dt.astimezone()
    ref = (now or datetime.now(UTC)).astimezone(local.tzinfo)
    if local.date() == ref.date():
        return local.strftime("%H:%M")
    if local.year == ref.year:
        return f"{local.day} {local.strftime('%b %H:%M')}"
    return f"{local.day} {local.strftime('%b %Y %H:%M')}"


def human_ago(value: str | datetime | None, *, now: datetime | None = None) -> str:
    """How long ago, coarsely: "just now", "5 min ago", "3 h ago", "2 days ago"."""
    dt = parse_ts(value) if isinstance(value, str) or value is None else value
    if dt is None:
        return "never"
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = ((now or datetime.now(UTC)) - dt).total_seconds()
    if delta < 45:
        return "just now"
    if delta < 3600:
        return f"{max(1, round(delta / 60))} min ago"
    if delta < 86400:
        return f"{round(delta / 3600)} h ago"
    days = round(delta / 86400)
    return "1 day ago" if days == 1 else f"{days} days ago"


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def shorten(text: str | None, limit: int) -> str:
    """One line, at most `limit` characters, with an ellipsis when cut."""
    if not text:
        return ""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: max(0, limit - 1)].rstrip() + "…"


def home_relative(path: Path) -> str:
    """`~/x` for paths under the home folder: shorter, and no user name in screenshots."""
    try:
        return "~/" + path.relative_to(Path.home()).as_posix()
    except ValueError:
        return str(path)


def target_where(kind: str, where: str) -> str:
    """A target's place as a person reads it: a folder under home as `~/…`."""
    return home_relative(Path(where)) if kind == "folder" else where


def first_part(reason: str | None) -> str:
    """A wait reason without its terminal advice (" — run `tierkeeper …`"): the card and
    the dialogs offer the button, and name the command once, small, below."""
    return (reason or "").split(" — ", 1)[0].strip()
