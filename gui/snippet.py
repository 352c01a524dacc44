"""Search snippets as rich text: the service marks matches with `[` … `]`.

Everything else is escaped, so a transcript that contains HTML (agents write a
lot of it) shows as text and can never inject markup into the results list.

Transcripts are full of brackets of their own (`[error]`, `[CI/test-1]`,
markdown links), which look exactly like the markers. Given the query's words,
a bracketed run counts as a match only when it starts like one of them;
without the words, every bracketed run is taken as a match.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

# A run is the shortest bracketed text without nested brackets or line breaks;
# an unpaired bracket from the transcript itself stays literal.
_RUN = re.compile(r"\[([^\[\]\n]+)\]")
_WORD = re.compile(r"\w+")
PREFIX = 3
"""How many leading characters a run must share with a query word (stemmed or prefix
matches such as `errors` for `error*` still qualify)."""


def query_words(query: str) -> list[str]:
    return [w.casefold() for w in _WORD.findall(query)]


def _is_match(run: str, words: list[str] | None) -> bool:
    if words is None:
        return True
    head = run.casefold()
    return any(head.startswith(w[:PREFIX]) for w in words if w)


def snippet_html(snippet: str, words: Iterable[str] | None = None) -> str:
    """`[foo] bar <b>` → `<b>foo</b> bar &lt;b&gt;`, newlines collapsed to spaces.

    `words` are the query's words (see `query_words`); brackets that cannot be
    a match for them stay as they are.
    """
    wanted = None if words is None else list(words)
    flat = " ".join(snippet.split())
    out: list[str] = []
    pos = 0
    for m in _RUN.finditer(flat):
        if not _is_match(m.group(1), wanted):
            continue
        out.append(html.escape(flat[pos : m.start()], quote=False))
        out.append(f"<b>{html.escape(m.group(1), quote=False)}</b>")
        pos = m.end()
    out.append(html.escape(flat[pos:], quote=False))
    return "".join(out)
