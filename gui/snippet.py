"""Search snippets as rich text, matches in bold.

The service marks each match with `HIT_START`/`HIT_END` (control characters
that never occur in transcript text), so highlighting needs no guessing.
Everything else is escaped: a transcript that contains HTML (agents write a
lot of it) shows as text and can never inject markup into the results list.
"""

from __future__ import annotations

import html

from core.models import HIT_END, HIT_START


def snippet_html(snippet: str) -> str:
    """`\\x02foo\\x03 bar <b>` → `<b>foo</b> bar &lt;b&gt;`, whitespace collapsed."""
    flat = " ".join(snippet.split())
    out: list[str] = []
    for i, part in enumerate(flat.split(HIT_START)):
        if i == 0:
            out.append(html.escape(part.replace(HIT_END, ""), quote=False))
            continue
        hit, _, rest = part.partition(HIT_END)
        out.append(f"<b>{html.escape(hit, quote=False)}</b>")
        out.append(html.escape(rest.replace(HIT_END, ""), quote=False))
    return "".join(out)
