"""Full-text search over messages and tool traffic (FTS5, bm25).

Queries typed by a person are turned into FTS5 syntax safely: every word is
quoted, so `foo-bar` or `"` cannot raise a syntax error, while an explicit
`prefix*` keeps working.
"""

from __future__ import annotations

import re
from typing import Any

from core.errors import BadInputError
from core.local.db.database import Database
from core.local.snippets import make_snippet, term_pattern
from core.models import HIT_END, HIT_START, SearchHit, SearchQuery

_WORD = re.compile(r'"[^"]+"|\S+')
SNIPPET_TOKENS = 24
RANK_WINDOW = 5_000
MIN_PREFIX = 4
"""Shorter prefixes match so many words that the search could take seconds."""
"""A term found in more messages than this is ranked among its newest matches."""


def parse_terms(text: str) -> list[tuple[str, bool]]:
    """(word or phrase, is_prefix) for each term of a query as a person typed it."""
    out = []
    for token in _WORD.findall(text):
        if token.startswith('"') and token.endswith('"') and len(token) > 1:
            out.append((token[1:-1], False))
        else:
            word = token.rstrip("*").replace('"', "")
            if word:
                out.append((word, token.endswith("*")))
    return out


def to_fts_query(text: str) -> str:
    """Quotes each term; keeps a trailing `*` as a prefix search and "phrases" whole."""
    terms = []
    for token in _WORD.findall(text):
        if token.startswith('"') and token.endswith('"') and len(token) > 1:
            inner = token[1:-1].replace('"', "")
            if inner.strip():
                terms.append(f'"{inner}"')
            continue
        prefix = token.endswith("*")
        word = token.rstrip("*").replace('"', "")
        if not word:
            continue
        if prefix and len(word) < MIN_PREFIX:
            raise BadInputError(
                f"{token!r} is too short for a prefix search",
                hint=f"give at least {MIN_PREFIX} letters before the * (or search the whole word)",
            )
        if word.upper() in ("AND", "OR", "NOT"):
            word = word.lower()
        terms.append(f'"{word}"' + ("*" if prefix else ""))
    return " ".join(terms)


async def search(db: Database, query: SearchQuery, *, window: int = RANK_WINDOW) -> list[SearchHit]:
    match = to_fts_query(query.text)
    if not match:
        raise BadInputError("The search is empty", hint="type at least one word")
    where = ["f.messages_fts MATCH ?"]
    params: list[object] = [match]
    if query.session:
        where.append("m.session_id = ?")
        params.append(query.session)
    if query.role:
        where.append("m.role = ?")
        params.append(query.role)
    if query.since:
        where.append("m.ts >= ?")
        params.append(query.since)
    if query.until:
        where.append("m.ts < ?")
        params.append(query.until)
    if query.project:
        where.append("s.project LIKE ?")
        params.append(f"%{query.project}%")
    if query.agent:
        where.append("s.agent = ?")
        params.append(query.agent)
    if query.tool:
        where.append("EXISTS (SELECT 1 FROM tool_calls t WHERE t.message_id = m.id AND t.name = ?)")
        params.append(query.tool)
    params.append(window)
    needs_messages = any(w.startswith(("m.", "s.", "EXISTS")) for w in where[1:])
    joins = (
        "JOIN messages m ON m.id = f.rowid LEFT JOIN sessions s ON s.id = m.session_id"
        if needs_messages
        else ""
    )
    terms = parse_terms(query.text)
    # FTS5's snippet() costs ~15 ms a row for a prefix term: those are built in Python.
    python_snippets = any(prefix for _, prefix in terms)
    snippet_col = (
        "m.text, m.tools"
        if python_snippets
        else f"""(SELECT snippet(messages_fts, -1, char(2), char(3), '…', {SNIPPET_TOKENS})
                  FROM messages_fts WHERE messages_fts MATCH ? AND rowid = top.id)"""
    )
    # Rank inside a window of the newest matches, then build snippets for the page
    # only: bm25 over every match of a very common word would cost ~0.5 s on 1 M
    # messages, and snippet() over every match even more.
    sql = f"""
        WITH matched AS (
            SELECT f.rowid AS id, f.rank AS rank FROM messages_fts f {joins}
            WHERE {" AND ".join(where)}
            ORDER BY f.rowid DESC LIMIT ?
        ), top AS (
            SELECT id, rank FROM matched ORDER BY rank LIMIT ?
        )
        SELECT m.id, m.session_id, s.project, m.role, m.ts, top.rank, {snippet_col}
        FROM top JOIN messages m ON m.id = top.id
        LEFT JOIN sessions s ON s.id = m.session_id
        ORDER BY top.rank"""
    params.append(query.limit)
    if not python_snippets:
        params.append(match)
    rows: list[Any] = list(await db.fetchall(sql, params))
    if python_snippets:
        pattern = term_pattern(terms)
        rows = [(*r[:6], make_snippet([r[6], r[7]], pattern)) for r in rows]
    return [
        SearchHit(
            message_id=r[0],
            session_id=r[1],
            project=r[2],
            role=r[3],
            ts=r[4],
            rank=float(r[5]),
            snippet=(r[6] or "").replace(HIT_START + HIT_END, ""),
        )
        for r in rows
    ]
