"""The `q`, `orderBy` and `fields` mini-languages of Drive v3.

Only the forms a backup tool needs are understood; anything else is a 400, as on Drive, so a
product query that the fake cannot judge fails loudly instead of matching everything.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from tests.drive_server import errors
from tests.drive_server.store import DriveFile, parse_rfc3339

Predicate = Callable[[DriveFile], bool]

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<op>!=|<=|>=|=|<|>)|(?P<punct>[(){}])"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*))"
)
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_TIME_FIELDS = {"createdTime": "created", "modifiedTime": "modified"}


def _bad_q(detail: str) -> errors.DriveError:
    return errors.invalid_parameter("q", f"Invalid Value: {detail}")


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise _bad_q(f"unexpected text at {pos}: {text[pos : pos + 20]!r}")
        kind = m.lastgroup
        assert kind is not None
        value = m.group(kind)
        if kind == "str":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        tokens.append((kind, value))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, text: str, root_id: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0
        self.root_id = root_id

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, kind: str, value: str | None = None) -> str:
        tok = self.peek()
        if tok is None or tok[0] != kind or (value is not None and tok[1].lower() != value):
            want = value or kind
            raise _bad_q(f"expected {want!r} at token {self.pos}, got {tok[1] if tok else 'end'!r}")
        self.pos += 1
        return tok[1]

    def at_word(self, word: str) -> bool:
        tok = self.peek()
        return tok is not None and tok[0] == "word" and tok[1].lower() == word

    def parse(self) -> Predicate:
        pred = self.or_expr()
        if self.peek() is not None:
            raise _bad_q(f"unexpected {self.peek()!r}")
        return pred

    def or_expr(self) -> Predicate:
        parts = [self.and_expr()]
        while self.at_word("or"):
            self.pos += 1
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda f: any(p(f) for p in parts))

    def and_expr(self) -> Predicate:
        parts = [self.unary()]
        while self.at_word("and"):
            self.pos += 1
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda f: all(p(f) for p in parts))

    def unary(self) -> Predicate:
        if self.at_word("not"):
            self.pos += 1
            inner = self.unary()
            return lambda f: not inner(f)
        tok = self.peek()
        if tok == ("punct", "("):
            self.pos += 1
            inner = self.or_expr()
            self.take("punct", ")")
            return inner
        return self.term()

    def term(self) -> Predicate:
        tok = self.peek()
        if tok is None:
            raise _bad_q("unexpected end of query")
        if tok[0] == "str":
            parent = self.take("str")
            self.take("word", "in")
            self.take("word", "parents")
            parent = self.root_id if parent == "root" else parent
            return lambda f: parent in f.parents
        name = self.take("word")
        if self.at_word("has"):
            self.pos += 1
            return self.has_term(name)
        if self.at_word("contains"):
            self.pos += 1
            needle = self.take("str")
            if name == "name":
                return lambda f: needle.lower() in f.name.lower()
            raise _bad_q(f"'contains' is not supported on {name}")
        op = self.take("op")
        return self.comparison(name, op)

    def has_term(self, name: str) -> Predicate:
        if name not in ("appProperties", "properties"):
            raise _bad_q(f"'has' is not supported on {name}")
        self.take("punct", "{")
        self.take("word", "key")
        self.take("op", "=")
        key = self.take("str")
        self.take("word", "and")
        self.take("word", "value")
        self.take("op", "=")
        value = self.take("str")
        self.take("punct", "}")
        if name == "appProperties":
            return lambda f: f.app_properties.get(key) == value
        return lambda f: f.properties.get(key) == value

    def comparison(self, name: str, op: str) -> Predicate:
        compare = _COMPARISONS[op]
        if name in ("name", "mimeType"):
            if op not in ("=", "!="):
                raise _bad_q(f"operator {op} is not supported on {name}")
            value = self.take("str")
            attr = "name" if name == "name" else "mime_type"
            return lambda f: bool(compare(getattr(f, attr), value))
        if name == "trashed":
            if op not in ("=", "!="):
                raise _bad_q(f"operator {op} is not supported on trashed")
            word = self.take("word").lower()
            if word not in ("true", "false"):
                raise _bad_q("trashed compares with true or false")
            flag = word == "true"
            return lambda f: bool(compare(f.trashed, flag))
        if name in _TIME_FIELDS:
            moment: datetime = parse_rfc3339(self.take("str"))
            attr = _TIME_FIELDS[name]
            return lambda f: bool(compare(getattr(f, attr), moment))
        raise _bad_q(f"unsupported field {name}")


def parse_q(text: str | None, root_id: str) -> Predicate:
    """Compile a Drive query; `root_id` stands in for the alias 'root' in `in parents`."""
    if text is None or not text.strip():
        return lambda f: True
    return _Parser(text, root_id).parse()


_ORDER_KEYS: dict[str, Callable[[DriveFile], Any]] = {
    "name": lambda f: f.name,
    "name_natural": lambda f: f.name.lower(),
    "createdTime": lambda f: f.created,
    "modifiedTime": lambda f: f.modified,
    "folder": lambda f: not f.is_folder,  # folders first, as on Drive
    "quotaBytesUsed": lambda f: f.size,
}


def parse_order_by(text: str | None) -> Callable[[list[DriveFile]], None]:
    """Return an in-place sorter; without orderBy the store's creation order is kept."""
    if text is None or not text.strip():
        return lambda files: None
    keys: list[tuple[Callable[[DriveFile], Any], bool]] = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].lower() != "desc"):
            raise errors.invalid_parameter("orderBy")
        key = _ORDER_KEYS.get(words[0])
        if key is None:
            raise errors.invalid_parameter("orderBy", f"Invalid orderBy key {words[0]!r}")
        keys.append((key, len(words) == 2))

    def sorter(files: list[DriveFile]) -> None:
        for key, descending in reversed(keys):  # stable sorts, least significant key first
            files.sort(key=key, reverse=descending)

    return sorter


