"""Search snippets become safe rich text with the matches in bold."""

from __future__ import annotations

from gui.snippet import query_words, snippet_html


def test_matches_become_bold() -> None:
    assert snippet_html("fix the [import] of [sessions] now") == (
        "fix the <b>import</b> of <b>sessions</b> now"
    )


def test_everything_else_is_escaped() -> None:
    html = snippet_html("<script>alert(1)</script> & [div] <b>x</b>")
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "&amp;" in html
    assert "<b>div</b>" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html


def test_markup_inside_a_match_is_escaped_too() -> None:
    assert snippet_html("[<i>]") == "<b>&lt;i&gt;</b>"


def test_unpaired_brackets_stay_literal() -> None:
    assert snippet_html("a[0 and [word]") == "a[0 and <b>word</b>"
    assert snippet_html("list] end") == "list] end"


def test_line_breaks_collapse_to_spaces() -> None:
    assert snippet_html("one\n\n[two]\tthree") == "one <b>two</b> three"


def test_with_the_query_words_literal_brackets_are_not_bolded() -> None:
    words = query_words("error")
    snippet = "[CI/test-1] failed: [Error]: see [recorder.js] and is_[error]"
    assert snippet_html(snippet, words) == (
        "[CI/test-1] failed: <b>Error</b>: see [recorder.js] and is_<b>error</b>"
    )


def test_prefix_and_phrase_queries_still_bold_their_matches() -> None:
    assert snippet_html("the [errors] list", query_words("err*")) == "the <b>errors</b> list"
    words = query_words('"event loop" fix')
    assert words == ["event", "loop", "fix"]
    assert snippet_html("an [event loop] [fix]", words) == "an <b>event loop</b> <b>fix</b>"
