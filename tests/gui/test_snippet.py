"""Search snippets become safe rich text with the matches in bold."""

from __future__ import annotations

from core.models import HIT_END as E
from core.models import HIT_START as S
from gui.snippet import snippet_html


def test_matches_become_bold() -> None:
    assert snippet_html(f"fix the {S}import{E} of {S}sessions{E} now") == (
        "fix the <b>import</b> of <b>sessions</b> now"
    )


def test_everything_else_is_escaped() -> None:
    html = snippet_html(f"<script>alert(1)</script> & {S}div{E} <b>x</b>")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "&amp;" in html and "<b>div</b>" in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert snippet_html(f"{S}<i>{E}") == "<b>&lt;i&gt;</b>"


def test_literal_brackets_from_transcripts_stay_as_they_are() -> None:
    snippet = f"[CI/test-1] failed: [Error]: see {S}error{E}[invalid]"
    assert snippet_html(snippet) == "[CI/test-1] failed: [Error]: see <b>error</b>[invalid]"


def test_whitespace_collapses_and_stray_markers_vanish() -> None:
    assert snippet_html(f"one\n\n{S}two{E}\tthree") == "one <b>two</b> three"
    assert snippet_html(f"a{E}b") == "ab"
