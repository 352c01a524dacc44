"""Secret redaction: what must be cut, what must be left alone, and JSON safety.

Fake secrets are assembled from pieces at run time so that no secret-shaped
literal sits in git as one string (and no scanner mistakes this file for a leak).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.redact import (
    contains_secret,
    is_secret_name,
    might_contain_secret,
    redact_obj,
    redact_text,
)

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


def j(*parts: str) -> str:
    return "".join(parts)


ALNUM = "aB3dE5gH7jK9mN1pQ2sT4vW6yZ8cF0"  # 30 varied characters to cut from
ANTHROPIC = j("sk-", "ant-", "api03-", ALNUM, ALNUM, "-_xY")
OPENAI_LEGACY = j("sk-", ALNUM, ALNUM[:18])
OPENAI_PROJ = j("sk-", "proj-", ALNUM, "_", ALNUM, "-Q9")
AWS_ID = j("AKIA", "IOSFODNN7", "EXAMPLE")
AWS_STS_ID = j("ASIA", "Y34FZKBOKMUT", "VV7A")
AWS_SECRET = j("wJalrXUtnFEMI/K7MDENG/", "bPxRfiCYEXAMPLEKEY")
GITHUB = {p: j(p, ALNUM, "Zx12Yw") for p in ("ghp_", "gho_", "ghu_", "ghs_", "ghr_")}
GITHUB_PAT = j("github_", "pat_", "11ABCDEFG0", "123456789012_", ALNUM, ALNUM[:29])
SLACK_BOT = j("xox", "b-", "123456789012-1234567890123-", "AbCdEfGhIjKlMnOpQrStUvWx")
SLACK_HOOK_PATH = j("T0000", "0000/B00000000/", "XXXXXXXX", "XXXXXXXXXXXXXXXX")
GOOGLE_KEY = j("AIza", "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q")
GOOGLE_OAUTH = j("ya29", ".a0AfH6SMB", ALNUM, "-x_Y")
BEARER = j("eyJhbGciOiJIUzI1NiJ9", ".", "eyJzdWIiOiIxMjM0In0", ".", "abcDEF123_-")
PEM_BODY = j("MIIEowIBAAKCAQEA7bq", "\n", "x9Zk3+/AbCdEfGh12==", "\n")
PEM = j("-----BEGIN RSA ", "PRIVATE KEY-----\n", PEM_BODY, "-----END RSA ", "PRIVATE KEY-----")
PASSWORD = j("hunter", "2-", "Sup3r!")


# --- each pattern -----------------------------------------------------------------------
CUT = [
    # (text, the secret that must vanish, the kind, what must stay)
    (f"key is {ANTHROPIC} ok", ANTHROPIC, "anthropic_key", ["key is ", " ok"]),
    (f"old {OPENAI_LEGACY}.", OPENAI_LEGACY, "openai_key", ["old ", "."]),
    (f"new {OPENAI_PROJ}", OPENAI_PROJ, "openai_key", ["new "]),
    (f"id {AWS_ID} here", AWS_ID, "aws_access_key_id", ["id ", " here"]),
    (f"sts {AWS_STS_ID}", AWS_STS_ID, "aws_access_key_id", ["sts "]),
    (
        f"aws_secret_access_key = {AWS_SECRET}",
        AWS_SECRET,
        "aws_secret_key",
        ["aws_secret_access_key = "],
    ),
    (
        f"aws configure set aws_secret_access_key {AWS_SECRET}",
        AWS_SECRET,
        "aws_secret_key",
        ["aws configure set aws_secret_access_key "],
    ),
    (f'{{"SecretAccessKey": "{AWS_SECRET}"}}', AWS_SECRET, "aws_secret_key", ["SecretAccessKey"]),
    *[(f"tok {t} end", t, "github_token", ["tok ", " end"]) for t in GITHUB.values()],
    (f"pat {GITHUB_PAT}", GITHUB_PAT, "github_token", ["pat "]),
    (f"slack {SLACK_BOT}", SLACK_BOT, "slack_token", ["slack "]),
    (
        f"POST https://hooks.slack.com/services/{SLACK_HOOK_PATH} now",
        SLACK_HOOK_PATH,
        "slack_webhook",
        ["POST https://hooks.slack.com/services/", " now"],
    ),
    (f"maps {GOOGLE_KEY}", GOOGLE_KEY, "google_api_key", ["maps "]),
    (f"oauth {GOOGLE_OAUTH}", GOOGLE_OAUTH, "google_oauth_token", ["oauth "]),
    (f"sent Bearer {BEARER} to it", BEARER, "bearer_token", ["sent Bearer ", " to it"]),
    (f"Authorization: Bearer {BEARER}", BEARER, "bearer_token", ["Authorization: "]),
    (f"before\n{PEM}\nafter", PEM_BODY.strip(), "private_key", ["before\n", "\nafter"]),
    (
        f"DATABASE_URL=postgres://app:{PASSWORD}@db:5432/main",
        PASSWORD,
        "url_password",
        ["DATABASE_URL=postgres://app:", "@db:5432/main"],
    ),
    (
        f"redis://:{PASSWORD}@localhost:6379/0",
        PASSWORD,
        "url_password",
        ["redis://:", "@localhost:6379/0"],
    ),
    # .env / shell / YAML / code assignments to a secret-looking name
    (f"DB_PASSWORD={PASSWORD}", PASSWORD, "secret_value", ["DB_PASSWORD="]),
    (f"export API_KEY={PASSWORD}\n", PASSWORD, "secret_value", ["export API_KEY=", "\n"]),
    (f"SESSION_TOKEN: {PASSWORD}", PASSWORD, "secret_value", ["SESSION_TOKEN: "]),
    (f"  - password: {PASSWORD}", PASSWORD, "secret_value", ["  - password: "]),
    (f'client_secret = "{PASSWORD}"', PASSWORD, "secret_value", ['client_secret = "', '"']),
    (f"MY_PASSWD='{PASSWORD}'", PASSWORD, "secret_value", ["MY_PASSWD='", "'"]),
    (f"PRIVATE_KEY={PASSWORD}", PASSWORD, "secret_value", ["PRIVATE_KEY="]),
    (f"AWS_ACCESS_KEY={PASSWORD}", PASSWORD, "secret_value", ["AWS_ACCESS_KEY="]),
    (f"APIKEY={PASSWORD}", PASSWORD, "secret_value", ["APIKEY="]),
    (f"GCP_CREDENTIAL={PASSWORD}", PASSWORD, "secret_value", ["GCP_CREDENTIAL="]),
    (f"BASIC_AUTH={PASSWORD}", PASSWORD, "secret_value", ["BASIC_AUTH="]),
    (f"PGPASSWORD={PASSWORD} psql -h db", PASSWORD, "secret_value", [" psql -h db"]),
    (
        f'connect(user="app", password="{PASSWORD}")',
        PASSWORD,
        "secret_value",
        ['connect(user="app", password="', '")'],
    ),
    (
        f"GET /cb?state=1&access_token={PASSWORD}&x=2",
        PASSWORD,
        "secret_value",
        ["GET /cb?state=1&access_token=", "&x=2"],
    ),
    (f'{{"password": "{PASSWORD}"}}', PASSWORD, "secret_value", ['{"password": "', '"}']),
    (f"OPENAI_API_KEY={OPENAI_PROJ}", OPENAI_PROJ, "openai_key", ["OPENAI_API_KEY="]),
]


@pytest.mark.parametrize(("text", "secret", "kind", "kept"), CUT)
def test_each_secret_shape_is_cut(text: str, secret: str, kind: str, kept: list[str]) -> None:
    out = redact_text(text)
    assert secret not in out
    assert f"[REDACTED:{kind}]" in out
    for piece in kept:
        assert piece in out
    assert contains_secret(text)
    assert not contains_secret(out), "redacted text must not look secret any more"
    assert redact_text(out) == out


def test_assignment_keeps_the_name_and_replaces_only_the_value() -> None:
    text = j("export GITHUB_TOKEN=", GITHUB["ghp_"], "\nDEBUG=1\n")
    assert redact_text(text) == "export GITHUB_TOKEN=[REDACTED:github_token]\nDEBUG=1\n"


def test_pem_block_is_replaced_whole() -> None:
    assert redact_text(f"key:\n{PEM}\n") == "key:\n[REDACTED:private_key]\n"


def test_truncated_pem_block_is_still_cut() -> None:
    text = j("-----BEGIN ", "PRIVATE KEY-----\n", PEM_BODY)
    out = redact_text(text)
    assert "MIIEowIBAAKCAQEA7bq" not in out
    assert out.startswith("[REDACTED:private_key]")


# --- what must be left alone ----------------------------------------------------------------
LEFT_ALONE = [
    "The quick brown fox jumps over the lazy dog.",
    "commit 3f786850e387550fdab836ed7e6dc881de23001b",
    "request 123e4567-e89b-12d3-a456-426614174000 done",
    "Remember your password and never share it.",
    "TOKEN_LIMIT=4096",
    "max_tokens: 4096",
    '{"input_tokens": 12, "output_tokens": 5, "cache_read_input_tokens": 7}',
    "token = token",
    "password = getpass.getpass()",
    "api_key = os.environ['OPENAI_API_KEY']",
    "token: str | None = None",
    "PWD=/home/ana/project",
    "export GITHUB_TOKEN=$GH_TOKEN",
    "API_KEY=${API_KEY}",
    "api_key: <your-api-key>",
    '"token_type": "Bearer"',
    "the author: Ana",
    "git@github.com:org/repo.git",
    "mail ana@example.com or see https://example.com/a?b=1&c=2",
    "pip install sk-learn-contrib-experimental-tools",
    "tasks: task-12345678901234567890123456",
    "Bearer tokens are short-lived.",
    "def tokenize(text: str) -> list[str]:",
    "f(token=token, secret=secret)",
    'token_summary = " | ".join(parts)',
    "AUTH_URL=https://auth.example.com/authorize",
    "PASSWORD_FILE=/run/secrets/db",
    "SECRET_NAME=prod-db",
    "-----BEGIN CERTIFICATE-----",
]


@pytest.mark.parametrize("text", LEFT_ALONE)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact_text(text) == text
    assert not contains_secret(text)


def test_label_line_is_treated_as_an_assignment_by_design() -> None:
    # `Password: xyz` at a line start is YAML-like; a leak costs more than this false positive.
    assert redact_text("Password: must") == "Password: [REDACTED:secret_value]"


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="shared fixtures not present")
def test_real_transcripts_come_through_byte_for_byte() -> None:
    """No false positive on real Claude Code transcripts: importers compare bytes and counts."""
    files = sorted(FIXTURES.rglob("*.jsonl"))
    assert files
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            assert redact_text(line) == line, f"{path.name}: {line[:120]}"


# --- JSON safety and the object walk ------------------------------------------------------
def _secret_doc() -> dict[str, object]:
    return {
        "cmd": f"OPENAI_API_KEY={OPENAI_PROJ} python run.py",
        "env": f"cat .env\nDB_PASSWORD={PASSWORD}\nAPI_KEY={ANTHROPIC}\n",
        "headers": {"Authorization": f"Bearer {BEARER}", "Accept": "json"},
        "url": f"postgres://app:{PASSWORD}@db/x",
        "pem": PEM,
        "nested": [{"password": PASSWORD}, {"note": f'token="{PASSWORD}"'}],
        "quoted": '{"api_key": "' + PASSWORD + '"}',
        "usage": {"input_tokens": 3, "max_tokens": 100, "author": "Ana"},
    }


def test_redacting_a_raw_json_line_keeps_it_valid_json() -> None:
    doc = _secret_doc()
    line = orjson.dumps(doc).decode()
    out = redact_text(line)
    parsed = json.loads(out)  # still JSON
    assert parsed == redact_obj(doc), "line-level and tree-level redaction agree"
    for secret in (OPENAI_PROJ, ANTHROPIC, PASSWORD, BEARER, "MIIEowIBAAKCAQEA7bq"):
        assert secret not in out


def test_redact_obj_uses_key_names_and_keeps_keys_and_non_strings() -> None:
    doc = {
        "password": PASSWORD,
        "apiKey": "abc123",
        "X-Auth-Token": "t0k3n",
        "token_count": 5,
        "token": None,
        "secret": True,
        "author": "Ana",
        "tokens": {"in": 1, "out": 2},
        "items": [("a", {"client_secret": "s3"})],
        "github": GITHUB["gho_"],
    }
    before = json.dumps(doc, default=list)
    assert redact_obj(doc) == {
        "password": "[REDACTED:secret_value]",
        "apiKey": "[REDACTED:secret_value]",
        "X-Auth-Token": "[REDACTED:secret_value]",
        "token_count": 5,
        "token": None,
        "secret": True,
        "author": "Ana",
        "tokens": {"in": 1, "out": 2},
        "items": [("a", {"client_secret": "[REDACTED:secret_value]"})],
        "github": "[REDACTED:github_token]",
    }
    assert json.dumps(doc, default=list) == before, "the input is not modified"


def test_redact_obj_names_the_kind_of_a_known_token_under_a_secret_key() -> None:
    assert redact_obj({"api_key": ANTHROPIC}) == {"api_key": "[REDACTED:anthropic_key]"}


def test_a_secret_used_as_a_key_is_cut_too() -> None:
    assert redact_obj({f"https://u:{PASSWORD}@h/": 1}) == {
        "https://u:[REDACTED:url_password]@h/": 1
    }


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("password", True),
        ("DB_PASSWD", True),
        ("db_pwd", True),
        ("apiKey", True),
        ("X-API-Key", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("accessToken", True),
        ("csrftoken", True),
        ("Authorization", True),
        ("session_cookie", True),
        ("tokenS", False),
        ("input_tokens", False),
        ("TOKEN_LIMIT", False),
        ("token_type", False),
        ("author", False),
        ("oauth", False),
        ("tokenizer", False),
        ("PWD", False),
        ("AWS_ACCESS_KEY_ID", False),
        ("monkey", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


# --- the fast gate never misses what the redactor would cut ----------------------------------
@pytest.mark.parametrize(("text", "secret", "kind", "kept"), CUT)
def test_gate_fires_for_every_shape_as_text_and_as_json(
    text: str, secret: str, kind: str, kept: list[str]
) -> None:
    assert might_contain_secret(text.encode())
    assert might_contain_secret(orjson.dumps({"v": text}))
    assert might_contain_secret(orjson.dumps([text.upper() if kind == "secret_value" else text]))


def test_gate_is_quiet_on_clean_documents() -> None:
    doc = {"messages": LEFT_ALONE[:4] * 50, "usage": {"input_tokens": 1}, "author": "x"}
    assert not might_contain_secret(orjson.dumps(doc))


_FRAGMENTS = st.sampled_from(
    [
        "token", "TOKEN", "Token", "tokens", "key", "api", "Api", "_", "-", ".", "password",
        "PASS", "pwd", "secret", "Secret", "credential", "auth", "AUTH", "author", "cookie",
        "access", "private", "=", ":", " = ", ": ", '"', "'", "\\", "\n", "\t", " ", "export ",
        "$X", "abc123", "hunter2", "x y", "(", "?", "&", "@", "://", "u:", "sk-", "AKIA", "ASIA",
        "AIza", "ghp_", "github_pat_", "xoxb-", "ya29.", "Bearer ", "bearer ", "-----BEGIN ",
        "PRIVATE KEY-----", "hooks.slack.com/services/", "0123456789", "ABCDEFGHIJKLMNOP",
        "abcdefghijklmnopqrstuvwxyz", "é", "Σ", "count", "limit", "S",
    ]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    st.lists(_FRAGMENTS, max_size=14).map("".join), st.lists(_FRAGMENTS, max_size=4).map("".join)
)
def test_gate_is_a_superset_of_redaction(text: str, key: str) -> None:
    for doc in (text, {key or "k": text}, [text, {"x": {key or "k": text}}]):
        if redact_obj(doc) != doc:
            assert might_contain_secret(orjson.dumps(doc)), doc
    if redact_text(text) != text:
        assert might_contain_secret(text.encode())


def test_importing_redact_pulls_in_nothing_heavy() -> None:
    """The Claude Code hook imports this module on every tool call."""
    code = (
        "import sys, core.redact; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'orjson', 'pydantic', 'zstandard', 'typing', 'datetime', 'json', 'hyperscan'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
