"""The incremental, lossless import engine.

Per source file the engine remembers size, mtime, bytes read, lines read and
the SHA-256 of the bytes read. On the next run an unchanged file costs one
`stat`; a grown file is first proven to be an append (the old bytes hash to
the stored digest) and then only the new bytes are parsed; anything else is a
rewrite and the file is imported afresh. After each file the number of lines
(or array elements) read must equal the rows stored, or the import fails loudly.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.errors import BadInputError, NotFoundError, StorageFullError, TierkeeperError
from core.local.db.database import Database, Row
from core.local.importers.base import Format
from core.local.importers.reader import Line, LineReader, hash_prefix
from core.local.importers.records import ParsedMessage, SourceFile
from core.local.importers.store import (
    RecordWriter,
    forget_rows,
    now_iso,
    refresh_message_count,
)
from core.models import ImportReport
from core.paths import user_path
from core.redact import contains_secret, might_contain_secret, redact_text

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]
"""Called with (bytes done, bytes total)."""


@dataclass(slots=True)
class FileOutcome:
    path: str
    status: str  # skipped | imported | appended | rewritten | failed
    lines: int = 0
    rows: int = 0
    bad: int = 0
    bytes: int = 0
    error: str | None = None


class ImportEngine:
    def __init__(
        self,
        db: Database,
        formats: Mapping[str, Format],
        *,
        phase: str | None = None,
        batch_lines: int = 2000,
        batch_bytes: int = 8 << 20,
        on_progress: ProgressFn | None = None,
        check_cancel: Callable[[], None] | None = None,
        skip_known_content: bool = False,
    ) -> None:
        """`skip_known_content`: for files brought back from a backup or an archive, whose
        bytes the DB usually holds already under their original path."""
        self.db = db
        self.skip_known_content = skip_known_content
        self.formats = formats
        self.phase = phase
        self.batch_lines = batch_lines
        self.batch_bytes = batch_bytes
        self._on_progress = on_progress
        self._check_cancel = check_cancel
        self._writer = RecordWriter()
        self._base = 0
        self._file_done = 0
        self._total = 0

    # planning ---------------------------------------------------------------
    def detect(self, path: Path) -> Format:
        for fmt in self.formats.values():
            if fmt.detect(path):
                return fmt
        raise BadInputError(
            f"Cannot tell what kind of agent data {path} holds",
            hint="pass --format (claude-code, roo, cline or tierkeeper)",
        )

    def plan(
        self, paths: Sequence[str | Path], fmt: str = "auto"
    ) -> tuple[list[tuple[Format, SourceFile]], list[str]]:
        work: list[tuple[Format, SourceFile]] = []
        warnings: list[str] = []
        for raw in paths:
            path = user_path(str(raw))
            if not path.exists():
                raise NotFoundError(f"{path} does not exist", hint="check the path and try again")
            if fmt == "auto":
                chosen = self.detect(path)
            elif fmt in self.formats:
                chosen = self.formats[fmt]
            else:
                raise BadInputError(
                    f"Unknown format {fmt!r}", hint=f"use one of: auto, {', '.join(self.formats)}"
                )
            try:
                files, warns = chosen.discover(path)
            except PermissionError as exc:
                raise BadInputError(
                    f"Permission denied listing {path}", hint="give read access and retry"
                ) from exc
            work.extend((chosen, f) for f in files)
            warnings.extend(warns)
        return work, warnings

    # running ----------------------------------------------------------------
    async def run(self, paths: Sequence[str | Path], fmt: str = "auto") -> ImportReport:
        work, warnings = await asyncio.to_thread(self.plan, paths, fmt)
        return await self.run_files(work, warnings)

    async def run_files(
        self, work: Sequence[tuple[Format, SourceFile]], warnings: Sequence[str] = ()
    ) -> ImportReport:
        report = ImportReport(errors=list(warnings))
        sizes = await asyncio.to_thread(_sizes, [src.path for _, src in work])
        self._total = sum(sizes)
        self._base = 0
        sessions: set[str] = set()
        for (fmt, src), size in zip(work, sizes, strict=True):
            if self._check_cancel:
                self._check_cancel()
            self._file_done = 0
            outcome = await self.import_file(fmt, src)
            self._base += size
            self._file_done = 0
            self._advance(0)
            report.files_seen += 1
            report.lines_read += outcome.lines
            report.rows_stored += outcome.rows
            report.bad_lines += outcome.bad
            report.bytes_read += outcome.bytes
            if outcome.status == "failed":
                report.files_failed += 1
                report.errors.append(f"{src.path}: {outcome.error}")
            elif outcome.status == "skipped":
                report.files_skipped += 1
            else:
                report.files_imported += 1
                report.files_rewritten += outcome.status == "rewritten"
                sessions.add(src.session.id)
        report.sessions = len(sessions)
        return report

    def _advance(self, nbytes: int) -> None:
        """Progress = whole files finished + bytes read of the current one."""
        self._file_done += max(nbytes, 0)
        if self._on_progress:
            self._on_progress(min(self._base + self._file_done, self._total), self._total)

    async def import_file(self, fmt: Format, src: SourceFile) -> FileOutcome:
        try:
            if self.skip_known_content and await self._held_elsewhere(src):
                return FileOutcome(src.path, "skipped")
            if src.kind == "lines":
                return await self._import_lines(fmt, src)
            return await self._import_document(fmt, src)
        except (StorageFullError, asyncio.CancelledError):
            raise
        except TierkeeperError as exc:
            if "not a usable SQLite" in exc.message:
                raise
            return FileOutcome(src.path, "failed", error=str(exc))
        except PermissionError:
            return FileOutcome(
                src.path, "failed", error="permission denied — give read access and re-run"
            )
        except FileNotFoundError:
            return FileOutcome(src.path, "failed", error="the file vanished during the import")
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise StorageFullError(
                    "The disk is full", hint="free some space and re-run the import"
                ) from exc
            return FileOutcome(src.path, "failed", error=f"cannot read: {exc.strerror or exc}")

    async def _held_elsewhere(self, src: SourceFile) -> bool:
        """A new path whose bytes the DB already holds whole under another path (a restored
        or copied file) adds nothing: importing it again would only duplicate its rows."""
        if await self._source_row(src) is not None:
            return False
        size = (await asyncio.to_thread(os.stat, src.path)).st_size
        rows = await self.db.fetchall(
            "SELECT sha256 FROM sources WHERE size = ? AND bytes_read = size "
            "AND sha256 IS NOT NULL",
            (size,),
        )
        if not rows:
            return False
        digest = await asyncio.to_thread(_file_sha256, Path(src.path))
        return any(r[0] == digest for r in rows)

    async def _source_row(self, src: SourceFile) -> Row | None:
        return await self.db.fetchone("SELECT * FROM sources WHERE path = ?", (src.path,))

    async def _ensure_source(self, src: SourceFile) -> int:
        row = await self._source_row(src)
        if row is not None:
            return int(row["id"])
        return await self.db.execute(
            "INSERT INTO sources(path, format, kind, role, session_id) VALUES (?,?,?,?,?)",
            (src.path, src.format, src.kind, src.role, src.session.id),
        )

    # JSON Lines ---------------------------------------------------------------
    async def _import_lines(self, fmt: Format, src: SourceFile) -> FileOutcome:
        path = Path(src.path)
        st = await asyncio.to_thread(os.stat, path)
        row = await self._source_row(src)
        if row is not None and row["size"] == st.st_size and row["mtime_ns"] == st.st_mtime_ns:
            return FileOutcome(src.path, "skipped")
        source_id = await self._ensure_source(src)

        status = "imported"
        start, seq, lines_before, rows_before, bad_before = 0, 0, 0, 0, 0
        hasher = hashlib.sha256()
        if row is not None and row["bytes_read"] > 0:
            bytes_read = int(row["bytes_read"])
            partial = row["partial_offset"]
            appended = False
            if st.st_size >= bytes_read:
                upto, at_mark = await asyncio.to_thread(hash_prefix, path, bytes_read, partial)
                appended = upto.hexdigest() == row["sha256"]
            if appended:
                status = "appended"
                lines_before = int(row["lines_read"])
                rows_before = int(row["rows_stored"])
                bad_before = int(row["bad_lines"])
                if partial is not None and at_mark is not None:
                    start, hasher = int(partial), at_mark
                    lines_before -= 1
                    rows_before -= 1
                    if await self._partial_was_bad(source_id, lines_before):
                        bad_before -= 1
                else:
                    start, hasher = bytes_read, upto
                seq = lines_before
            else:
                status = "rewritten"
        async with self.db.transaction() as tx:
            await forget_rows(tx, source_id, seq)
            if status == "rewritten":
                await tx.execute(
                    "UPDATE sources SET bytes_read=0, lines_read=0, rows_stored=0, bad_lines=0,"
                    " partial_offset=NULL, sha256=NULL WHERE id=?",
                    (source_id,),
                )
        reader = await asyncio.to_thread(LineReader, path, start, st.st_size)
        lines, rows, bad = lines_before, rows_before, bad_before
        pos = start
        try:
            while not reader.eof:
                if self._check_cancel:
                    self._check_cancel()
                batch = await asyncio.to_thread(self._parse_batch, fmt, src, reader, hasher, seq)
                if not batch:
                    break
                records, partial_at = batch
                seq += len(records)
                lines += len(records)
                bad += sum(1 for r in records if r.parse_error)
                last = records[-1]
                pos = (last.byte_offset or 0) + (last.source_len or len(last.raw))
                async with self.db.transaction() as tx:
                    await self._writer.write_messages(tx, source_id, src.session.id, records)
                    await self._writer.upsert_session(tx, src.session, records, self.phase)
                    stored = await tx.fetchone(
                        "SELECT count(*) FROM messages WHERE source_id = ?", (source_id,)
                    )
                    rows = int(stored[0]) if stored else 0
                    await tx.execute(
                        "UPDATE sources SET size=?, mtime_ns=?, bytes_read=?, lines_read=?,"
                        " rows_stored=?, bad_lines=?, partial_offset=?, sha256=?, imported_at=?"
                        " WHERE id=?",
                        (
                            pos, st.st_mtime_ns, pos, lines, rows,
                            bad, partial_at, hasher.hexdigest(), now_iso(), source_id,
                        ),
                    )  # fmt: skip
                self._advance(sum(r.source_len or len(r.raw) for r in records))
        finally:
            reader.close()
        async with self.db.transaction() as tx:
            await self._writer.upsert_session(tx, src.session, [], self.phase)
            await refresh_message_count(tx, src.session.id)
            if pos == start:  # nothing new was read (an empty file, or only touched)
                await tx.execute(
                    "UPDATE sources SET size=?, mtime_ns=?, bytes_read=?, sha256=?,"
                    " imported_at=? WHERE id=?",
                    (pos, st.st_mtime_ns, pos, hasher.hexdigest(), now_iso(), source_id),
                )
        await self._check_counts(source_id, src.path)
        return FileOutcome(
            src.path, status, lines - lines_before, rows - rows_before, bad - bad_before,
            pos - start,
        )  # fmt: skip

    def _parse_batch(
        self,
        fmt: Format,
        src: SourceFile,
        reader: LineReader,
        hasher: hashlib._Hash,
        seq: int,
    ) -> tuple[list[ParsedMessage], int | None] | None:
        lines: list[Line] = reader.next_batch(self.batch_lines, self.batch_bytes)
        if not lines:
            return None
        records = []
        partial_at: int | None = None
        for i, line in enumerate(lines):
            hasher.update(line.raw)
            rec = redact_record(fmt.parse_line(src, seq + i, line.offset, line.raw))
            rec.byte_offset = line.offset
            rec.source_len = len(line.raw)
            if line.partial:
                rec.partial = True
                partial_at = line.offset
                if rec.parse_error:
                    rec.parse_error = f"incomplete last line (no newline yet): {rec.parse_error}"
            hint = rec.session_hint
            if src.session.is_subagent and src.session.parent_id is None and hint:
                src.session.parent_id = hint if hint != src.session.id else None
            records.append(rec)
        return records, partial_at

    async def _partial_was_bad(self, source_id: int, seq: int) -> bool:
        row = await self.db.fetchone(
            "SELECT parse_error IS NOT NULL FROM messages WHERE source_id=? AND seq=?",
            (source_id, seq),
        )
        return bool(row and row[0])

    # whole JSON documents -----------------------------------------------------
    async def _import_document(self, fmt: Format, src: SourceFile) -> FileOutcome:
        path = Path(src.path)
        st = await asyncio.to_thread(os.stat, path)
        row = await self._source_row(src)
        if row is not None and row["size"] == st.st_size and row["mtime_ns"] == st.st_mtime_ns:
            return FileOutcome(src.path, "skipped")
        data = await asyncio.to_thread(path.read_bytes)
        digest = hashlib.sha256(data).hexdigest()
        if row is not None and row["sha256"] == digest:
            await self.db.execute(
                "UPDATE sources SET size=?, mtime_ns=? WHERE id=?",
                (len(data), st.st_mtime_ns, row["id"]),
            )
            return FileOutcome(src.path, "skipped", bytes=len(data))
        source_id = await self._ensure_source(src)
        records = await asyncio.to_thread(_parse_document, fmt, src, data)
        kept = await asyncio.to_thread(redact_bytes, data)
        packed = await asyncio.to_thread(self._writer.compress, kept)
        bad = sum(1 for r in records if r.parse_error)
        async with self.db.transaction() as tx:
            await forget_rows(tx, source_id, 0)
            await tx.execute(
                "INSERT INTO raw_files(source_id, size, sha256, data) VALUES (?,?,?,?)",
                (source_id, len(data), digest, packed),
            )
            await self._writer.write_messages(
                tx, source_id, src.session.id, records, keep_raw=False
            )
            await self._writer.upsert_session(tx, src.session, records, self.phase)
            await refresh_message_count(tx, src.session.id)
            await tx.execute(
                "UPDATE sources SET size=?, mtime_ns=?, bytes_read=?, lines_read=?, rows_stored=?,"
                " bad_lines=?, partial_offset=NULL, sha256=?, imported_at=? WHERE id=?",
                (
                    len(data), st.st_mtime_ns, len(data), len(records), len(records), bad,
                    digest, now_iso(), source_id,
                ),
            )  # fmt: skip
        await self._check_counts(source_id, src.path)
        status = "imported" if row is None else "rewritten"
        return FileOutcome(src.path, status, len(records), len(records), bad, len(data))

    async def _check_counts(self, source_id: int, path: str) -> None:
        row = await self.db.fetchone(
            "SELECT lines_read, (SELECT count(*) FROM messages WHERE source_id = s.id)"
            " FROM sources s WHERE id = ?",
            (source_id,),
        )
        if row is not None and row[0] != row[1]:
            raise TierkeeperError(
                f"Import check failed for {path}: read {row[0]} records but {row[1]} are stored",
                hint="re-run the import; if it persists, report it with `--debug` output",
            )


def _parse_document(fmt: Format, src: SourceFile, data: bytes) -> list[ParsedMessage]:
    records = fmt.parse_document(src, data)
    for i, rec in enumerate(records):
        rec.seq = i
        redact_record(rec)
    return records


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def redact_bytes(data: bytes) -> bytes:
    """Secrets cut from raw bytes; bytes that are not UTF-8 pass through unchanged."""
    if not might_contain_secret(data):
        return data
    text = data.decode("utf-8", "surrogateescape")
    if not contains_secret(text):
        return data
    return redact_text(text).encode("utf-8", "surrogateescape")


def redact_record(rec: ParsedMessage) -> ParsedMessage:
    """Secrets never reach the DB: raw bytes, search text and tool text alike.

    A redacted raw line is marked, so export can say why it differs from the source.
    """
    raw = redact_bytes(rec.raw)
    if raw is not rec.raw:
        rec.raw, rec.redacted = raw, True
    if rec.text and contains_secret(rec.text):
        rec.text = redact_text(rec.text)
    if rec.tools and contains_secret(rec.tools):
        rec.tools = redact_text(rec.tools)
    # tool_calls keeps previews of inputs and of failed outputs (quoted by the phase review)
    for use in rec.tool_uses:
        if use.input and contains_secret(use.input):
            use.input = redact_text(use.input)
    for res in rec.tool_results:
        if res.output and contains_secret(res.output):
            res.output = redact_text(res.output)
    return rec


def _sizes(paths: Sequence[str]) -> list[int]:
    out = []
    for p in paths:
        try:
            out.append(Path(p).stat().st_size)
        except OSError:
            out.append(0)
    return out
