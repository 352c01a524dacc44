"""The workspace's own layout (and the original plan's `.claude/` folder).

`logs/session_<id>.jsonl` lines become messages (kept raw, searchable) plus
structured `events` rows; handoff notes and state snapshots are kept whole.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson

from core.errors import NotFoundError
from core.local.importers.records import EventRow, ParsedMessage, SessionMeta, SourceFile

NAME = "tierkeeper"
_LOG = re.compile(r"^session_(?P<id>.+)\.jsonl$")
_HANDOFF = re.compile(r"^session_(?P<id>.+)_handoff\.md$")
_SNAPSHOT = re.compile(r"^session_(?P<id>.+)_snap\d+\.json\.zst$")
MAX_TEXT = 256 * 1024


class TierkeeperFormat:
    name = NAME

    def detect(self, path: Path) -> bool:
        if path.is_file():
            return bool(_LOG.match(path.name) or _HANDOFF.match(path.name))
        return (path / "logs").is_dir() and any(
            (path / sub).is_dir() for sub in ("state", "handoffs", "analytics")
        )

    def discover(self, path: Path) -> tuple[list[SourceFile], list[str]]:
        if not path.exists():
            raise NotFoundError(f"{path} does not exist")
        if path.is_file():
            src = self._source(path)
            return ([src] if src else []), []
        files: list[SourceFile] = []
        for sub in ("logs", "handoffs", "state"):
            folder = path / sub
            if folder.is_dir():
                for file in sorted(folder.iterdir()):
                    src = self._source(file) if file.is_file() else None
                    if src is not None:
                        files.append(src)
        warnings = []
        other_db = path / "analytics" / "agent_metrics.db"
        if other_db.exists() and not (path / "config.toml").exists():
            warnings.append(
                f"{other_db}: importing another tool's analytics DB is not supported yet; "
                "its logs, handoffs and snapshots were imported"
            )
        return files, warnings

    def _source(self, file: Path) -> SourceFile | None:
        for pattern, kind, role in (
            (_LOG, "lines", "activity_log"),
            (_HANDOFF, "json", "handoff"),
            (_SNAPSHOT, "json", "snapshot"),
        ):
            m = pattern.match(file.name)
            if m:
                meta = SessionMeta(id=m["id"], source=NAME, source_id=m["id"])
                return SourceFile(str(file), NAME, kind, role, meta)
        return None

    def parse_document(self, src: SourceFile, data: bytes) -> list[ParsedMessage]:
        msg = ParsedMessage(seq=0, raw=data, type=src.role, role="document")
        if src.role == "handoff":
            try:
                msg.text = data.decode("utf-8")[:MAX_TEXT]
            except UnicodeDecodeError as exc:
                msg.parse_error = f"invalid UTF-8 at byte {exc.start}"
        return [msg]

    def parse_line(self, src: SourceFile, seq: int, offset: int, raw: bytes) -> ParsedMessage:
        msg = ParsedMessage(seq=seq, raw=raw, byte_offset=offset, role="event")
        body = raw.rstrip(b"\r\n")
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            msg.parse_error = "blank line" if not body.strip() else f"not valid JSON: {exc}"
            return msg
        if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
            msg.parse_error = "not an activity event (needs an object with a 'type')"
            return msg
        msg.type = obj["type"]
        msg.ts = obj.get("ts") if isinstance(obj.get("ts"), str) else None
        if src.session.agent is None and isinstance(obj.get("agent"), str):
            src.session.agent = obj["agent"]
        payload = obj.get("payload")
        msg.text = _payload_text(payload)
        tool = obj.get("tool") if isinstance(obj.get("tool"), str) else None
        if tool:
            msg.tools = tool
        msg.event = EventRow(
            session_id=src.session.id,
            ts=msg.ts or "",
            type=msg.type,
            agent=obj.get("agent") if isinstance(obj.get("agent"), str) else None,
            tool=tool,
            duration_ms=_num(obj.get("duration_ms")),
            tokens_in=_int(obj.get("tokens_in")),
            tokens_out=_int(obj.get("tokens_out")),
            payload=None if payload is None else orjson.dumps(payload).decode(),
        )
        return msg


def _payload_text(payload: Any) -> str | None:
    if payload is None:
        return None
    if isinstance(payload, dict):
        parts = [v for k, v in payload.items() if isinstance(v, str) and k != "transcript_path"]
        text = "\n".join(parts)
    else:
        text = orjson.dumps(payload).decode()
    return text[:MAX_TEXT] or None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
