"""Cold storage classes: asking for a thaw, and what to tell the user about the wait.

Only stores that keep objects in a cold class (S3 Glacier, Deep Archive) can
thaw; a job finds out by asking the store whether it has the capability, not
by checking which store it holds. The waits quoted are AWS's published
typical times per retrieval tier.
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

from core.remote.s3_restore import RestoreStatus

RestoreTier = Literal["Bulk", "Standard", "Expedited"]

_WAITS = {
    ("DEEP_ARCHIVE", "Standard"): "usually within 12 hours",
    ("DEEP_ARCHIVE", "Bulk"): "usually within 48 hours",
    ("GLACIER", "Expedited"): "usually 1–5 minutes",
    ("GLACIER", "Standard"): "usually 3–5 hours",
    ("GLACIER", "Bulk"): "usually 5–12 hours",
}


@runtime_checkable
class Thawable(Protocol):
    async def restore_status(self, key: str) -> RestoreStatus: ...

    async def request_restore(self, key: str, days: int, tier: RestoreTier = "Bulk") -> None: ...


def thaw_control(store: object) -> Thawable | None:
    """The store's thaw capability, looking through wrappers (retry, …)."""
    while store is not None:
        if isinstance(store, Thawable):
            return store
        store = getattr(store, "inner", None)
    return None


def expected_wait(storage_class: str, tier: str) -> str:
    if storage_class == "DEEP_ARCHIVE" and tier == "Expedited":
        return "Deep Archive has no Expedited retrieval; Standard is used"
    return _WAITS.get((storage_class, tier), "a few hours")
