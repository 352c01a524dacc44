"""Claude Code transcripts: `~/.claude/projects/<project>/<session>.jsonl`.

Every line is kept (raw bytes, compressed) whatever it holds; the fields a
search or a report needs are lifted out when the line is a JSON object.
Subagent transcripts (`agent-*.jsonl` beside the sessions, or under
`<session>/subagents/`) become sessions of their own linked to their parent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from core.errors import NotFoundError
from core.local.importers.records import (
    ParsedMessage,
    SessionMeta,
    SourceFile,
    ToolResult,
    ToolUse,
    Usage,
)

NAME = "claude-code"
SUBAGENT_SEP = "--"
MAX_TOOL_TEXT = 64 * 1024
MAX_TEXT = 1024 * 1024


class ClaudeCodeFormat:
    name = NAME

    # discovery --------------------------------------------------------------
    def detect(self, path: Path) -> bool:
        if path.is_file():
            return path.suffix == ".jsonl" and not path.name.startswith("session_")
        if not path.is_dir():
            return False
        path = _projects(path)
        if any(path.glob("*.jsonl")):
            return True
        return any(child.is_dir() and any(child.glob("*.jsonl")) for child in path.iterdir())

    def discover(self, path: Path) -> tuple[list[SourceFile], list[str]]:
        if not path.exists():
            raise NotFoundError(
                f"{path} does not exist",
                hint="check the path; Claude Code keeps transcripts in ~/.claude/projects",
            )
        if path.is_file():
            return [self._top_level(path, path.parent.name)], []
        files: list[SourceFile] = []
        self._walk(_projects(path), files)
        return files, []

    def _walk(self, folder: Path, files: list[SourceFile]) -> None:
        """A folder's `*.jsonl` are sessions of the project it names; a subfolder
        named after a session (or holding `subagents/`) holds that session's
        subagents; any other subfolder is searched for projects in turn."""
        for transcript in sorted(folder.glob("*.jsonl")):
            if transcript.is_file():
                files.append(self._top_level(transcript, folder.name))
        for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()):
            if (folder / f"{sub.name}.jsonl").exists() or (sub / "subagents").is_dir():
                files.extend(self._nested(sub, folder.name))
            else:
                self._walk(sub, files)

    def _top_level(self, transcript: Path, project: str) -> SourceFile:
        stem = transcript.stem
        is_agent = stem.startswith("agent-")
        meta = SessionMeta(
            id=stem,
            source=NAME,
            source_id=stem,
            project=project,
            agent="claude-code-subagent" if is_agent else "claude-code",
            is_subagent=is_agent,
        )
        return SourceFile(str(transcript), NAME, "lines", "transcript", meta)

    def _nested(self, session_dir: Path, project: str) -> list[SourceFile]:
        """`<session>/subagents/**/agent-*.jsonl` and their sidecar JSON files."""
        parent = session_dir.name
        out: list[SourceFile] = []
        for file in sorted(session_dir.rglob("*")):
            if not file.is_file():
                continue
            rel = file.relative_to(session_dir)
            if file.suffix == ".jsonl":
                stem = file.stem
                sid = f"{parent}{SUBAGENT_SEP}{stem}"
                meta = SessionMeta(
                    id=sid,
                    source=NAME,
                    source_id=stem,
                    parent_id=parent,
                    project=project,
                    agent="claude-code-subagent",
                    is_subagent=True,
                )
                out.append(SourceFile(str(file), NAME, "lines", "transcript", meta))
            elif file.suffix == ".json":
                # agent-x.meta.json belongs to agent-x; other JSON (workflows) to the parent.
                stem = file.name.removesuffix(".meta.json")
                owner = (
                    f"{parent}{SUBAGENT_SEP}{stem}"
                    if file.name.endswith(".meta.json") and (file.parent / f"{stem}.jsonl").exists()
                    else parent
                )
                meta = SessionMeta(id=owner, source=NAME, project=project)
                out.append(SourceFile(str(file), NAME, "json", f"sidecar:{rel.as_posix()}", meta))
        return out

    # parsing ----------------------------------------------------------------
    def parse_document(self, src: SourceFile, data: bytes) -> list[ParsedMessage]:
        """Sidecar JSON (subagent meta, workflow definitions): one record, searchable."""
        msg = ParsedMessage(seq=0, raw=data, type="metadata", role="metadata")
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            msg.parse_error = f"not valid JSON: {exc}"
            return [msg]
        msg.text = _clip(_flatten(obj))
        return [msg]

    def parse_line(self, src: SourceFile, seq: int, offset: int, raw: bytes) -> ParsedMessage:
        msg = ParsedMessage(seq=seq, raw=raw, byte_offset=offset)
        body = raw.rstrip(b"\r\n")
        if not body.strip():
            msg.parse_error = "blank line"
            return msg
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            msg.parse_error = _describe_decode_error(body, exc)
            return msg
        if not isinstance(obj, dict):
            msg.type = type(obj).__name__
            return msg
        _fill_from_object(msg, obj, src.session)
        return msg


def _describe_decode_error(body: bytes, exc: orjson.JSONDecodeError) -> str:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as uexc:
        return f"invalid UTF-8 at byte {uexc.start}"
    if len(body) > 32 and body.count(b"\x00") > len(body) // 8:
        return "binary data, not JSON"
    return f"not valid JSON: {exc.msg} at column {exc.pos + 1}"


def _fill_from_object(msg: ParsedMessage, obj: dict[str, Any], session: SessionMeta) -> None:
    msg.type = _str(obj.get("type"))
    msg.uuid = _str(obj.get("uuid"))
    msg.parent_uuid = _str(obj.get("parentUuid"))
    msg.ts = _str(obj.get("timestamp"))
    msg.is_sidechain = bool(obj.get("isSidechain"))
    msg.session_hint = _str(obj.get("sessionId"))
    if session.cwd is None:
        session.cwd = _str(obj.get("cwd"))
    if session.git_branch is None:
        session.git_branch = _str(obj.get("gitBranch"))

    texts: list[str] = []
    tools: list[str] = []
    message = obj.get("message")
    if isinstance(message, dict):
        msg.role = _str(message.get("role"))
        msg.model = _str(message.get("model"))
        _read_content(message.get("content"), msg, texts, tools)
        usage = message.get("usage")
        if msg.type == "assistant" and isinstance(usage, dict):
            msg.usage = _usage(obj, message, usage, msg)
        if msg.model and msg.model != "<synthetic>":
            session.model = msg.model
    elif isinstance(message, str):
        texts.append(message)
    if msg.role is None and msg.type in ("user", "assistant", "system"):
        msg.role = msg.type
    for key in ("summary", "content"):
        value = obj.get(key)
        if isinstance(value, str):
            texts.append(value)
    if msg.type == "summary" and session.title is None and isinstance(obj.get("summary"), str):
        session.title = obj["summary"][:200]
    if session.title is None and msg.role == "user" and texts and not obj.get("isMeta"):
        first = texts[0].strip()
        if first and not first.startswith("<"):
            session.title = first.splitlines()[0][:200]
    msg.text = _clip("\n".join(t for t in texts if t), MAX_TEXT) if texts else None
    msg.tools = _clip("\n".join(tools)) if tools else None


def _read_content(content: Any, msg: ParsedMessage, texts: list[str], tools: list[str]) -> None:
    if isinstance(content, str):
        texts.append(content)
        return
    if not isinstance(content, list):
        return
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "thinking" and isinstance(block.get("thinking"), str):
            texts.append(block["thinking"])
        elif kind == "tool_use":
            name = _str(block.get("name")) or "?"
            tool_input = orjson.dumps(block.get("input")).decode()
            msg.tool_uses.append(
                ToolUse(_str(block.get("id")) or "", name, _clip(tool_input), msg.ts)
            )
            tools.append(f"{name} {tool_input}")
        elif kind == "tool_result":
            output = _flatten(block.get("content"))
            msg.tool_results.append(
                ToolResult(
                    _str(block.get("tool_use_id")) or "",
                    _clip(output),
                    bool(block.get("is_error")) if "is_error" in block else None,
                    msg.ts,
                )
            )
            tools.append(output)
        elif kind == "image":
            source = block.get("source")
            media = source.get("media_type") if isinstance(source, dict) else None
            texts.append(f"[image {media or ''}]".replace(" ]", "]"))


def _usage(
    obj: dict[str, Any], message: dict[str, Any], usage: dict[str, Any], msg: ParsedMessage
) -> Usage:
    key = _str(message.get("id")) or f"uuid:{msg.uuid}"
    return Usage(
        message_key=key,
        request_id=_str(obj.get("requestId")) or "",
        model=msg.model,
        ts=msg.ts,
        input_tokens=_int(usage.get("input_tokens")),
        output_tokens=_int(usage.get("output_tokens")),
        cache_write_tokens=_int(usage.get("cache_creation_input_tokens")),
        cache_read_tokens=_int(usage.get("cache_read_input_tokens")),
    )


def _flatten(value: Any) -> str:
    """Text of a tool result or JSON value, for search."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = []
        for item in value:
            if isinstance(item, dict) and isinstance(item.get("text"), str):
                parts.append(item["text"])
            elif isinstance(item, dict) and item.get("type") == "image":
                parts.append("[image]")
            else:
                parts.append(_flatten(item))
        return "\n".join(p for p in parts if p)
    return orjson.dumps(value).decode()


def _clip(text: str, limit: int = MAX_TOOL_TEXT) -> str:
    """Bounds what goes into the search index; the raw line keeps everything."""
    return text if len(text) <= limit else text[:limit] + " …[clipped]"


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _projects(folder: Path) -> Path:
    """`~/.claude`, the folder a user may well point at, keeps the transcripts in
    `projects/`, beside files that are not sessions (`history.jsonl` is the prompt
    history): only that folder is read."""
    projects = folder / "projects"
    return projects if projects.is_dir() else folder