# --- fields (partial response) -----------------------------------------------------------

FieldTree = dict[str, "FieldTree | None"]  # None: the whole value

_FIELD_TOKEN = re.compile(r"\s*([A-Za-z_*][A-Za-z0-9_]*|[(),/])")


def parse_fields(text: str) -> FieldTree:
    tokens: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _FIELD_TOKEN.match(text, pos)
        if m is None:
            raise errors.invalid_parameter("fields", f"Invalid field selection {text!r}")
        tokens.append(m.group(1))
        pos = m.end()
    index = 0

    def fail() -> errors.DriveError:
        return errors.invalid_parameter("fields", f"Invalid field selection {text!r}")

    def parse_list(closing: str | None) -> FieldTree:
        nonlocal index
        tree: FieldTree = {}
        while True:
            if index >= len(tokens) or not (tokens[index][0].isalpha() or tokens[index][0] in "_*"):
                raise fail()
            path = [tokens[index]]
            index += 1
            while index < len(tokens) and tokens[index] == "/":
                index += 1
                if index >= len(tokens):
                    raise fail()
                path.append(tokens[index])
                index += 1
            sub: FieldTree | None = None
            if index < len(tokens) and tokens[index] == "(":
                index += 1
                sub = parse_list(")")
            for name in reversed(path[1:]):
                sub = {name: sub}
            _merge(tree, path[0], sub)
            if index < len(tokens) and tokens[index] == ",":
                index += 1
                continue
            break
        if closing is not None:
            if index >= len(tokens) or tokens[index] != closing:
                raise fail()
            index += 1
        return tree

    tree = parse_list(None)
    if index != len(tokens):
        raise fail()
    return tree


def _merge(tree: FieldTree, name: str, sub: FieldTree | None) -> None:
    if name not in tree:
        tree[name] = sub
        return
    existing = tree[name]
    if existing is None or sub is None:
        tree[name] = None
        return
    for key, value in sub.items():
        _merge(existing, key, value)


def validate_fields(tree: FieldTree, schema: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Reject selections naming fields the resource does not have, as Drive does."""
    props = schema.get("properties", {})
    for name, sub in tree.items():
        if name == "*":
            continue
        prop = props.get(name)
        if prop is None:
            raise errors.invalid_parameter("fields", f"Invalid field selection {name}")
        if sub is None:
            continue
        target = prop.get("items", prop) if prop.get("type") == "array" else prop
        if "$ref" in target:
            target = schemas[target["$ref"]]
        validate_fields(sub, target, schemas)


def select(value: Any, tree: FieldTree | None) -> Any:
    if tree is None or ("*" in tree and len(tree) == 1):
        return value
    if isinstance(value, list):
        return [select(item, tree) for item in value]
    if not isinstance(value, dict):
        return value
    if "*" in tree:
        return {k: select(v, tree.get(k)) for k, v in value.items()}
    return {k: select(value[k], sub) for k, sub in tree.items() if k in value}
