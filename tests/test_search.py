"""Full-text search over the real transcripts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import orjson
import pytest

from core.errors import BadInputError
from core.local.search import search, to_fts_query
from core.models import HIT_END, HIT_START, SearchQuery
from core.service import Service
from tests.support import CLAUDE_FIXTURES


@pytest.fixture
async def loaded(service: Service) -> Service:
    await service.import_now([str(CLAUDE_FIXTURES)])
    return service


async def test_finds_the_word_with_highlighted_snippets(loaded: Service) -> None:
    hits = await loaded.search(SearchQuery(text="decorators", limit=50))
    assert hits
    assert all(HIT_START in h.snippet and HIT_END in h.snippet for h in hits)
    for h in hits:
        marked = h.snippet.split(HIT_START)[1].split(HIT_END)[0]
        assert marked.lower().startswith("decorator")
    assert any(h.session_id == "representative_messages" for h in hits)
    # ranks ascend (bm25: lower is better)
    assert [h.rank for h in hits] == sorted(h.rank for h in hits)


async def test_prefix_search_finds_exactly_the_messages_with_the_term(loaded: Service) -> None:
    hits = await loaded.search(SearchQuery(text="decorator*", limit=1000))
    ids = {h.message_id for h in hits}
    # independent of FTS: a regex over the same extracted text, a word starting "decorator"
    # (not preceded by a letter or digit; "_" separates words, as in the index)
    word_start = re.compile(r"(?<![^\W_])decorator", re.IGNORECASE)
    rows = await loaded.db.fetchall("SELECT id, text, tools FROM messages")
    expected = {r[0] for r in rows if word_start.search(f"{r[1] or ''} {r[2] or ''}")}
    assert expected and ids == expected


async def test_filters(loaded: Service) -> None:
    base = await loaded.search(SearchQuery(text="decorators", limit=100))
    users = await loaded.search(SearchQuery(text="decorators", role="user", limit=100))
    assert users and len(users) < len(base)
    assert all(h.role == "user" for h in users)
    one = await loaded.search(
        SearchQuery(text="decorators", session="representative_messages", limit=100)
    )
    assert one and all(h.session_id == "representative_messages" for h in one)
    later = await loaded.search(SearchQuery(text="decorators", since="2099-01-01", limit=100))
    assert later == []
    before = await loaded.search(SearchQuery(text="decorators", until="2099-01-01", limit=100))
    assert len(before) == len(base)


async def test_tool_filter_finds_messages_with_that_tool(loaded: Service) -> None:
    name = await loaded.db.scalar(
        "SELECT name FROM tool_calls WHERE name != '' GROUP BY name ORDER BY count(*) DESC"
    )
    hits = await loaded.search(SearchQuery(text=name, tool=name, limit=20))
    assert hits
    for h in hits:
        n = await loaded.db.scalar(
            "SELECT count(*) FROM tool_calls WHERE message_id = ? AND name = ?",
            (h.message_id, name),
        )
        assert n == 1


@pytest.mark.parametrize("text", ["foo-bar", '"unbalanced', "AND", "a:b", "(x", "*", "NEAR("])
async def test_odd_queries_never_raise_syntax_errors(loaded: Service, text: str) -> None:
    q = to_fts_query(text)
    if not q:
        with pytest.raises(BadInputError):
            await loaded.search(SearchQuery(text=text))
    else:
        await loaded.search(SearchQuery(text=text))


def test_query_translation_keeps_phrases_and_prefixes() -> None:
    assert to_fts_query('"exact phrase" pref* plain') == '"exact phrase" "pref"* "plain"'
    assert json.dumps(to_fts_query('say "hi')) == json.dumps('"say" "hi"')


async def test_a_very_common_term_is_ranked_among_its_newest_matches(
    service: Service, tmp_path: Path
) -> None:
    proj = tmp_path / "p" / "-proj"
    proj.mkdir(parents=True)
    lines = []
    for i in range(60):
        # older messages repeat the word more often: exhaustive bm25 would prefer them
        text = ("needle " * (10 if i < 30 else 1)) + f"filler {i}"
        lines.append(orjson.dumps({"type": "user", "uuid": f"u{i}",
                                   "message": {"role": "user", "content": text}}))  # fmt: skip
    (proj / "s.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    await service.import_now([str(proj)])
    everything = await search(service.db, SearchQuery(text="needle", limit=5), window=1000)
    newest = await search(service.db, SearchQuery(text="needle", limit=5), window=20)
    seq = "SELECT seq FROM messages WHERE id = ?"
    old = [await service.db.scalar(seq, (h.message_id,)) for h in everything]
    new = [await service.db.scalar(seq, (h.message_id,)) for h in newest]
    assert len(old) == len(new) == 5
    assert all(s < 30 for s in old) and all(s >= 40 for s in new)


async def test_short_prefix_is_refused_with_a_hint(loaded: Service) -> None:
    with pytest.raises(BadInputError, match="too short for a prefix search"):
        await loaded.search(SearchQuery(text="de*"))
    assert await loaded.search(SearchQuery(text="deco*"))


async def test_prefix_snippets_mark_every_word_with_the_prefix(loaded: Service) -> None:
    hits = await loaded.search(SearchQuery(text="decor*", limit=10))
    assert hits
    for h in hits:
        marked = [p.split(HIT_END)[0] for p in h.snippet.split(HIT_START)[1:]]
        assert marked and all(m.lower().startswith("decor") for m in marked)
