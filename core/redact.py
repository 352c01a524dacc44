"""Secret redaction: the one gate every byte passes before it reaches disk.

The hook process calls this on every tool call and importers on every line, so
text with no secret in it must cost one pass of one precompiled regex in C and
no Python per character. That regex only looks for *anchors*: characters that
every secret shape contains (`k-` of `sk-`, `@` of a URL password, the
`k`/`w`/`c`/`u` inside `token`, `password`, `secret`, `auth`, ...). Each branch
starts with a literal, so `re` skips to candidate characters with its prefix
scan; Python code only runs at the few anchors that match, and decides there
exactly what to cut.

Replacements never consume an unescaped `"` or half an escape sequence, so a raw
JSON line stays valid JSON after redaction (importers redact whole lines), and
`.env` lines inside a JSON string (after a `\\n` escape) are still found.

What is deliberately *not* redacted (false positives change the bytes that
importers count and compare):
- a name counts only when one of its words is a secret word: `author`,
  `max_tokens`, `input_tokens`, `tokenizer`, `oauth` are not; `PWD`/`OLDPWD`
  (the shell's working directory) are not;
- a secret word next to a measuring or describing word is not a secret:
  `TOKEN_LIMIT=4096`, `token_type`, `auth_url`, `PASSWORD_FILE`, `SECRET_NAME`,
  `token_summary`, `AWS_ACCESS_KEY_ID` (an access key id is still caught by its
  own `AKIA...` pattern);
- an unquoted value that is a placeholder or plainly code: `$TOKEN`, `${X}`,
  `<your-key>`, `None`, `str`, `getpass()`, and after ` = ` with spaces (code,
  not a `.env` line) a bare identifier such as `token`;
- a value with spaces under a token/key name (`token_label = "a b"`); passwords,
  secrets, credentials and cookies may contain spaces;
- `password` as a word in prose, with no `=`/`:` and value after it.
"""

from __future__ import annotations

import re

from core.secret_gate import might_contain_secret

TYPE_CHECKING = False  # the hook imports this module on every tool call: no `typing` at run time
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

__all__ = [
    "contains_secret",
    "is_secret_name",
    "might_contain_secret",
    "redact_obj",
    "redact_text",
]

_REDACTED = "[REDACTED:{}]"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# --- the anchor scan -----------------------------------------------------------------
# Every top-level branch starts with a literal character outside its named group,
# so `re` can skip to candidate characters. Each branch has exactly one named
# group and no other capturing group, so `m.lastgroup` says which branch matched.


def _edge(before: str, lead: str) -> str:
    """After consuming `lead`: it does not continue a word (a JSON `\\n` escape is an edge)."""
    return f"(?:(?<!{before}{lead})|(?<=\\\\[nrt]{lead}))"


def _name_branches(first: str, rest: str, group: str) -> str:
    """A secret-word anchor (both cases) that a name and then an assignment follow."""
    tail = r"[\w.-]*(?:\\?[\"'])?[ \t]*(?::=|=>|[:=]|(?<=[ \t])(?=[A-Za-z0-9/+]{40}))"
    return "|".join(
        f"{c}(?P<{group}{i}>(?i:{rest})){tail}" for i, c in enumerate((first, first.upper()))
    )


