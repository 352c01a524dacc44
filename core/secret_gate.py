"""The fast secret gate: where in a large byte string a secret *might* be.

`redact_text` decides exactly what to cut but runs Python at every anchor; on
megabytes of agent state full of code it costs too much. The gate is a superset
test that runs in C: every shape that `redact_text` or `redact_obj` cuts, in a
string or in its JSON encoding, is matched here too (the tests hold the two
together); the converse need not hold.

Besides yes/no, the gate says *where* it fired (`gate_hits`), so a caller that
splits a document into parts looks closer at the parts a hit falls in and keeps
the rest without scanning it again. Every match lies inside one JSON string or
one `"key":value` entry, so it names the part that holds it.

Two engines give the same answers:
- Hyperscan (the `hyperscan` wheel, x86-64 only) runs all patterns in one pass
  with the GIL released, so a snapshot's check overlaps its compression. Its
  patterns are written forward and without look-arounds, so they compile as
  they are, not in prefilter mode.
- Python's `re` is the fallback. A pattern whose first character is a literal
  runs at memchr-like speed there, while an alternation of different first
  characters runs ~10x slower, so it is a dozen single-anchor searches: token
  shapes on the bytes as they are (their case is fixed), names case-folded and
  *reversed*, so that each search starts at a rare `:` or `=` and reads the name
  backwards to a secret word (prose full of the word "token" costs nothing).
"""

from __future__ import annotations

import re

TYPE_CHECKING = False  # imported by the hook through core.redact: no `typing` at run time
if TYPE_CHECKING:
    from hyperscan import Scratch

__all__ = ["engine", "gate_hits", "might_contain_secret"]

# --- what the gate matches, written forward (Hyperscan) --------------------------------------
# name bytes: letters, digits, `_`, `.`, `-` and any non-ASCII byte
_N = rb"[A-Za-z0-9_.\x80-\xff-]"
_TAIL = rb"(?:\\?[\"'])?(?:[ \t]|\\t)*[:=]"  # an optional (escaped) quote, blanks, `:` or `=`
_FORWARD_AS_IS = (
    rb"sk-[A-Za-z0-9_-]{20}",
    rb"xox[abprs]-[A-Za-z0-9-]{10}",
    rb"-----BEGIN[ A-Z0-9]*PRIVATE KEY-",
    rb"://[^ \t\n\r\f\v:/?#@\"'\\]*:[^ \t\n\r\f\v/?#@\"'\\]+@",
    rb"://hooks\.slack\.com/services/",
    rb"A[KS]IA[A-Z0-9]{16}",
    rb"AIza[0-9A-Za-z_-]{35}",
    rb"gh[pousr]_[A-Za-z0-9]{36}",
    rb"github_pat_[A-Za-z0-9_]{22}",
    rb"ya29\.[0-9A-Za-z_-]{20}",
)
_FORWARD_CASELESS = (
    rb"bearer(?:[ \t]|\\t)+[a-z0-9._~+/-]{16}",
    rb"access.?key(?:[ \t]|\\t)+[a-z0-9/+]{40}",
    # a name holding a secret word, then the assignment: `token` but not the plural
    # (`input_tokens`), `auth` but not `author`, <api|private|...>key, and the rest
    rb"token(?:(?:s[a-z0-9]|[A-Ra-rT-Zt-z0-9_.\x80-\xff-])" + _N + rb"*)?" + _TAIL,
    rb"auth(?:(?:o[A-Qa-qS-Zs-z0-9_.\x80-\xff-]|[A-Na-nP-Zp-z0-9_.\x80-\xff-])"
    + _N
    + rb"*|o)?"
    + _TAIL,
    rb"(?:api|private|access|encryption|signing|master)[_.\x80-\xff-]*key" + _N + b"*" + _TAIL,
    rb"(?:cookie|password|passwd|pwd|secret|credential|authorization)" + _N + b"*" + _TAIL,
)

