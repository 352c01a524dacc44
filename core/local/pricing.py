"""Token prices: the shipped table in resources/, overridable by the user.

Costs are computed when asked, never stored, so a corrected price applies to
all history at once.
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass
from importlib import resources as _res
from pathlib import Path

from core.errors import BadInputError

PER = 1_000_000


@dataclass(frozen=True, slots=True)
class Price:
    match: str
    input: float
    output: float
    cache_write: float
    cache_read: float

    def cost(self, inp: int, out: int, cache_write: int, cache_read: int) -> float:
        return (
            inp * self.input
            + out * self.output
            + cache_write * self.cache_write
            + cache_read * self.cache_read
        ) / PER


class PriceTable:
    def __init__(self, prices: list[Price]) -> None:
        self.prices = prices
        self._cache: dict[str, Price | None] = {}

    @classmethod
    def load(cls, override: str | Path | None = None) -> PriceTable:
        prices: list[Price] = []
        if override:
            prices += _parse(Path(override).expanduser().read_bytes(), str(override))
        prices += _parse(shipped_table().read_bytes(), "resources/pricing.toml")
        return cls(prices)

    def find(self, model: str | None) -> Price | None:
        if not model:
            return None
        if model not in self._cache:
            self._cache[model] = next(
                (p for p in self.prices if fnmatch.fnmatch(model, p.match)), None
            )
        return self._cache[model]

    def cost(self, model: str | None, inp: int, out: int, cw: int, cr: int) -> float:
        price = self.find(model)
        return 0.0 if price is None else price.cost(inp, out, cw, cr)


def shipped_table(name: str = "pricing.toml") -> Path:
    """resources/<name>, beside the packages in a checkout or an install."""
    here = Path(__file__).resolve()
    for base in (here.parents[2] / "resources", Path(str(_res.files("core"))).parent / "resources"):
        candidate = base / name
        if candidate.exists():
            return candidate
    raise BadInputError(f"The shipped table resources/{name} is missing")


def _parse(data: bytes, name: str) -> list[Price]:
    try:
        doc = tomllib.loads(data.decode("utf-8"))
        return [
            Price(
                str(m["match"]),
                float(m.get("input", 0.0)),
                float(m.get("output", 0.0)),
                float(m.get("cache_write", 0.0)),
                float(m.get("cache_read", 0.0)),
            )
            for m in doc.get("model", [])
        ]
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
        raise BadInputError(
            f"The price table {name} is not valid: {exc}",
            hint="each [[model]] needs match, input, output, cache_write, cache_read",
        ) from exc
