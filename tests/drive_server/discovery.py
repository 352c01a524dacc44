"""The Drive v3 discovery document that ships inside google-api-python-client.

Both the fake server (to know which `fields` names exist) and the client wiring (to re-root
the API at the fake) read the very document the real client uses, so the two cannot drift.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

_DOCUMENT = "discovery_cache/documents/drive.v3.json"


@cache
def _shipped_text() -> str:
    return resources.files("googleapiclient").joinpath(_DOCUMENT).read_text(encoding="utf-8")


def shipped_document() -> dict[str, Any]:
    """A fresh copy each call, so callers may edit it."""
    doc: dict[str, Any] = json.loads(_shipped_text())
    return doc


@cache
def schemas() -> dict[str, Any]:
    found: dict[str, Any] = shipped_document()["schemas"]
    return found