_SCAN = re.compile(
    "|".join(
        [
            r"-(?P<pem>----BEGIN[ A-Z0-9]*PRIVATE KEY-----)",
            r"@(?P<at>)",
            r"k-(?<=sk-)" + _edge(r"[\w-]", "sk-") + r"(?P<anthropic>ant-[A-Za-z0-9_-]{20,})",
            r"k-(?<=sk-)"
            + _edge(r"[\w-]", "sk-")
            + r"(?P<openai>(?=[A-Za-z0-9_-]*[0-9])[A-Za-z0-9_-]{20,})",
            "A" + _edge("[A-Za-z0-9]", "A") + r"(?P<aws_id>[KS]IA[A-Z0-9]{16})(?![A-Za-z0-9])",
            "A" + _edge(r"[\w-]", "A") + r"(?P<google_key>Iza[0-9A-Za-z_-]{35})(?![\w-])",
            "g"
            + _edge(r"[\w-]", "g")
            + r"(?P<github>h[pousr]_[A-Za-z0-9]{36,}|ithub_pat_[A-Za-z0-9_]{22,})",
            "x" + _edge(r"[\w-]", "x") + r"(?P<slack>ox[abprs]-[A-Za-z0-9-]{10,})",
            r"\.(?<=://hooks\.)(?P<slack_hook>slack\.com/services/)[A-Za-z0-9_/-]+",
            "y" + _edge(r"[\w.-]", "y") + r"(?P<google_oauth>a29\.[0-9A-Za-z_-]{20,})",
            r"B(?P<bearer_B>earer[ \t]+)[A-Za-z0-9._~+/-]{16,}=*",
            r"b(?P<bearer_b>earer[ \t]+)[A-Za-z0-9._~+/-]{16,}=*",
            _name_branches("k", r"en(?<=token)|ey|ie(?<=cookie)", "name_k"),
            _name_branches("w", r"ord(?<=password)|d(?<=passwd)|d(?<=pwd)", "name_w"),
            _name_branches("c", r"ret(?<=secret)|redential", "name_c"),
            _name_branches("u", r"th(?<=auth)", "name_u"),
        ]
    )
)
_NAME_GROUPS = frozenset(f"name_{c}{i}" for c in "kwcu" for i in (0, 1))
_KIND_OF_GROUP = {
    "pem": "private_key",
    "at": "url_password",
    "anthropic": "anthropic_key",
    "openai": "openai_key",
    "aws_id": "aws_access_key_id",
    "google_key": "google_api_key",
    "github": "github_token",
    "slack": "slack_token",
    "slack_hook": "slack_webhook",
    "google_oauth": "google_oauth_token",
    "bearer_B": "bearer_token",
    "bearer_b": "bearer_token",
}

