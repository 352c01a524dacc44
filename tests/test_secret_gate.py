"""The fast secret gate, on both engines: a superset of redaction, and it says where.

The snapshot walk keeps every part of a document where no hit lands, so the
locality property below is what keeps secrets out of snapshots.
"""

from __future__ import annotations

import platform
import threading
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import secret_gate
from core.redact import redact_obj, redact_text
from tests.test_redact import CUT

ENGINES: dict[str, Any] = {"re": secret_gate._ReGate()}
try:
    ENGINES["hyperscan"] = secret_gate._HyperscanGate()
except ImportError:  # pragma: no cover - the wheel is missing on this platform
    pass


@pytest.fixture(params=sorted(ENGINES))
def gate(request: pytest.FixtureRequest) -> Any:
    return ENGINES[request.param]


_FRAGMENTS = st.sampled_from(
    [
        "token", "TOKEN", "Token", "tokens", "tokenS", "key", "api", "Api", "_", "-", ".", "o",
        "r", "s", "1", "password", "PASS", "pwd", "secret", "Secret", "credential", "auth",
        "AUTH", "author", "Authorization", "cookie", "access", "private", "master", "=", ":",
        " = ", ": ", '"', "'", "\\", "\n", "\t", " ", "export ", "$X", "abc123", "hunter2", "x y",
        "(", "?", "&", "@", "://", "u:", "sk-", "AKIA", "ASIA", "AIza", "ghp_", "github_pat_",
        "xoxb-", "ya29.", "Bearer ", "bearer ", "-----BEGIN ", "PRIVATE KEY-----",
        "hooks.slack.com/services/", "0123456789", "ABCDEFGHIJKLMNOP",
        "abcdefghijklmnopqrstuvwxyz", "é", "Σ", "count", "limit", "S",
    ]
)  # fmt: skip
_TEXT = st.lists(_FRAGMENTS, max_size=14).map("".join)
_KEY = st.lists(_FRAGMENTS, max_size=4).map("".join)


def test_the_fast_engine_is_the_one_in_use_where_it_has_a_wheel() -> None:
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert secret_gate.engine() == "hyperscan", "hyperscan is missing: the gate is ~10x slower"


@settings(max_examples=300, deadline=None)
@given(_TEXT, _KEY)
def test_engines_agree_on_whether_the_gate_fires(text: str, key: str) -> None:
    gates = list(ENGINES.values())
    for data in (text.encode(), orjson.dumps({key or "k": text}), orjson.dumps({text: key})):
        answers = {g.fires(data) for g in gates}
        assert len(answers) == 1, data
        for g in gates:
            assert bool(g.hits(data)) == g.fires(data)


@pytest.mark.parametrize(("text", "secret", "kind", "kept"), CUT)
def test_every_shape_fires_on_both_engines(
    gate: Any, text: str, secret: str, kind: str, kept: list[str]
) -> None:
    for data in (text.encode(), orjson.dumps({"v": text}), orjson.dumps({text: 1})):
        assert gate.fires(data)
    assert gate.fires(orjson.dumps([text.upper() if kind == "secret_value" else text]))


def test_no_false_alarm_on_counts_authors_and_prose(gate: Any) -> None:
    doc = {
        "usage": {"input_tokens": 1, "output_tokens": 2, "max_tokens": 3},
        "author": "Ana",
        "text": "Remember your password and never share it. Bearer tokens are short-lived.",
    }
    data = orjson.dumps(doc)
    assert not gate.fires(data)
    assert gate.hits(data) == []


@settings(max_examples=300, deadline=None)
@given(_TEXT, _KEY)
def test_gate_is_a_superset_of_redaction_on_both_engines(text: str, key: str) -> None:
    for gate in ENGINES.values():
        for doc in (text, {key or "k": text}, [text, {"x": {key or "k": text}}]):
            if redact_obj(doc) != doc:
                assert gate.fires(orjson.dumps(doc)), doc
        if redact_text(text) != text:
            assert gate.fires(text.encode())


@settings(max_examples=300, deadline=None)
@given(_TEXT, _KEY, st.lists(_TEXT, min_size=1, max_size=4), st.integers(0, 4))
def test_a_hit_lands_inside_the_part_that_fires_on_its_own(
    text: str, key: str, others: list[str], where: int
) -> None:
    """Whatever surrounds a JSON value or object entry, its own hits stay inside its bytes."""
    part = orjson.dumps({key: text})[1:-1]  # an entry `"key":"text"`
    for gate in ENGINES.values():
        if not gate.fires(b"{" + part + b"}"):
            continue
        neighbours = [orjson.dumps({o: o})[1:-1] for o in others]
        at = min(where, len(neighbours))
        entries = [*neighbours[:at], part, *neighbours[at:]]
        doc = b"{" + b",".join(entries) + b"}"
        start = 1 + sum(len(e) + 1 for e in entries[:at])
        assert doc[start : start + len(part)] == part
        assert any(start < end <= start + len(part) for end in gate.hits(doc)), doc


def test_hits_are_ordered_and_point_at_each_match(gate: Any) -> None:
    doc = orjson.dumps(
        ["clean " * 50, "export API_KEY=abc123", "clean " * 50, {"password": "hunter2"}]
    )
    hits = gate.hits(doc)
    assert hits == sorted(hits)
    assert doc[: hits[0]].endswith(b"API_KEY=")
    assert doc[: hits[-1]].endswith(b'"password":')


def test_threads_can_scan_at_the_same_time(gate: Any) -> None:
    doc = orjson.dumps([f"line {i}: token = compute({i})" for i in range(20_000)])
    expected = gate.hits(doc)
    results: list[list[int]] = []
    errors: list[BaseException] = []

    def scan() -> None:
        try:
            for _ in range(5):
                results.append(gate.hits(doc))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=scan) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == [expected] * 20


def test_bytes_that_are_not_utf8_do_not_hide_a_secret(gate: Any) -> None:
    """Importers gate raw lines as they are on disk, whatever their encoding."""
    key = "".join(["sk-", "ant-", "api03-", "Qx9" * 10])
    line = b"\xff\xfe latin-1 caf\xe9 " + f"ANTHROPIC_API_KEY={key}".encode() + b" \x80\x81"
    assert gate.fires(line)
    ends = [line[:end] for end in gate.hits(line)]
    assert ends[0].endswith(b"_API_KEY=")
    assert ends[1].endswith(b"sk-" + b"ant-api03-Qx9Qx9Qx9Q")  # the shape's first 20 characters
    assert gate.fires(b"\xe9token\xe9=x")
