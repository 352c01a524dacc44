"""`tierkeeper hook`: turn one Claude Code hook payload into one activity-log line.

Claude Code starts this process for every event, tool calls included, and waits
for it, so two rules shape the module: it must never get in the agent's way
(exit 0 whatever happens, nothing on stdout, which Claude Code reads as
instructions for some events) and it must start fast. Hence stdlib `json`
rather than orjson (whose import alone costs about as much as the interpreter),
no typing import at run time, and everything rare (hashing, base64, sweeping)
imported or done only when needed.

A payload that cannot be recorded is not lost: its raw bytes go to
`fallback/hook_payloads.jsonl` for a later import.

The line goes out in one write under a shared `flock` (`core.local.log_lock`):
the service may open the same log at session start or end and set aside an
unterminated last line, and the lock tells it this one is still being written.
The lock is a courtesy, not a condition: if it cannot be had (Windows, a file
system without locks, a repair that never lets go) the line is written anyway.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, BinaryIO

AGENT = "claude-code"
LOG_PREFIX = "session_"
PENDING_DIR = ".pending"
FALLBACK_NAME = "hook_payloads.jsonl"
MAX_STRING_BYTES = 256 * 1024
"""Longer strings are cut: the transcript keeps the full text, the log needs the gist."""
MAX_FALLBACK_BYTES = 16 * 1024 * 1024
MAX_SESSION_ID = 200
MAX_EVENT_NAME = 100
STALE_PENDING_NS = 24 * 3600 * 1_000_000_000
SWEEP_ONE_IN = 50
_TOOL_START = "PreToolUse"
_TOOL_END = frozenset({"PostToolUse", "PostToolUseFailure"})
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
_FILE_MODE = 0o600  # payloads hold the user's prompts and file contents
# Read access too: over NFS flock becomes a POSIX lock, and a shared one needs a readable fd.
_APPEND_FLAGS = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)


class UnrecordableError(ValueError):
    """The payload parsed but cannot be filed under a session (bad id, not an object…)."""


def main(stdin: BinaryIO | None = None, env: Mapping[str, str] | None = None) -> int:
    """Record the payload on stdin; always returns 0 so the agent never sees a failure.

    `env` may carry TIERKEEPER_HOME (tests, wrappers); without it the usual
    default workspace applies.
    """
    raw = b""
    workspace: Path | None = None
    try:
        if stdin is None:
            if sys.stdin is None or _is_terminal(sys.stdin):
                _say("tierkeeper hook reads a Claude Code hook payload on stdin")
                return 0
            stdin = sys.stdin.buffer
        raw = stdin.read()
        workspace = _workspace(env)
        record(raw, workspace)
    except BaseException as exc:
        if workspace is None:
            try:
                workspace = _workspace(env)
            except BaseException:
                return 0
        _fallback(workspace, raw, exc)
    return 0


def record(raw: bytes, workspace: Path, now_ns: int | None = None) -> None:
    """Append the event line for one payload, raising on anything that stops it.

    `now_ns` stands in for the wall clock so pairing can be checked without sleeping.
    """
    payload = json.loads(raw, parse_constant=_reject_constant)
    if not isinstance(payload, dict):
        raise UnrecordableError("the payload is not a JSON object")
    session = payload.get("session_id")
    if not is_valid_session_id(session):
        raise UnrecordableError(f"unusable session_id {str(session)[:80]!r}")
    event = payload.get("hook_event_name")
    if not isinstance(event, str) or not 0 < len(event) <= MAX_EVENT_NAME:
        raise UnrecordableError("hook_event_name is missing or not a short string")
    tool = payload.get("tool_name")
    tool = tool if isinstance(tool, str) else None

    now_ns = time.time_ns() if now_ns is None else now_ns
    logs = workspace / "logs"
    duration_ms = None
    if event == _TOOL_START or event in _TOOL_END:
        key = pending_key(payload)
        pending = logs / PENDING_DIR
        if event == _TOOL_START:
            _mark_start(pending, key, now_ns)
            if (now_ns // 1000) % SWEEP_ONE_IN == 0:
                sweep_pending(pending, now_ns)
        else:
            duration_ms = _take_duration(pending, key, now_ns)

    if len(raw) > MAX_STRING_BYTES:  # no string inside can be longer than the whole
        payload = _truncate(payload)
    from core.redact import redact_obj

    event_line = {
        "ts": _iso_utc(now_ns),
        "session": session,
        "agent": AGENT,
        "type": event,
        "tool": tool,
        "duration_ms": duration_ms,
        "tokens_in": None,
        "tokens_out": None,
        "payload": redact_obj(payload),
    }
    _append(logs / f"{LOG_PREFIX}{session}.jsonl", _encode_line(event_line))


def is_valid_session_id(value: object) -> bool:
    """A session id must name a file inside logs/, nothing else."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_SESSION_ID
        and ".." not in value
        and not any(c in value for c in "/\\\0")
        and all(c >= " " for c in value)
    )


def pending_key(payload: Mapping[str, Any]) -> str:
    """Pairs a PostToolUse with its PreToolUse: the tool_use_id, or a digest of the call."""
    tool_use_id = payload.get("tool_use_id")
    if (
        isinstance(tool_use_id, str)
        and 0 < len(tool_use_id) <= 128
        and set(tool_use_id) <= _KEY_CHARS
    ):
        return tool_use_id
    import hashlib

    canonical = json.dumps(
        [payload.get("session_id"), payload.get("tool_name"), payload.get("tool_input")],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        default=str,
    )
    return "sha256-" + hashlib.sha256(canonical.encode()).hexdigest()


