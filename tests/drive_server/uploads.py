"""The wire rules of Drive uploads: multipart bodies and resumable chunk ranges.

Kept strict on purpose: a product upload that breaks a rule here would break on Google too.
"""

from __future__ import annotations

import json
import re
from base64 import b64decode
from typing import Any

from tests.drive_server import errors
from tests.drive_server.store import CHUNK_GRANULARITY, UploadSession

RANGE_DATA = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
RANGE_QUERY = re.compile(r"^bytes \*/(\d+|\*)$")


def parse_json_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        parsed = json.loads(body)
    except ValueError as exc:
        raise errors.DriveError(400, "parseError", "Parse Error") from exc
    if not isinstance(parsed, dict):
        raise errors.DriveError(400, "parseError", "Parse Error")
    return parsed


def split_multipart(content_type: str, body: bytes) -> tuple[dict[str, Any], bytes, str | None]:
    """Split a multipart/related upload into (metadata, media, media content type).

    Written by hand because the client's email generator uses bare LF line ends, which
    strict multipart readers reject.
    """
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.startswith("multipart/related") or m is None:
        raise errors.bad_request("Multipart upload needs a multipart/related body.")
    delimiter = b"--" + m.group(1).encode()
    pieces = body.split(delimiter)
    # One line-end style per body: the one after the first delimiter. Stripping "\r\n"
    # where the client wrote a bare "\n" would eat a payload's own last "\r".
    eol = b"\r\n" if len(pieces) > 1 and pieces[1].startswith(b"\r\n") else b"\n"
    parts: list[tuple[dict[str, str], bytes]] = []
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            break
        piece = piece.removeprefix(eol).removesuffix(eol)
        head, sep, payload = piece.partition(b"\r\n\r\n")
        if not sep:
            head, sep, payload = piece.partition(b"\n\n")
        headers: dict[str, str] = {}
        for line in head.decode("latin-1").splitlines():
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        if headers.get("content-transfer-encoding", "").lower() == "base64":
            payload = b64decode(payload)
        parts.append((headers, payload))
    if len(parts) != 2:
        raise errors.bad_request("Multipart upload needs exactly two parts: metadata and media.")
    return parse_json_body(parts[0][1]), parts[1][1], parts[1][0].get("content-type")


def _total(session: UploadSession, total_text: str) -> int | None:
    total = None if total_text == "*" else int(total_text)
    if total is not None and session.declared_length not in (None, total):
        raise errors.bad_request(
            f"Total size {total} differs from the announced X-Upload-Content-Length "
            f"{session.declared_length}."
        )
    return total


def query_total(session: UploadSession, header: str) -> int | None:
    """The total named by a `bytes */TOTAL` status query (None when it is `*`)."""
    m = RANGE_QUERY.match(header)
    if m is None:
        raise errors.bad_request(f"Malformed Content-Range {header!r}")
    return _total(session, m.group(1))


def check_chunk(session: UploadSession, header: str | None, body: bytes) -> bool:
    """Validate one chunk PUT against the session; True if it completes the upload."""
    have = len(session.received)
    if header is None:  # the whole content in one request (e.g. an empty file)
        start, end = have, have + len(body) - 1
        total = _total(session, str(end + 1))
    else:
        m = RANGE_DATA.match(header)
        if m is None:
            raise errors.bad_request(f"Malformed Content-Range {header!r}")
        start, end = int(m.group(1)), int(m.group(2))
        total = _total(session, m.group(3))
    if start != have:
        raise errors.bad_request(
            f"Chunk starts at {start} but {have} bytes were received; "
            "ask with 'Content-Range: bytes */TOTAL' and resume from there."
        )
    if end - start + 1 != len(body):
        raise errors.bad_request(
            f"Content-Range covers {end - start + 1} bytes but the body has {len(body)}."
        )
    if total is not None and end + 1 > total:
        raise errors.bad_request("Chunk runs past the declared total size.")
    last = total is not None and end + 1 == total
    if not last and len(body) % CHUNK_GRANULARITY:
        raise errors.bad_request(
            "Invalid request. Chunks other than the last must be a multiple of "
            f"{CHUNK_GRANULARITY} bytes; got {len(body)}."
        )
    return last
