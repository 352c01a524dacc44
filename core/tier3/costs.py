"""What archiving and thawing will cost, from a price table the user can override.

Estimates, not bills: list prices per storage class (resources/storage_prices.toml),
sizes as stored. What people are surprised by in Deep Archive is the minimum
storage duration (180 days: deleting or overwriting earlier is billed as if the
object had stayed) and the retrieval fee per GB; both are spelled out before
anything is done.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.errors import BadInputError
from core.local.pricing import shipped_table

GB = 1024**3


@dataclass(frozen=True, slots=True)
class ClassPrice:
    storage: float
    put: float
    min_days: int
    retrieval: dict[str, tuple[float, float]]


class StoragePrices:
    def __init__(self, classes: dict[str, ClassPrice]) -> None:
        self.classes = classes

    @classmethod
    def load(cls, override: str | Path | None = None) -> StoragePrices:
        classes = _parse(shipped_table("storage_prices.toml").read_bytes())
        if override is not None:
            path = Path(override).expanduser()
            try:
                classes.update(_parse(path.read_bytes()))
            except OSError as exc:
                raise BadInputError(f"Cannot read the storage price table {path}: {exc}") from exc
        return cls(classes)

    def of(self, storage_class: str) -> ClassPrice:
        found = self.classes.get(storage_class)
        if found is None:
            raise BadInputError(f"No prices for storage class {storage_class!r}",
                                hint="add it to your storage price table")  # fmt: skip
        return found

    def archive_estimate(self, size: int, storage_class: str, objects: int = 2) -> str:
        p = self.of(storage_class)
        monthly = size / GB * p.storage
        line = (f"{_usd(monthly)} a month in {storage_class} for {_size(size)}, "
                f"{_usd(objects * p.put / 1000)} to upload")  # fmt: skip
        if p.min_days:
            line += f"; billed for at least {p.min_days} days ({_usd(monthly * p.min_days / 30)})"
        return line

    def restore_estimate(self, size: int, storage_class: str, tier: str) -> str:
        p = self.of(storage_class)
        if not p.retrieval:
            return f"no retrieval fee in {storage_class}"
        per_gb, per_1000 = p.retrieval.get(tier) or p.retrieval.get("Standard") or (0.0, 0.0)
        return (f"about {_usd(size / GB * per_gb + per_1000 / 1000)} to thaw {_size(size)} "
                f"from {storage_class} ({tier})")  # fmt: skip

    def early_deletion(self, size: int, storage_class: str, stored_at: datetime) -> float:
        """What deleting (or overwriting) now costs beyond the storage already used."""
        p = self.of(storage_class)
        age = (datetime.now(UTC) - stored_at).total_seconds() / 86400
        left = max(0.0, p.min_days - age)
        return size / GB * p.storage * left / 30


def _usd(amount: float) -> str:
    return f"${amount:,.2f}" if amount >= 0.01 or amount == 0 else "under $0.01"


def _size(n: int) -> str:
    return f"{n / GB:.2f} GB" if n >= GB / 10 else f"{n / 1024**2:.1f} MB"


def _parse(data: bytes) -> dict[str, ClassPrice]:
    try:
        doc: dict[str, Any] = tomllib.loads(data.decode("utf-8"))
        out = {}
        for name, c in doc.get("class", {}).items():
            retrieval = {tier: (float(v["per_gb"]), float(v["per_1000"]))
                         for tier, v in c.get("retrieval", {}).items()}  # fmt: skip
            out[name] = ClassPrice(float(c["storage"]), float(c["put"]), int(c["min_days"]),
                                   retrieval)  # fmt: skip
        return out
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
        raise BadInputError(f"The storage price table is not valid: {exc}") from exc