def sweep_pending(pending_dir: Path, now_ns: int, max_age_ns: int = STALE_PENDING_NS) -> int:
    """Delete start markers whose PostToolUse never came (tool failed, session killed)."""
    removed = 0
    try:
        with os.scandir(pending_dir) as entries:
            for entry in entries:
                try:
                    if entry.stat().st_mtime_ns < now_ns - max_age_ns:
                        Path(entry.path).unlink()
                        removed += 1
                except OSError:
                    continue
    except OSError:
        pass
    return removed


# --- pieces ----------------------------------------------------------------------


def _workspace(env: Mapping[str, str] | None) -> Path:
    from core.paths import ENV_HOME, default_workspace

    home = env.get(ENV_HOME) if env is not None else None
    return Path(home).expanduser() if home else default_workspace()


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (OSError, ValueError):
        return False


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _iso_utc(ns: int) -> str:
    """Same text as datetime.now(UTC).isoformat(), without importing datetime."""
    seconds, rest = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{rest // 1000:06d}+00:00"


def _truncate(value: Any) -> Any:
    if isinstance(value, str):
        if len(value) * 4 <= MAX_STRING_BYTES:
            return value
        data = value.encode("utf-8", "surrogatepass")
        if len(data) <= MAX_STRING_BYTES:
            return value
        head = data[:MAX_STRING_BYTES].decode("utf-8", "ignore")
        cut = len(data) - len(head.encode("utf-8", "surrogatepass"))
        return f"{head}\n[tierkeeper: truncated, {cut} bytes cut]"
    if isinstance(value, dict):
        return {k: _truncate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_truncate(v) for v in value]
    return value


def _encode_line(obj: object) -> bytes:
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a \ud800 escape
        return text.encode("utf-8", "replace")


def _append(path: Path, line: bytes) -> None:
    """One write on an O_APPEND fd: concurrent hooks interleave whole lines, never bytes."""
    try:
        fd = os.open(path, _APPEND_FLAGS, _FILE_MODE)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, _APPEND_FLAGS, _FILE_MODE)
    try:
        _lock_for_write(fd)  # released by the close below
        written = os.write(fd, line)
        if written != len(line):
            # Disk full mid-line: end the stub so the next event starts on a line of its own.
            os.write(fd, b"\n")
            raise OSError(f"short write: {written} of {len(line)} bytes")
    finally:
        os.close(fd)


def _lock_for_write(fd: int) -> None:
    """Hold the writers' lock so a concurrent tail repair leaves this line alone."""
    try:
        from core.local.log_lock import lock_shared

        lock_shared(fd)
    except Exception:
        pass  # no lock, no repair protection; the event still gets written


def _mark_start(pending_dir: Path, key: str, now_ns: int) -> None:
    path = pending_dir / key
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
    try:
        try:
            fd = os.open(path, flags, _FILE_MODE)
        except FileNotFoundError:
            pending_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, flags, _FILE_MODE)
        try:
            os.write(fd, str(now_ns).encode())
        finally:
            os.close(fd)
    except OSError:
        pass  # latency is a bonus; the event itself still gets recorded


def _take_duration(pending_dir: Path, key: str, now_ns: int) -> float | None:
    path = pending_dir / key
    try:
        with open(path, "rb") as marker:
            started = int(marker.read())
    except (OSError, ValueError):
        return None
    try:
        path.unlink()
    except OSError:
        pass
    return max(0, now_ns - started) / 1_000_000


def _fallback(workspace: Path, raw: bytes, error: BaseException) -> None:
    """Keep what could not be recorded, redacted, for a later import; never raise."""
    try:
        kept = raw[:MAX_FALLBACK_BYTES]
        line: dict[str, object] = {"ts": _iso_utc(time.time_ns()), "agent": AGENT}
        try:
            from core.redact import redact_text
        except BaseException as exc:  # no redactor: keep the error, not the secrets
            line["error"] = f"{type(error).__name__}: {error}"[:2000]
            line["stdin"] = None
            line["dropped_bytes"] = len(raw)
            line["note"] = f"redactor unavailable ({type(exc).__name__})"
        else:
            line["error"] = redact_text(f"{type(error).__name__}: {error}"[:2000])
            text = kept.decode("utf-8", "surrogateescape")
            redacted = redact_text(text)
            try:
                line["encoding"] = "utf-8"
                line["stdin"] = redacted.encode("utf-8").decode("utf-8")
            except UnicodeEncodeError:  # not UTF-8: keep the bytes, with text parts redacted
                import base64

                line["encoding"] = "base64"
                line["stdin"] = base64.b64encode(
                    redacted.encode("utf-8", "surrogateescape")
                ).decode("ascii")
            if len(raw) > len(kept):
                line["truncated_bytes"] = len(raw) - len(kept)
        _append(workspace / "fallback" / FALLBACK_NAME, _encode_line(line))
        _say(f"tierkeeper hook: event not recorded ({type(error).__name__}); kept in fallback")
    except BaseException:
        _say("tierkeeper hook: event lost")


def _say(message: str) -> None:
    try:
        os.write(2, message.encode("utf-8", "replace") + b"\n")
    except BaseException:
        pass


if __name__ == "__main__":
    raise SystemExit(main())