# --- the same, for `re` ------------------------------------------------------------------------
_RE_AS_IS = (
    rb"-(?:(?<=sk-)[A-Za-z0-9_-]{20}|(?<=xox[abprs]-)[A-Za-z0-9-]{10}"
    rb"|(?=-)----BEGIN[ A-Z0-9]*PRIVATE KEY-)",
    rb"://(?:[^\s:/?#@\"'\\]*:[^\s/?#@\"'\\]+@|hooks\.slack\.com/services/)",
    rb"A(?:KIA[A-Z0-9]{16}|SIA[A-Z0-9]{16}|Iza[0-9A-Za-z_-]{35})",
    rb"_(?:(?<=gh[pousr]_)[A-Za-z0-9]{36}|(?<=github_)pat_[A-Za-z0-9_]{22})",
    rb"\.(?<=ya29\.)[0-9A-Za-z_-]{20}",
)
_RE_FOLDED = (
    rb"b(?=e)earer(?:[ \t]|\\t)+[a-z0-9._~+/-]{16}",
    rb"key(?:(?<=accesskey)|(?<=access.key))(?:[ \t]|\\t)+[a-z0-9/+]{40}",
)
# token (not the plural `tokens`), <api|private|access|...>key, cookie, password,
# passwd, pwd, secret, credential, auth (not `author...`), authorization; reversed.
# Every branch starts with a literal, so `re` skips the branches that cannot match.
_REVERSED_WORD = (
    rb"(?:n(?:(?<![^a-z0-9]sn)ekot|oitazirohtua)"
    rb"|yek[_.\x80-\xff-]*(?:ipa|etavirp|ssecca|noitpyrcne|gningis|retsam)"
    rb"|eikooc|d(?:rowssap|wssap|wp)|terces|laitnederc|h(?<!roh)tua)"
)
_NOT_WORD_START = rb"[a-cf-gi-kmo-su-xz0-9_.\x80-\xff-]"  # name bytes no reversed word starts with
_RE_REVERSED = tuple(
    sep
    + rb"(?:[ \t]|t\\)*(?:[\"']\\?)?"
    # "a name that contains a secret word", unrolled so no byte is tried twice
    + (_NOT_WORD_START + rb"*+(?:(?!" + _REVERSED_WORD + rb")[dehlnty]")
    + (_NOT_WORD_START + rb"*+)*+" + _REVERSED_WORD)
    for sep in (rb":", rb"=")
)


class _ReGate:
    """The fallback: a dozen single-anchor `re` searches (see the module doc)."""

    name = "re"

    def __init__(self) -> None:
        self.as_is = [re.compile(p) for p in _RE_AS_IS]
        self.folded = [re.compile(p) for p in _RE_FOLDED]
        self.reversed = [re.compile(p) for p in _RE_REVERSED]

    def fires(self, data: bytes) -> bool:
        if any(p.search(data) for p in self.as_is):
            return True
        folded = data.lower()
        if any(p.search(folded) for p in self.folded):
            return True
        backwards = folded[::-1]
        return any(p.search(backwards) for p in self.reversed)

    def hits(self, data: bytes) -> list[int]:
        ends = [m.end() for p in self.as_is for m in p.finditer(data)]
        folded = data.lower()
        ends += [m.end() for p in self.folded for m in p.finditer(folded)]
        if b":" in data or b"=" in data:
            backwards = folded[::-1]
            n = len(data)
            ends += [n - m.start() for p in self.reversed for m in p.finditer(backwards)]
        ends.sort()
        return ends


class _HyperscanGate:
    """All patterns in one Hyperscan pass; a scratch space per thread (scans run in parallel)."""

    name = "hyperscan"

    def __init__(self) -> None:
        import threading

        import hyperscan

        patterns = _FORWARD_AS_IS + _FORWARD_CASELESS
        flags = [0] * len(_FORWARD_AS_IS) + [hyperscan.HS_FLAG_CASELESS] * len(_FORWARD_CASELESS)
        self._hs = hyperscan
        self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        self._db.compile(expressions=list(patterns), ids=list(range(len(patterns))), flags=flags)
        self._local = threading.local()
        self._scratch()  # fails here, at selection time, on a CPU Hyperscan cannot run on

    def _scratch(self) -> Scratch:
        scratch: Scratch | None = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = self._hs.Scratch(self._db)
        return scratch

    def fires(self, data: bytes) -> bool:
        try:
            self._db.scan(data, match_event_handler=_stop, scratch=self._scratch())
        except self._hs.ScanTerminated:
            return True
        return False

    def hits(self, data: bytes) -> list[int]:
        ends: list[int] = []
        add = ends.append
        self._db.scan(
            data, match_event_handler=lambda _i, _f, to, _fl, _c: add(to), scratch=self._scratch()
        )
        ends.sort()
        return ends


def _stop(*_: object) -> bool:
    return True


_engine: list[_ReGate | _HyperscanGate] = []


def _gate() -> _ReGate | _HyperscanGate:
    """Chosen and compiled on first use: the hook never needs the gate."""
    if not _engine:
        try:
            _engine.append(_HyperscanGate())
        except Exception:  # not installed, no wheel for this platform, or a CPU it cannot run on
            _engine.append(_ReGate())
    return _engine[0]


def engine() -> str:
    """Which engine runs the gate here: "hyperscan" or "re"."""
    return _gate().name


def might_contain_secret(data: bytes) -> bool:
    """A fast test on UTF-8 bytes (e.g. a JSON document): False means nothing to redact.

    True only means "look closer" (it ignores the context rules that rule out
    false positives).
    """
    return _gate().fires(data)


def gate_hits(data: bytes) -> list[int]:
    """Where the gate fires in `data`: the offset just past each match, sorted.

    Empty exactly when `might_contain_secret(data)` is False. When it fires on a
    JSON value on its own, it fires with an end inside that value's bytes in any
    document that contains the value (in a string, or as an entry of an object).
    """
    return _gate().hits(data)
