"""`phase_insights.html`: the report as one self-contained page.

Charts are inlined as `data:` URIs and the style sheet is in the page, so it
opens from a mail attachment or a Drive preview with nothing beside it. Every
piece of text goes through `html.escape`: error examples and titles come from
transcripts, and a page that ran their `<script>` would run it with the
reader's file access. The page carries a Content-Security-Policy that allows
no script at all, as a second lock.
"""

from __future__ import annotations

import base64
from html import escape

from core.review.document import Advice, Block, Chart, Paragraph, Section, TableBlock

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:70em;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0 1.2em}caption{text-align:left;font-style:italic}
td,th{border:1px solid #ddd;padding:.25em .6em;vertical-align:top}th{background:#f4f4f4}
td.n{text-align:right;font-variant-numeric:tabular-nums}
td.x{white-space:pre-wrap;font-family:ui-monospace,monospace;font-size:.9em;max-width:50em}
li.warn{color:#8a1f11}img{max-width:100%}
"""

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _table(t: TableBlock) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in t.headers)
    body = []
    for row in t.rows:
        cells = []
        for i, cell in enumerate(row):
            cls = ' class="n"' if i in t.numeric else (' class="x"' if "\n" in cell else "")
            cells.append(f"<td{cls}>{escape(cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    caption = f"<caption>{escape(t.caption)}</caption>" if t.caption else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _block(b: Block, charts: dict[str, bytes]) -> str:
    if isinstance(b, Paragraph):
        return f"<p>{escape(b.text)}</p>"
    if isinstance(b, TableBlock):
        return _table(b)
    if isinstance(b, Chart):
        png = charts.get(b.name)
        if png is None:
            return ""
        uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        return f'<p><img src="{uri}" alt="{escape(b.alt)}"></p>'
    return _advice(b)


def _advice(b: Advice) -> str:
    rec = b.rec
    evidence = "".join(f"<li>{escape(e.label)}: {escape(e.value)}</li>" for e in rec.evidence)
    return (
        f'<ul><li class="{escape(rec.severity)}"><strong>{escape(rec.title)}</strong> — '
        f"{escape(rec.detail)}<ul>{evidence}</ul></li></ul>"
    )


def render(title: str, sections: list[Section], charts: dict[str, bytes]) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
    ]
    for section in sections:
        parts.append(f"<section><h2>{escape(section.title)}</h2>")
        parts += [_block(b, charts) for b in section.blocks]
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