# --- secondary parsers (run only at an anchor) -------------------------------------------
_PEM_REST = re.compile(
    r"(?:[A-Za-z0-9+/=:,.\s-]|\\+[nrt])*?-----END[ A-Z0-9]*PRIVATE KEY-----"
    r"|(?:[A-Za-z0-9+/=:,.\s-]|\\+[nrt])*"
)
_USERINFO = re.compile(r"[^\s:/?#@\[\]\"'\\]*:(?P<pw>[^\s/?#@\[\]\"'\\]+)")
_ASSIGN = re.compile(
    r"(?P<name>[\w.-]+)(?P<nq>\\?[\"'])?(?P<sp1>[ \t]*)(?P<sep>:=|=>|[:=])?(?P<sp2>[ \t]*)"
)
_VALUE = re.compile(
    r"\"(?P<v1>(?:\\.|[^\"\\\n])*)\""
    r"|'(?P<v2>(?:\\.|[^'\"\\\n])*)'"
    r"|\\\"(?P<v3>(?:\\[^\"]|[^\"\\\n])*)\\\""
    r"|(?P<bare>(?:(?:Bearer|Basic|Token|Bot|Digest)[ \t]+)?[^\s\"'\\]+)"
)
_JSON_PUNCTUATION = frozenset(":,{}[]")
_SCHEME_VALUE = re.compile(r"(?:Bearer|Basic|Token|Bot|Digest)[ \t]+\S+\Z")
_QUERY_VALUE = re.compile(r"[^\s\"'\\&#]+")
_AWS_SECRET_VALUE = re.compile(r"[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_AWS_SECRET_NAME = re.compile(r"-*(?:aws[_.-]?)?secret[_.-]?access[_.-]?key", re.IGNORECASE)
_LINE_LEAD = re.compile(
    r"(?:^|[\n\r\"'`]|\\[nr])(?:[ \t]|\\t)*(?:(?:export|set|-)[ \t]+)?\Z", re.MULTILINE
)
_PLACEHOLDER = re.compile(
    r"\$\{[^}]*\}|\$\([^)]*\)|\$[A-Z_][A-Z0-9_]*|%[A-Za-z_]\w*%|<[^<>]{1,80}>"
    r"|\{\{[^}]*\}\}|\*+|x{3,}|X{3,}|\.{3}|…|\[REDACTED:[a-z_]+\]"
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z_.]*")
_KEYWORDS = _words(
    "none null nil true false undefined str string bytes int integer float bool boolean "
    "number any object secretstr secretbytes optional path dict list unknown never void "
    "char text varchar"
)

# --- which names hold secrets ----------------------------------------------------------
# camelCase / snake_case / kebab-case words; a trailing capital S is a plural (`tokenS`)
_KEY_NAME = re.compile(r"[\w.-]*\Z")
_NAME_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+(?:S(?![a-z]))?|[0-9]+")
_SECRET_WORDS = _words(
    "password passwd pwd secret secrets token credential credentials auth authorization "
    "apikey cookie cookies privatekey accesskey secretkey"
)
_SECRET_SUFFIXES = ("token", "password", "passwd", "secret", "apikey", "credential", "credentials")
_SECRET_PAIRS = frozenset(
    (w, "key") for w in ("api", "private", "access", "secret", "encryption", "signing", "master")
)
_NOT_SECRET_WORDS = _words(
    "limit limits count counts max min maximum minimum budget usage size len length type "
    "types url uri urls endpoint host hostname port domain file files path paths dir "
    "directory name names id ids env var enabled disabled enable disable required mode "
    "method methods provider scope scopes header headers expiry expires expiration ttl "
    "timeout version format field policy estimate estimated index prefix summary stats info "
    "label text message description title display help hint example template pattern regex "
    "kind placeholder counter"
)
_NOT_SECRET_NAMES = _words("pwd oldpwd")
# a passphrase may contain spaces; a token or an API key never does
_SPACED_VALUE_WORDS = ("password", "passwd", "pwd", "secret", "credential", "cookie")


def is_secret_name(name: str) -> bool:
    """True when a key or variable name says its value is a secret (see the module doc)."""
    if name.strip("-.").lower() in _NOT_SECRET_NAMES:
        return False
    words = [w.lower() for w in _NAME_WORD.findall(name)]
    if not words or any(w in _NOT_SECRET_WORDS for w in words):
        return False
    for i, w in enumerate(words):
        if w in _SECRET_WORDS or w.endswith(_SECRET_SUFFIXES):
            return True
        if i and (words[i - 1], w) in _SECRET_PAIRS:
            return True
    return False


def _key_name(key: str) -> str:
    """The name a key ends with (`DB password` -> `password`), as text would show it."""
    m = _KEY_NAME.search(key)
    return m[0] if m else ""


def _is_secret_key(key: str) -> bool:
    return is_secret_name(_key_name(key))


def _plausible_value(name: str, value: str) -> bool:
    """Whether a string assigned to a secret name could be the secret itself."""
    if not value or _PLACEHOLDER.fullmatch(value):
        return False
    if (" " in value or "\t" in value) and not _SCHEME_VALUE.match(value):
        low = name.lower()
        return any(w in low for w in _SPACED_VALUE_WORDS)
    return True


def _bare_is_code(value: str, *, spaced_equals: bool) -> bool:
    v = value.rstrip(",;")
    if not v or _PLACEHOLDER.fullmatch(v) or v.lower() in _KEYWORDS:
        return True
    if any(c in v for c in "(){}[]"):
        return True
    return spaced_equals and _IDENTIFIER.fullmatch(v) is not None


# --- deciding what to cut at one anchor --------------------------------------------------
_Cut = tuple[int, int, str]


def _token_cut(text: str, m: re.Match[str], group: str) -> _Cut | None:
    kind = _KIND_OF_GROUP[group]
    if group == "pem":
        rest = _PEM_REST.match(text, m.end())
        return (m.start(), rest.end() if rest else m.end(), kind)
    if group == "at":
        at = m.start()
        scheme = text.rfind("://", max(0, at - 256), at)
        if scheme < 0:
            return None
        info = _USERINFO.fullmatch(text, scheme + 3, at)
        if info is None or _PLACEHOLDER.fullmatch(info["pw"]):
            return None
        return (info.start("pw"), at, kind)
    if group in ("anthropic", "openai"):
        return (m.start() - 1, m.end(), kind)
    if group in ("slack_hook", "bearer_B", "bearer_b"):
        return (m.end(group), m.end(), kind)
    return (m.start(), m.end(), kind)


def _is_line_start(text: str, pos: int) -> bool:
    """Whether only indentation (or `export `, or a YAML `- `) precedes pos on its line.

    A line starts at the start of the text, after a newline, after a JSON `\\n`
    escape (raw transcript lines), or right after an opening quote (a string
    that begins with `KEY=value`).
    """
    return _LINE_LEAD.search(text, max(0, pos - 40), pos) is not None


def _name_cut(text: str, m: re.Match[str], floor: int) -> _Cut | None:
    lo = max(floor, m.start() - 128)  # never reach back into what was already cut
    start = m.start()
    while start > lo and (text[start - 1].isalnum() or text[start - 1] in "_.-"):
        if text[start - 1] in "nrt" and start >= 2 and text[start - 2] == "\\":
            break  # a JSON escape ends the previous line; it is not part of the name
        start -= 1
    a = _ASSIGN.match(text, start)
    if a is None or not is_secret_name(a["name"]):
        return None
    name = a["name"]
    kind = "aws_secret_key" if _AWS_SECRET_NAME.fullmatch(name) else "secret_value"
    sep = a["sep"]
    if sep is None:  # `--aws-secret-access-key KEY`: only the AWS form may use a space
        v = _AWS_SECRET_VALUE.match(text, a.end()) if kind == "aws_secret_key" else None
        return (v.start(), v.end(), kind) if v else None
    v = _VALUE.match(text, a.end())
    if v is None:
        return None
    for g in ("v1", "v2", "v3"):
        if v[g] is not None:
            if g == "v1" and v[g][:1] in _JSON_PUNCTUATION:
                return None  # raw JSON: that `"` closed the string the name was in
            if not _plausible_value(name, v[g]):
                return None
            return (v.start(g), v.end(g), _value_kind(v[g], kind))
    if a["nq"] is not None:
        return None  # `"name": value` with an unquoted value: a number, an object, ...
    bare = v["bare"]
    before = text[start - 1] if start > 0 else ""
    spaced = bool(a["sp1"] or a["sp2"])
    envish = sep == "=" and not spaced
    if before in ("?", "&") and sep == "=":  # a URL query parameter
        q = _QUERY_VALUE.match(text, a.end())
        if q is None or _PLACEHOLDER.fullmatch(q[0]):
            return None
        return (q.start(), q.end(), _value_kind(q[0], kind))
    flag = name.startswith("-")
    if flag or _is_line_start(text, start):
        if _bare_is_code(bare, spaced_equals=spaced and sep != ":"):
            return None
        if envish and not flag and not name.isupper() and _IDENTIFIER.fullmatch(bare):
            return None  # `token=token`: a keyword argument, not a .env line
    elif not (envish and before in ("", " ", "\t", ";", "&", "|") and name.isupper()):
        return None  # only `PGPASSWORD=x cmd` (a shell environment prefix) remains
    elif _bare_is_code(bare, spaced_equals=False):
        return None
    return (v.start("bare"), v.end("bare"), _value_kind(bare, kind))


def _cuts(text: str) -> Iterator[_Cut]:
    """The spans to replace, in order and without overlaps."""
    pos = 0
    for m in _SCAN.finditer(text):
        group = m.lastgroup
        if group is None:  # pragma: no cover - every branch names its group
            continue
        cut = _name_cut(text, m, pos) if group in _NAME_GROUPS else _token_cut(text, m, group)
        if cut is None:
            continue
        start, end, kind = cut
        start = max(start, pos)
        if end > start:
            yield start, end, kind
            pos = end


def _value_kind(value: str, default: str) -> str:
    """The kind of a recognisable token inside an assigned value, else `default`."""
    for m in _SCAN.finditer(value):
        group = m.lastgroup
        if group in _KIND_OF_GROUP and _token_cut(value, m, group) is not None:
            return _KIND_OF_GROUP[group]
    return default


# --- public API ----------------------------------------------------------------------------


def redact_text(text: str) -> str:
    """`text` with every secret replaced by `[REDACTED:<kind>]`; clean text comes back as is."""
    out: list[str] = []
    pos = 0
    for start, end, kind in _cuts(text):
        out.append(text[pos:start])
        out.append(_REDACTED.format(kind))
        pos = end
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


def contains_secret(text: str) -> bool:
    """Whether `redact_text` would change `text`."""
    return next(_cuts(text), None) is not None


def redact_obj(obj: Any) -> Any:
    """A redacted copy of a JSON-like value (dicts, lists, tuples, strings).

    A string under a key whose name says "secret" is replaced whole, keeping the
    key; numbers, booleans and None under such keys are kept (a count or a flag,
    not a credential). Keys are redacted as text too, so a secret used as a key
    cannot slip through. Other types come back as they are. The input is never
    modified.
    """
    if isinstance(obj, str):
        return redact_text(obj)
    if isinstance(obj, dict):
        out: dict[Any, Any] = {}
        for key, value in obj.items():
            if not isinstance(key, str):
                out[key] = redact_obj(value)
            elif isinstance(value, str) and _is_secret_key(key) and _plausible_value(key, value):
                name = _key_name(key)
                kind = "aws_secret_key" if _AWS_SECRET_NAME.fullmatch(name) else "secret_value"
                out[redact_text(key)] = _REDACTED.format(_value_kind(value, kind))
            else:
                out[redact_text(key)] = redact_obj(value)
        return out
    if isinstance(obj, list):
        return [redact_obj(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(redact_obj(v) for v in obj)
    return obj
