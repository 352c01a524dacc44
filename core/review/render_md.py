"""`phase_insights.md`: the report as Markdown, charts linked as files beside it.

Transcript text reaches the report (error examples, session titles), and most
Markdown viewers render inline HTML, so every cell and paragraph is escaped:
HTML's `<`, `>`, `&` become entities and Markdown's own punctuation gets a
backslash. A `<script>` from a transcript then shows as text, and a `|` in an
error message cannot break its table.
"""

from __future__ import annotations

import re

from core.review.document import Advice, Block, Chart, Paragraph, Section, TableBlock

CHARTS_DIR = "charts"

_MD_SPECIAL = re.compile(r"([\\`*_\[\]{}#|!~])")


def escape(value: str) -> str:
    """One line of plain text, safe inside a paragraph or a table cell."""
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    value = _MD_SPECIAL.sub(r"\\\1", value)
    return " ".join(value.split())


def _table(t: TableBlock) -> list[str]:
    lines = [f"*{escape(t.caption)}*", ""] if t.caption else []
    headers = [escape(h) or " " for h in t.headers]
    lines.append("| " + " | ".join(headers) + " |")
    lines.append(
        "|" + "|".join("---:" if i in t.numeric else "---" for i in range(len(headers))) + "|"
    )
    lines += ["| " + " | ".join(escape(c) for c in row) + " |" for row in t.rows]
    return [*lines, ""]


def _block(b: Block) -> list[str]:
    if isinstance(b, Paragraph):
        return [escape(b.text), ""]
    if isinstance(b, TableBlock):
        return _table(b)
    if isinstance(b, Chart):
        return [f"![{escape(b.alt)}]({CHARTS_DIR}/{b.name})", ""]
    rec = b.rec
    mark = "⚠" if rec.severity == "warn" else "ℹ"
    lines = [f"- {mark} **{escape(rec.title)}** — {escape(rec.detail)}"]
    lines += [f"  - {escape(e.label)}: {escape(e.value)}" for e in rec.evidence]
    return lines


def render(title: str, sections: list[Section]) -> str:
    lines = [f"# {escape(title)}", ""]
    for section in sections:
        lines += [f"## {escape(section.title)}", ""]
        for block in section.blocks:
            lines += _block(block)
        if section.blocks and isinstance(section.blocks[-1], Advice):
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"
