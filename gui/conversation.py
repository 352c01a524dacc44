"""A session's messages as rich text for a QTextBrowser.

Tool payloads and very long texts are folded to one line with a link that
unfolds them (`toggle:<message id>`), so a session reads as a conversation
rather than a dump. Every message carries an anchor `m<id>` to scroll to.
All transcript text is escaped: it often contains HTML.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtGui import QPalette

from core.models import MessageView, SessionDetail
from gui.format import home_relative, human_size, human_time, plural, shorten
from gui.palette import mix, muted

TEXT_LIMIT = 3000
TOOLS_EXPANDED_LIMIT = 20000
TOGGLE = "toggle:"


@dataclass(frozen=True)
class Colors:
    text: str
    muted: str
    panel: str
    user: str
    assistant: str
    other: str
    link: str
    focus: str

    @classmethod
    def from_palette(cls, pal: QPalette) -> Colors:
        dark = pal.color(QPalette.ColorRole.Window).lightness() < 128
        return cls(
            text=pal.color(QPalette.ColorRole.Text).name(),
            muted=muted(pal, on_base=True).name(),
            panel=pal.color(QPalette.ColorRole.AlternateBase).name(),
            user="#7fb3ff" if dark else "#1f5fbf",
            assistant="#6fd39c" if dark else "#1d7a4c",
            other="#c8a86a" if dark else "#8a6414",
            link=pal.color(QPalette.ColorRole.Link).name(),
            # Qt's rich text has no alpha blending, so the tint is mixed here
            focus=mix(
                pal.color(QPalette.ColorRole.Highlight), pal.color(QPalette.ColorRole.Base), 0.25
            ).name(),
        )


def message_anchor(message_id: int) -> str:
    return f"m{message_id}"


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _role_color(role: str | None, c: Colors) -> str:
    return {"user": c.user, "assistant": c.assistant}.get(role or "", c.other)


def _header(detail: SessionDetail, c: Colors) -> str:
    s = detail.session
    title = _esc(s.title or s.id)
    facts = [
        s.project,
        s.agent or s.source,
        s.model,
        f"{human_time(s.started_at)} – {human_time(s.ended_at)}" if s.started_at else None,
        plural(s.message_count, "message"),
    ]
    line = " · ".join(_esc(f) for f in facts if f)
    files = "".join(
        f"<div style='color:{c.muted}'>{_esc(src.role)}: {_esc(home_relative(Path(src.path)))} "
        f"({_esc(src.format)}, {human_size(src.size)}"
        + (f", {plural(src.bad_lines, 'unreadable line')}" if src.bad_lines else "")
        + ")</div>"
        for src in detail.sources
    )
    return (
        f"<div style='font-size:large; font-weight:600'>{title}</div>"
        f"<div style='color:{c.muted}'>{line}</div>"
        f"<div style='color:{c.muted}'>id {_esc(s.id)}</div>{files}<hr/>"
    )


def _message(m: MessageView, expanded: set[int], c: Colors, focus: int | None) -> str:
    role = m.role or m.type or "event"
    meta = " · ".join(_esc(x) for x in (human_time(m.ts) if m.ts else None, m.model) if x)
    parts = [
        f"<a name='{message_anchor(m.id)}'></a>"
        f"<span style='color:{_role_color(m.role, c)}; font-weight:600'>{_esc(role)}</span>"
        + (f" <span style='color:{c.muted}'>· {meta}</span>" if meta else "")
    ]
    is_open = m.id in expanded
    if m.text and m.role == "metadata":  # sidecar JSON: one folded line until asked for
        if is_open:
            parts.append(
                f"<div><a href='{TOGGLE}{m.id}'>▾ details</a></div>"
                f"<div style='white-space:pre-wrap; font-family:monospace; color:{c.muted}'>"
                f"{_esc(m.text[:TOOLS_EXPANDED_LIMIT])}</div>"
            )
        else:
            parts.append(
                f"<div style='color:{c.muted}'><a href='{TOGGLE}{m.id}'>▸ details</a> "
                f"{_esc(shorten(m.text, 140))}</div>"
            )
    elif m.text:
        text = m.text if is_open or len(m.text) <= TEXT_LIMIT else m.text[:TEXT_LIMIT]
        parts.append(f"<div style='white-space:pre-wrap'>{_esc(text.strip())}</div>")
        if len(m.text) > TEXT_LIMIT:
            label = "show less" if is_open else f"show all {len(m.text):,} characters"
            parts.append(f"<div><a href='{TOGGLE}{m.id}'>{label}</a></div>")
    if m.tools:
        if is_open:
            body = m.tools[:TOOLS_EXPANDED_LIMIT]
            more = "" if len(m.tools) <= TOOLS_EXPANDED_LIMIT else "\n…"
            parts.append(
                f"<div><a href='{TOGGLE}{m.id}'>▾ tools</a></div>"
                f"<div style='white-space:pre-wrap; font-family:monospace; color:{c.muted}'>"
                f"{_esc(body)}{more}</div>"
            )
        else:
            parts.append(
                f"<div style='color:{c.muted}'><a href='{TOGGLE}{m.id}'>▸ tools</a> "
                f"{_esc(shorten(m.tools, 140))}</div>"
            )
    if m.parse_error:
        parts.append(
            f"<div style='color:{c.other}'>kept raw, not parsed: {_esc(m.parse_error)}</div>"
        )
    if not m.text and not m.tools and not m.parse_error:
        parts.append(f"<div style='color:{c.muted}'>(no text)</div>")
    return (
        f"<table width='100%' cellspacing='0' cellpadding='6' "
        f"style='background-color:{c.focus if m.id == focus else c.panel}; margin-bottom:6px'>"
        "<tr><td>" + "".join(parts) + "</td></tr></table>"
    )


def render_conversation(
    detail: SessionDetail, expanded: set[int], colors: Colors, focus: int | None = None
) -> str:
    """The whole session; the message `focus` (a search hit) is tinted."""
    body = "".join(_message(m, expanded, colors, focus) for m in detail.messages)
    if not detail.messages and detail.session.in_backup_only:
        body = (
            f"<p style='color:{colors.muted}'>This session is in a backup only: its messages "
            "are not on this computer. <b>Bring back</b> fetches them from the backup.</p>"
        )
    elif not detail.messages:
        body = f"<p style='color:{colors.muted}'>This session has no stored messages.</p>"
    return f"<div style='color:{colors.text}'>{_header(detail, colors)}{body}</div>"
