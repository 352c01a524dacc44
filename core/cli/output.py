"""How the CLI speaks: data on stdout (a table, or JSON with --json), the rest on stderr."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from core.models import TargetInfo

out = Console(soft_wrap=False)
err = Console(stderr=True, soft_wrap=True)


def emit_json(data: Any) -> None:
    sys.stdout.buffer.write(
        orjson.dumps(_plain(data), option=orjson.OPT_INDENT_2, default=str) + b"\n"
    )
    sys.stdout.flush()


def _plain(data: Any) -> Any:
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    if isinstance(data, list | tuple):
        return [_plain(d) for d in data]
    if isinstance(data, dict):
        return {k: _plain(v) for k, v in data.items()}
    if hasattr(data, "__dataclass_fields__"):
        return {k: _plain(getattr(data, k)) for k in data.__dataclass_fields__}
    return data


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> None:
    t = Table(title=title, show_lines=False, header_style="bold")
    for col in columns:
        justify = (
            "right"
            if col.endswith(("tokens", "count", "messages", "cost", "size", "calls"))
            else "left"
        )
        t.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    out.print(t)


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def short_ts(ts: str | None) -> str:
    return "" if not ts else ts.replace("T", " ")[:16]


def backup_line(t: TargetInfo) -> str:
    """What a backup target holds, for `status` and the `sessions` footer: how many
    sessions, since when, and anything that needs a look."""
    if not t.sessions:
        text = "nothing backed up yet"
    else:
        text = f"{t.sessions} session{'s' * (t.sessions != 1)}, {human_bytes(t.stored_bytes)}"
        text += f", last {short_ts(t.last_backup_at)} UTC" if t.last_backup_at else ""
    if t.verify_failures:
        text += (
            f"; {t.verify_failures} failed their verify: `tierkeeper backup --target {t.name}`"
            " stores fresh copies"
        )
    if t.waiting_jobs:
        text += f"; {t.waiting_jobs} job(s) waiting" + (
            f": {t.wait_reason}" if t.wait_reason else ""
        )
    return text


NO_TARGET = "no backup target yet: `tierkeeper target add folder NAME PATH` (or drive)"
