"""Roo Code and Cline task folders: finding them and turning their JSON into records.

Roo Code is a fork of Cline and both keep one folder per task holding whole-file
JSON documents (rewritten on every change, so they are imported whole, never
line by line):

- `api_conversation_history.json`: Anthropic-style messages, what the model saw;
- `ui_messages.json`: what the chat panel showed, including the per-request
  token counts in `api_req_started` entries;
- `task_metadata.json`: files in context and the models used.

One implementation serves both apps; only the name and which unowned folders it
claims differ. Parsing never raises: the engine's count check (array length ==
records == rows) depends on getting exactly one record per array element, good
or bad, and a broken document still has to be stored and flagged, not lost.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
from core.local.importers.vscode_paths import CLINE, ROO, owner_from_path

API_FILE = "api_conversation_history.json"
UI_FILE = "ui_messages.json"
META_FILE = "task_metadata.json"

ROLE_API = "api_history"
ROLE_UI = "ui_messages"
ROLE_META = "metadata"

TASK_FILES: tuple[tuple[str, str], ...] = (
    (API_FILE, ROLE_API),
    (UI_FILE, ROLE_UI),
    (META_FILE, ROLE_META),
)
_ROLE_BY_FILE = dict(TASK_FILES)

AGENTS: dict[str, str] = {ROO: "roo-code", CLINE: "cline"}
TITLE_MAX = 120
MAX_TEXT = 1024 * 1024
MAX_TOOL_TEXT = 64 * 1024

_BOM = b"\xef\xbb\xbf"

# ui_messages subtypes that come from the person, and bookkeeping the app writes itself.
_UI_USER = frozenset({"task", "user_feedback", "user_feedback_diff"})
_UI_SYSTEM = frozenset(
    {
        "api_req_started",
        "api_req_finished",
        "api_req_retried",
        "api_req_retry_delayed",
        "api_req_deleted",
        "api_req_failed",
        "deleted_api_reqs",
        "checkpoint_saved",
        "checkpoint_created",
        "condense_context",
        "condense_context_error",
        "error",
        "error_retry",
        "diff_error",
        "shell_integration_warning",
        "info",
        "resume_task",
        "resume_completed_task",
        "mistake_limit_reached",
    }
)
# Subtypes whose text is a tool request or its output: worth indexing as `tools` too.
_UI_TOOLISH = frozenset(
    {
        "tool",
        "command",
        "command_output",
        "use_mcp_server",
        "mcp_server_request_started",
        "mcp_server_response",
        "browser_action",
        "browser_action_launch",
        "browser_action_result",
        "codebase_search_result",
    }
)
# Both carry token counts: Cline folds the counts of requests it deletes from the
# chat (context truncation) into one `deleted_api_reqs` entry, and counts it in
# its own totals, so leaving it out would under-report spend.
_UI_USAGE = frozenset({"api_req_started", "deleted_api_reqs"})

# Tools of the XML-in-text protocol (older Cline, Roo before native tool calls).
_KNOWN_XML_TOOLS = frozenset(
    {
        "read_file",
        "write_to_file",
        "apply_diff",
        "replace_in_file",
        "insert_content",
        "search_and_replace",
        "search_files",
        "list_files",
        "list_code_definition_names",
        "codebase_search",
        "execute_command",
        "browser_action",
        "use_mcp_tool",
        "access_mcp_resource",
        "ask_followup_question",
        "attempt_completion",
        "plan_mode_respond",
        "act_mode_respond",
        "new_task",
        "switch_mode",
        "fetch_instructions",
        "update_todo_list",
        "load_mcp_documentation",
        "new_rule",
        "condense",
        "summarize_task",
        "report_bug",
        "web_fetch",
        "run_slash_command",
        "generate_image",
    }
)
_OPEN_TAG = re.compile(r"<([a-z][a-z0-9_]*)>")
_PARAM = re.compile(r"<([a-z][a-z0-9_]*)>(.*?)</\1>", re.S)
_STARTS_WITH_PARAM = re.compile(r"\s*<[a-z][a-z0-9_]*>")
_XML_RESULT_HEAD = re.compile(r"\A\[([a-z][a-z0-9_]*)\b[^\n]*?\] Result:[ \t]*\n?")
_TASK_TAG = re.compile(r"<task>(.*?)</task>", re.S)
_ENV_DETAILS = re.compile(r"<environment_details>.*?(?:</environment_details>|\Z)", re.S)
_CWD = re.compile(r"^# Current (?:Working|Workspace) Directory \((.+)\) Files[ \t]*$", re.M)
_MODEL_TAG = re.compile(r"<model>([^<\n]+)</model>")


def ms_to_iso(value: object) -> str | None:
    """Epoch milliseconds as ISO-8601 UTC with milliseconds; None when not a sane number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        ms = int(value)
        dt = datetime.fromtimestamp(ms // 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
    if dt.year < 1000:
        return None
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def title_from_text(text: str) -> str | None:
    """First line of the prompt, without the `<task>` wrapper and environment noise."""
    m = _TASK_TAG.search(text)
    body = m.group(1) if m else _ENV_DETAILS.sub("", text)
    for line in body.splitlines():
        stripped = line.strip()
        if stripped:
            return stripped[:TITLE_MAX]
    return None


def cwd_from_text(text: str) -> str | None:
    m = _CWD.search(text)
    return m.group(1).strip() if m else None


def model_from_text(text: str) -> str | None:
    m = _MODEL_TAG.search(text)
    return m.group(1).strip() if m else None


def xml_tool_calls(text: str) -> list[tuple[str, dict[str, str]]]:
    """Tool calls written as `<tool><param>value</param></tool>` in assistant text.

    Best effort: a tag counts when it is a known tool name, or a snake_case tag
    whose body opens with a parameter tag; a closing tag is required either way,
    so prose that merely mentions a tool is not counted.
    """
    calls: list[tuple[str, dict[str, str]]] = []
    pos = 0
    while m := _OPEN_TAG.search(text, pos):
        name = m.group(1)
        close = text.find(f"</{name}>", m.end())
        if close < 0:
            pos = m.end()
            continue
        inner = text[m.end() : close]
        if name in _KNOWN_XML_TOOLS or ("_" in name and _STARTS_WITH_PARAM.match(inner)):
            params = {k: v.strip() for k, v in _PARAM.findall(inner)}
            calls.append((name, params))
            pos = close + len(name) + 3
        else:
            pos = m.end()
    return calls


def is_task_dir(path: Path) -> bool:
    """A folder holding at least one of the two conversation files."""
    return (path / API_FILE).is_file() or (path / UI_FILE).is_file()


def _has_any_task_file(path: Path) -> bool:
    return any((path / name).is_file() for name, _ in TASK_FILES)


def _is_tasks_dir(path: Path) -> bool:
    try:
        return any(child.is_dir() and is_task_dir(child) for child in path.iterdir())
    except OSError:
        return False


def layout_of(path: Path) -> str | None:
    """'file', 'task', 'tasks' or 'extension': which level of the storage tree `path` is."""
    if path.is_file():
        return "file" if path.name in _ROLE_BY_FILE else None
    if not path.is_dir():
        return None
    if is_task_dir(path):
        return "task"
    if _is_tasks_dir(path):
        return "tasks"
    tasks = path / "tasks"
    if tasks.is_dir() and _is_tasks_dir(tasks):
        return "extension"
    return None


def _compact(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):
        return str(value)


def _dumps(value: object) -> bytes:
    try:
        return orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return repr(value).encode("utf-8", "replace")


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if isinstance(value, float) and not math.isfinite(value):
        return 0
    return max(0, int(value))


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _model_info(el: dict[str, Any]) -> str | None:
    info = el.get("modelInfo")
    return _str(info.get("modelId")) if isinstance(info, dict) else None


def _blocks_text(content: object) -> str | None:
    """Text of a string or a list of content blocks, images as a marker."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return None
    texts: list[str] = []
    for block in content:
        if isinstance(block, str):
            texts.append(block)
        elif isinstance(block, dict) and block.get("type") == "image":
            texts.append(_image_marker(block))
        elif isinstance(block, dict) and isinstance(block.get("text"), str):
            texts.append(block["text"])
    return "\n".join(texts) if texts else None


def _clip(text: str | None, limit: int = MAX_TOOL_TEXT) -> str | None:
    """Bounds what goes into the search index; the stored document keeps everything."""
    if text is None or len(text) <= limit:
        return text
    return text[:limit] + " …[clipped]"


def _image_marker(block: dict[str, Any]) -> str:
    source = block.get("source")
    media = _str(source.get("media_type")) if isinstance(source, dict) else None
    return f"[image {media}]" if media else "[image]"


def _join(parts: list[str]) -> str | None:
    kept = [p for p in parts if p]
    return "\n".join(kept) if kept else None


def _load(data: bytes) -> tuple[Any, str | None]:
    """The parsed document, or None and a reason a person can act on."""
    body = data[len(_BOM) :] if data.startswith(_BOM) else data
    try:
        return orjson.loads(body), None
    except orjson.JSONDecodeError as exc:
        if not body.strip():
            return None, "empty file: no JSON document"
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as bad:
            at = bad.start + len(data) - len(body)
            return None, f"not valid UTF-8 (bad byte at offset {at})"
        return None, f"invalid JSON: {exc}"


@dataclass(slots=True)
class _DocState:
    """What one parse_document call carries from element to element."""

    src: SourceFile
    first_ts: str | None = None
    last_ts: str | None = None
    model: str | None = None
    cwd: str | None = None
    title: str | None = None
    seen_user: bool = False
    xml_pending: list[tuple[str, str]] = field(default_factory=list)

    @property
    def task_id(self) -> str:
        return self.src.session.id

    def saw_ts(self, iso: str | None) -> None:
        if iso is None:
            return
        if self.first_ts is None or iso < self.first_ts:
            self.first_ts = iso
        if self.last_ts is None or iso > self.last_ts:
            self.last_ts = iso

    def apply(self, *, override_model: bool) -> None:
        """Fold what the document taught into the shared SessionMeta of the task."""
        s = self.src.session
        if self.first_ts and (s.started_at is None or self.first_ts < s.started_at):
            s.started_at = self.first_ts
        if self.last_ts and (s.ended_at is None or self.last_ts > s.ended_at):
            s.ended_at = self.last_ts
        if self.title and s.title is None:
            s.title = self.title
        if self.cwd and s.cwd is None:
            s.cwd = self.cwd
        if self.model and (override_model or s.model is None):
            s.model = self.model


_ElementParser = Callable[[dict[str, Any], int, bytes, _DocState], ParsedMessage]


class TaskFolderFormat:
    """The shared Roo/Cline implementation of the `Format` protocol.

    `claim_unowned` decides whether `detect` says yes to a task tree that lies
    outside any known storage folder (say, a copy in ~/Downloads): exactly one
    of the two formats should, or auto-detection would import it twice.
    """

    def __init__(self, name: str, *, claim_unowned: bool) -> None:
        self.name = name
        self.agent = AGENTS.get(name, name)
        self.claim_unowned = claim_unowned

    # -- finding files -------------------------------------------------------

    def detect(self, path: Path) -> bool:
        if layout_of(path) is None:
            return False
        owner = owner_from_path(path)
        return owner == self.name if owner is not None else self.claim_unowned

    def discover(self, path: Path) -> tuple[list[SourceFile], list[str]]:
        if not path.exists():
            raise NotFoundError(
                f"No such file or folder: {path}",
                hint="give a Roo Code/Cline task folder, its tasks/ folder, "
                "or the extension's globalStorage folder",
            )
        layout = layout_of(path)
        if layout == "file":
            session = self._session(path.parent.name)
            return [self._source(path, _ROLE_BY_FILE[path.name], session)], []
        if layout == "task":
            return self._task_sources(path)
        if layout in ("tasks", "extension"):
            return self._tasks_sources(path if layout == "tasks" else path / "tasks")
        return [], [f"{path}: no {self.agent} task found (expected {API_FILE} or {UI_FILE})"]

    def _session(self, task_id: str) -> SessionMeta:
        return SessionMeta(id=task_id, source=self.name, source_id=task_id, agent=self.agent)

    def _source(self, path: Path, role: str, session: SessionMeta) -> SourceFile:
        return SourceFile(path=str(path), format=self.name, kind="json", role=role, session=session)

    def _task_sources(self, task_dir: Path) -> tuple[list[SourceFile], list[str]]:
        # One SessionMeta shared by the task's files, so what parsing one file
        # learns (title, cwd, times) is visible when the engine stores the session.
        session = self._session(task_dir.name)
        sources: list[SourceFile] = []
        missing: list[str] = []
        for name, role in TASK_FILES:
            p = task_dir / name
            if p.is_file():
                sources.append(self._source(p, role, session))
            else:
                missing.append(name)
        warnings = [
            f"{self.agent} task {task_dir.name}: {name} is missing; imported the other files"
            for name in missing
        ]
        return sources, warnings

    def _tasks_sources(self, tasks_dir: Path) -> tuple[list[SourceFile], list[str]]:
        sources: list[SourceFile] = []
        warnings: list[str] = []
        for child in sorted(tasks_dir.iterdir(), key=lambda p: p.name):
            if not child.is_dir():
                continue
            if not _has_any_task_file(child):
                warnings.append(f"{self.agent} task {child.name}: no task files; skipped")
                continue
            found, warned = self._task_sources(child)
            sources.extend(found)
            warnings.extend(warned)
        return sources, warnings

    # -- parsing -------------------------------------------------------------

    def parse_line(self, src: SourceFile, seq: int, offset: int, raw: bytes) -> ParsedMessage:
        return ParsedMessage(
            seq=seq,
            raw=raw,
            byte_offset=offset,
            parse_error=f"not a line format: {self.agent} files are whole JSON documents",
        )

    def parse_document(self, src: SourceFile, data: bytes) -> list[ParsedMessage]:
        role = src.role if src.role in (ROLE_API, ROLE_UI, ROLE_META) else None
        role = role or _ROLE_BY_FILE.get(Path(src.path).name)
        if role is None:
            return [ParsedMessage(seq=0, raw=data, parse_error=f"unknown role {src.role!r}")]
        doc, error = _load(data)
        if error is not None:
            return [ParsedMessage(seq=0, raw=data, parse_error=error)]
        state = _DocState(src)
        if role == ROLE_META:
            records = [self._meta_record(doc, state)]
            state.apply(override_model=False)
            return records
        if not isinstance(doc, list):
            found = type(doc).__name__ if doc is not None else "null"
            reason = f"expected a JSON array of messages, found {found}"
            return [ParsedMessage(seq=0, raw=data, parse_error=reason)]
        one = self._api_record if role == ROLE_API else self._ui_record
        records = [self._safe(one, el, seq, state) for seq, el in enumerate(doc)]
        # ui_messages names the model per request, so its latest word wins.
        state.apply(override_model=role == ROLE_UI)
        return records

    def _safe(self, one: _ElementParser, el: object, seq: int, state: _DocState) -> ParsedMessage:
        """One element's record; an element that is not an object is kept and flagged."""
        raw = _dumps(el)
        if not isinstance(el, dict):
            found = type(el).__name__ if el is not None else "null"
            return ParsedMessage(seq=seq, raw=raw, parse_error=f"expected an object, found {found}")
        try:
            rec = one(el, seq, raw, state)
        except Exception as exc:  # never raise: keep the element and say why
            return ParsedMessage(seq=seq, raw=raw, parse_error=f"unreadable element: {exc!r}")
        return rec

    def _api_record(
        self, el: dict[str, Any], seq: int, raw: bytes, state: _DocState
    ) -> ParsedMessage:
        role = _str(el.get("role"))
        ts = ms_to_iso(el.get("ts"))
        state.saw_ts(ts)
        content = el.get("content")
        blocks: list[Any] = [content] if isinstance(content, str) else []
        if isinstance(content, list):
            blocks = content
        texts: list[str] = []
        tools: list[str] = []
        uses: list[ToolUse] = []
        results: list[ToolResult] = []
        for block in blocks:
            if isinstance(block, str):
                texts.append(block)
                continue
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "text" and isinstance(block.get("text"), str):
                texts.append(block["text"])
            elif kind == "thinking" and isinstance(block.get("thinking"), str):
                texts.append(block["thinking"])
            elif kind == "image":
                texts.append(_image_marker(block))
            elif kind == "tool_use":
                name = _str(block.get("name")) or ""
                use_id = _str(block.get("id")) or f"{state.task_id}#{seq}.{len(uses)}"
                arg = _compact(block.get("input"))
                uses.append(ToolUse(tool_use_id=use_id, name=name, input=_clip(arg), ts=ts))
                tools.append(f"{name} {arg}" if arg else name)
            elif kind == "tool_result":
                out = _blocks_text(block.get("content"))
                err = block.get("is_error")
                results.append(
                    ToolResult(
                        tool_use_id=_str(block.get("tool_use_id")) or "",
                        output=_clip(out),
                        is_error=err if isinstance(err, bool) else None,
                        ts=ts,
                    )
                )
                if out:
                    tools.append(out)
        text = _join(texts)
        if role == "assistant" and not uses and text:
            uses = self._xml_uses(text, seq, ts, state, tools)
        elif role == "user":
            if state.xml_pending:
                results.extend(self._xml_results(texts, ts, state, tools))
            if text:
                if not state.seen_user:
                    state.title = title_from_text(text)
                if state.cwd is None:
                    state.cwd = cwd_from_text(text)
                state.model = model_from_text(text) or state.model
            state.seen_user = True
        model = _model_info(el)
        state.model = model or state.model
        return ParsedMessage(
            seq=seq,
            raw=raw,
            uuid=_str(el.get("id")),
            type="message",
            role=role,
            model=model,
            ts=ts,
            text=_clip(text, MAX_TEXT),
            tools=_clip(_join(tools), MAX_TEXT),
            tool_uses=uses,
            tool_results=results,
        )

    def _xml_uses(
        self, text: str, seq: int, ts: str | None, state: _DocState, tools: list[str]
    ) -> list[ToolUse]:
        uses: list[ToolUse] = []
        for name, params in xml_tool_calls(text):
            use_id = f"{state.task_id}#{seq}.{len(uses)}"
            arg = _compact(params) if params else None
            uses.append(ToolUse(tool_use_id=use_id, name=name, input=_clip(arg), ts=ts))
            tools.append(f"{name} {arg}" if arg else name)
            state.xml_pending.append((name, use_id))
        return uses

    def _xml_results(
        self, texts: list[str], ts: str | None, state: _DocState, tools: list[str]
    ) -> list[ToolResult]:
        """Pair `[tool for '…'] Result:` blocks with the previous turn's XML calls by name."""
        pending, state.xml_pending = state.xml_pending, []
        results: list[ToolResult] = []
        current: tuple[str, list[str]] | None = None

        def close() -> None:
            if current is None:
                return
            use_id, parts = current
            out = _join(parts)
            results.append(ToolResult(tool_use_id=use_id, output=_clip(out), ts=ts))
            if out:
                tools.append(out)

        for block in texts:
            head = _XML_RESULT_HEAD.match(block)
            if head:
                close()
                current = None
                name = head.group(1)
                idx = next((i for i, (n, _) in enumerate(pending) if n == name), None)
                if idx is not None:
                    current = (pending.pop(idx)[1], [block[head.end() :]])
            elif current is not None and not block.lstrip().startswith("<environment_details>"):
                current[1].append(block)
        close()
        return results

    def _ui_record(
        self, el: dict[str, Any], seq: int, raw: bytes, state: _DocState
    ) -> ParsedMessage:
        ts = ms_to_iso(el.get("ts"))
        state.saw_ts(ts)
        kind = _str(el.get("type"))
        sub = _str(el.get(kind)) if kind in ("say", "ask") else None
        sub = sub or kind or "ui"
        text = _str(el.get("text"))
        role = "user" if sub in _UI_USER else "system" if sub in _UI_SYSTEM else "assistant"
        model = _model_info(el)
        usage: Usage | None = None
        if sub in _UI_USAGE and text:
            info = _json_object(text)
            request = _str(info.get("request")) if info else None
            if request:
                model = model_from_text(request) or model
                if state.cwd is None:
                    state.cwd = cwd_from_text(request)
                text = request
            if info is not None and _has_tokens(info):
                usage = Usage(
                    message_key=f"{state.task_id}:{_ts_key(el.get('ts'), seq)}",
                    request_id="",
                    model=model or state.model or state.src.session.model,
                    ts=ts,
                    input_tokens=_count(info.get("tokensIn")),
                    output_tokens=_count(info.get("tokensOut")),
                    cache_write_tokens=_count(info.get("cacheWrites")),
                    cache_read_tokens=_count(info.get("cacheReads")),
                )
        state.model = model or state.model
        if sub == "task" and text and state.title is None:
            state.title = title_from_text(text)
        return ParsedMessage(
            seq=seq,
            raw=raw,
            type=sub,
            role=role,
            model=model,
            ts=ts,
            text=_clip(text, MAX_TEXT),
            tools=_clip(text, MAX_TEXT) if sub in _UI_TOOLISH else None,
            usage=usage,
        )

    def _meta_record(self, doc: object, state: _DocState) -> ParsedMessage:
        raw = _dumps(doc)
        if not isinstance(doc, dict):
            found = type(doc).__name__ if doc is not None else "null"
            reason = f"expected a JSON object of task metadata, found {found}"
            return ParsedMessage(seq=0, raw=raw, type="metadata", parse_error=reason)
        paths: list[str] = []
        files = doc.get("files_in_context")
        if isinstance(files, list):
            paths = [f["path"] for f in files if isinstance(f, dict) and _str(f.get("path"))]
        usage = doc.get("model_usage")
        if isinstance(usage, list):
            for entry in usage:
                if isinstance(entry, dict):
                    state.saw_ts(ms_to_iso(entry.get("ts")))
                    state.model = _str(entry.get("model_id")) or state.model
        return ParsedMessage(
            seq=0,
            raw=raw,
            type="metadata",
            model=state.model,
            text=_join(paths),
        )


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _ts_key(value: object, seq: int) -> str:
    """The ui `ts` as JavaScript prints it; the position when there is none."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return f"seq{seq}"


def _has_tokens(info: dict[str, Any]) -> bool:
    return any(k in info for k in ("tokensIn", "tokensOut", "cacheWrites", "cacheReads"))


class RooFormat(TaskFolderFormat):
    """Roo Code (`rooveterinaryinc.roo-cline`); claims unowned task trees by default."""

    def __init__(self, *, claim_unowned: bool = True) -> None:
        super().__init__(ROO, claim_unowned=claim_unowned)


class ClineFormat(TaskFolderFormat):
    """Cline (`saoudrizwan.claude-dev`, `~/.cline/data`)."""

    def __init__(self, *, claim_unowned: bool = False) -> None:
        super().__init__(CLINE, claim_unowned=claim_unowned)
