"""A target's index: which phases and sessions it holds, checksummed, written after each run.

The index lets a rebuild tell "nothing was there" from "a manifest went
missing", and it carries what a fresh machine cannot know otherwise: whether
the target is encrypted, and the (public) scrypt parameters that turn the
user's passphrase back into the key. So it is never encrypted itself; it holds
ids, phase names and digests, no content.

Integrity: the digest covers the canonical bytes of `body` (JSON, keys sorted,
no spaces, UTF-8). Plain targets get a SHA-256 checksum (it catches damage,
not forgery); encrypted targets an HMAC-SHA256 with a key derived from the
encryption key, so an index that was altered by someone without the key is
refused.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

import orjson

from core import __version__
from core.errors import BadInputError
from core.packing import IntegrityError
from core.packing.crypto import Key

INDEX = "index.json"
INDEX_VERSION = 1
KIND = "tierkeeper-index"
_HMAC_LABEL = b"tierkeeper index hmac v1"


def canonical(body: dict[str, Any]) -> bytes:
    """Also what `json.dumps(body, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False).encode()` gives: the index holds no floats."""
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def _hmac_key(key: Key) -> bytes:
    return hmac.new(key.secret, _HMAC_LABEL, hashlib.sha256).digest()


def seal(body: dict[str, Any], key: Key | None) -> bytes:
    data = canonical(body)
    if key is None:
        integrity = {"method": "sha256", "value": hashlib.sha256(data).hexdigest()}
    else:
        mac = hmac.new(_hmac_key(key), data, hashlib.sha256).hexdigest()
        integrity = {"method": "hmac-sha256", "value": mac}
    return (
        orjson.dumps({"body": body, "integrity": integrity},
                     option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"
    )  # fmt: skip


def new_body(tier: int, encryption: dict[str, Any] | None, **fields: Any) -> dict[str, Any]:
    return {"kind": KIND, "index_version": INDEX_VERSION, "tier": tier,
            "tool_version": __version__, "written_at": datetime.now(UTC).isoformat(),
            "encryption": encryption, **fields}  # fmt: skip


def read_body(data: bytes) -> dict[str, Any]:
    """The body, unchecked: an encrypted target's key comes from what it says."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadInputError(f"The index is not valid JSON ({exc})") from exc
    body = doc.get("body") if isinstance(doc, dict) else None
    if not isinstance(body, dict) or body.get("kind") != KIND:
        raise BadInputError("The index is not a Tierkeeper index")
    if body.get("index_version") != INDEX_VERSION:
        raise BadInputError(
            f"The index has index_version {body.get('index_version')!r}; this Tierkeeper "
            f"reads {INDEX_VERSION}",
            hint="update Tierkeeper to read it",
        )
    return body


def check(data: bytes, key: Key | None) -> dict[str, Any]:
    """The body once its checksum (or HMAC, with the key) matches."""
    body = read_body(data)
    integrity = orjson.loads(data).get("integrity") or {}
    method, value = integrity.get("method"), integrity.get("value")
    payload = canonical(body)
    if method == "sha256":
        good = hmac.compare_digest(hashlib.sha256(payload).hexdigest(), str(value))
    elif method == "hmac-sha256":
        if key is None:
            raise BadInputError("The index is signed with the encryption key; it is needed")
        expect = hmac.new(_hmac_key(key), payload, hashlib.sha256).hexdigest()
        good = hmac.compare_digest(expect, str(value))
    else:
        raise BadInputError(f"The index names no integrity method this Tierkeeper knows "
                            f"({method!r})")  # fmt: skip
    if not good:
        raise IntegrityError("The index does not match its checksum: it is damaged or altered")
    if body.get("encryption") and method != "hmac-sha256":
        raise IntegrityError("An encrypted target's index carries no HMAC: it was altered")
    return body
