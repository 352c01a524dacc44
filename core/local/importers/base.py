"""The contract every source format implements for the import engine."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from core.local.importers.records import ParsedMessage, SourceFile


class Format(Protocol):
    """A source format: finds its files under a path and parses their bytes.

    `discover` must not read file contents beyond what identifying the layout
    needs; the engine reads bytes incrementally itself.
    """

    name: str

    def detect(self, path: Path) -> bool:
        """True when `path` (a file or folder) looks like this format."""
        ...

    def discover(self, path: Path) -> tuple[list[SourceFile], list[str]]:
        """The files to import under `path`, and warnings (e.g. a task missing a file)."""
        ...

    def parse_line(self, src: SourceFile, seq: int, offset: int, raw: bytes) -> ParsedMessage:
        """One line of a kind="lines" source. Never raises: a bad line comes back
        with `parse_error` set and its raw bytes kept."""
        ...

    def parse_document(self, src: SourceFile, data: bytes) -> list[ParsedMessage]:
        """All records of a kind="json" source. Never raises: an unparsable
        document comes back as one record with `parse_error` set."""
        ...
