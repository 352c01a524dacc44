"""Whether an archived S3 object can be read, from what HeadObject says.

Glacier Flexible Retrieval and Deep Archive objects are listed and can be
HEADed, but a GET fails until a restore has made a temporary copy. S3 reports
the restore in the `x-amz-restore` header: `ongoing-request="true"` while it
runs (hours for Deep Archive), then `ongoing-request="false",
expiry-date="…"` until the copy expires. Intelligent-Tiering's archive tiers
say the same through `x-amz-archive-status`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

ARCHIVE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})
"""Classes whose objects need a restore before a GET (Glacier Instant Retrieval does not)."""

RestoreTier = Literal["Bulk", "Standard", "Expedited"]
RestoreState = Literal["not_archived", "not_requested", "ongoing", "restored"]

_ONGOING = re.compile(r'ongoing-request\s*=\s*"(true|false)"', re.IGNORECASE)
_EXPIRY = re.compile(r'expiry-date\s*=\s*"([^"]+)"', re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class RestoreStatus:
    state: RestoreState
    storage_class: str
    expiry: datetime | None = None
    """When the restored copy goes away again (state `restored` only)."""

    @property
    def readable(self) -> bool:
        return self.state in ("not_archived", "restored")


def parse_restore_header(text: str | None) -> tuple[bool | None, datetime | None]:
    """(ongoing?, expiry) from `x-amz-restore`; (None, None) when there is none."""
    if not text:
        return None, None
    ongoing = _ONGOING.search(text)
    expiry_match = _EXPIRY.search(text)
    expiry: datetime | None = None
    if expiry_match:
        try:
            expiry = parsedate_to_datetime(expiry_match.group(1))
        except (TypeError, ValueError):
            expiry = None
        if expiry is not None and expiry.tzinfo is None:
            expiry = expiry.replace(tzinfo=UTC)
    if ongoing is None:
        return None, expiry
    return ongoing.group(1).lower() == "true", expiry


def restore_status(head: dict[str, Any]) -> RestoreStatus:
    """The status for a HeadObject response (boto3's dict)."""
    storage_class = str(head.get("StorageClass") or "STANDARD")
    archived = storage_class in ARCHIVE_CLASSES or bool(head.get("ArchiveStatus"))
    if not archived:
        return RestoreStatus("not_archived", storage_class)
    ongoing, expiry = parse_restore_header(head.get("Restore"))
    if ongoing is None:
        return RestoreStatus("not_requested", storage_class)
    if ongoing:
        return RestoreStatus("ongoing", storage_class)
    if expiry is not None and expiry <= datetime.now(UTC):
        return RestoreStatus("not_requested", storage_class)  # the copy has expired
    return RestoreStatus("restored", storage_class, expiry)
