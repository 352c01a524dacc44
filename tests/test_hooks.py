"""The Claude Code hook recorder: one whole, redacted line per event, and never a failure."""

from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from core.hooks.record import (
    MAX_STRING_BYTES,
    PENDING_DIR,
    STALE_PENDING_NS,
    main,
    record,
    sweep_pending,
)
from core.local import log_lock

SESSION = "0b7c3e9a-5d1f-4c2e-9a8b-1f2e3d4c5b6a"
EVENT_KEYS = [
    "ts",
    "session",
    "agent",
    "type",
    "tool",
    "duration_ms",
    "tokens_in",
    "tokens_out",
    "payload",
]
SECRET = "sk-ant-api03-" + "Q" * 40 + "-abcdEFGH"


def payload(event: str, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "session_id": SESSION,
        "transcript_path": f"/home/u/.claude/projects/-w/{SESSION}.jsonl",
        "cwd": "/w",
        "permission_mode": "default",
        "hook_event_name": event,
    }
    base.update(extra)
    return base


def tool_payload(
    event: str, tool_use_id: str | None = "toolu_01ABC", **extra: Any
) -> dict[str, Any]:
    body = payload(event, tool_name="Bash", tool_input={"command": "ls -la"}, **extra)
    if tool_use_id is not None:
        body["tool_use_id"] = tool_use_id
    return body


def call(ws: Path, body: bytes | dict[str, Any]) -> int:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return main(io.BytesIO(raw), env={"TIERKEEPER_HOME": str(ws)})


def run_hook(ws: Path, body: bytes | dict[str, Any]) -> subprocess.CompletedProcess[bytes]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    env = {**os.environ, "TIERKEEPER_HOME": str(ws)}
    return subprocess.run(
        [sys.executable, "-m", "core.hooks.record"],
        input=raw,
        env=env,
        capture_output=True,
        check=False,
        timeout=60,
    )


def log_lines(ws: Path, session: str = SESSION) -> list[dict[str, Any]]:
    path = ws / "logs" / f"session_{session}.jsonl"
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def fallback_lines(ws: Path) -> list[dict[str, Any]]:
    path = ws / "fallback" / "hook_payloads.jsonl"
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def all_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


ALL_EVENTS = [
    payload("SessionStart", source="startup", model="claude-opus-4"),
    payload("UserPromptSubmit", prompt="fix the tests"),
    tool_payload("PreToolUse"),
    tool_payload("PostToolUse", tool_response={"stdout": "total 0", "stderr": ""}),
    tool_payload("PostToolUseFailure", error="exit 1"),
    payload("Stop", stop_hook_active=False),
    payload("SubagentStop", stop_hook_active=False),
    payload("PreCompact", trigger="auto", custom_instructions=""),
    payload("SessionEnd", reason="prompt_input_exit"),
]


@pytest.mark.parametrize("body", ALL_EVENTS, ids=lambda b: b["hook_event_name"])
def test_each_event_becomes_one_line_of_the_agreed_shape(
    tmp_path: Path, body: dict[str, Any]
) -> None:
    before = datetime.now(UTC)
    assert call(tmp_path, body) == 0

    (line,) = log_lines(tmp_path)
    assert list(line) == EVENT_KEYS
    assert line["session"] == SESSION
    assert line["agent"] == "claude-code"
    assert line["type"] == body["hook_event_name"]
    assert line["tool"] == body.get("tool_name")
    assert line["tokens_in"] is None and line["tokens_out"] is None
    assert line["payload"] == body
    ts = datetime.fromisoformat(line["ts"])
    assert ts.utcoffset() is not None and ts.utcoffset().total_seconds() == 0
    assert len(line["ts"]) == len("2025-01-01T00:00:00.000000+00:00")
    assert before <= ts <= datetime.now(UTC)
    assert not (tmp_path / "fallback").exists()


def test_subprocess_records_and_prints_nothing(tmp_path: Path) -> None:
    proc = run_hook(tmp_path, payload("UserPromptSubmit", prompt="hello"))

    assert proc.returncode == 0
    assert proc.stdout == b"" and proc.stderr == b""
    (line,) = log_lines(tmp_path)
    assert line["payload"]["prompt"] == "hello"
    assert (tmp_path / "logs" / f"session_{SESSION}.jsonl").stat().st_mode & 0o077 == 0


def test_pre_and_post_tool_use_give_the_tool_latency(tmp_path: Path) -> None:
    assert run_hook(tmp_path, tool_payload("PreToolUse")).returncode == 0
    time.sleep(0.25)
    assert run_hook(tmp_path, tool_payload("PostToolUse", tool_response="ok")).returncode == 0

    pre, post = log_lines(tmp_path)
    assert pre["type"] == "PreToolUse" and pre["duration_ms"] is None
    assert post["type"] == "PostToolUse" and post["duration_ms"] >= 250
    assert list((tmp_path / "logs" / PENDING_DIR).iterdir()) == []


def test_pairing_without_tool_use_id_matches_the_same_call(tmp_path: Path) -> None:
    def raw(event: str, command: str) -> bytes:
        body = tool_payload(event, tool_use_id=None)
        body["tool_input"] = {"command": command, "timeout": 5}
        return json.dumps(body).encode()

    t0 = 1_700_000_000_000_000_000
    record(raw("PreToolUse", "make"), tmp_path, now_ns=t0)
    record(raw("PreToolUse", "pytest"), tmp_path, now_ns=t0 + 100_000_000)
    record(raw("PostToolUse", "pytest"), tmp_path, now_ns=t0 + 400_000_000)
    record(raw("PostToolUseFailure", "make"), tmp_path, now_ns=t0 + 1_500_000_000)

    durations = [
        (e["type"], e["payload"]["tool_input"]["command"], e["duration_ms"])
        for e in log_lines(tmp_path)
    ]
    assert durations == [
        ("PreToolUse", "make", None),
        ("PreToolUse", "pytest", None),
        ("PostToolUse", "pytest", 300.0),
        ("PostToolUseFailure", "make", 1500.0),
    ]


def test_post_without_pre_is_recorded_without_duration(tmp_path: Path) -> None:
    assert call(tmp_path, tool_payload("PostToolUse", tool_use_id="toolu_lonely")) == 0
    (line,) = log_lines(tmp_path)
    assert line["duration_ms"] is None


def test_sweep_removes_only_stale_markers(tmp_path: Path) -> None:
    pending = tmp_path / PENDING_DIR
    pending.mkdir()
    now = time.time_ns()
    old, fresh = pending / "old", pending / "fresh"
    old.write_text("1")
    fresh.write_text("2")
    stale = (now - STALE_PENDING_NS - 60 * 1_000_000_000) / 1e9
    os.utime(old, (stale, stale))

    assert sweep_pending(pending, now) == 1
    assert [p.name for p in pending.iterdir()] == ["fresh"]
    assert sweep_pending(tmp_path / "missing", now) == 0


@pytest.mark.parametrize(
    "raw",
    [
        b'{"session_id": "s1", "hook_event_name": "Stop"',
        b"",
        b"[1, 2]",
        b'{"session_id": "s", "x": NaN}',
    ],
    ids=["truncated", "empty", "not-object", "nan"],
)
def test_malformed_payload_goes_to_fallback(tmp_path: Path, raw: bytes) -> None:
    proc = run_hook(tmp_path, raw)

    assert proc.returncode == 0 and proc.stdout == b""
    (kept,) = fallback_lines(tmp_path)
    assert kept["encoding"] == "utf-8"
    assert kept["stdin"].encode() == raw
    assert kept["error"]
    assert not (tmp_path / "logs").exists()


def test_non_utf8_stdin_is_kept_as_base64(tmp_path: Path) -> None:
    raw = b'{"session_id": "\xff\xfe", "prompt": "' + SECRET.encode() + b'"}'
    assert call(tmp_path, raw) == 0

    (kept,) = fallback_lines(tmp_path)
    assert kept["encoding"] == "base64"
    restored = base64.b64decode(kept["stdin"])
    assert restored.startswith(b'{"session_id": "\xff\xfe"')
    assert SECRET.encode() not in restored


def test_unwritable_logs_dir_goes_to_fallback(tmp_path: Path) -> None:
    (tmp_path / "logs").write_text("a file where the logs folder should be")
    body = payload("Stop")

    proc = run_hook(tmp_path, body)

    assert proc.returncode == 0 and proc.stdout == b""
    (kept,) = fallback_lines(tmp_path)
    assert json.loads(kept["stdin"]) == body
    assert "Error" in kept["error"]


def test_unusable_workspace_still_exits_zero_quietly(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")

    proc = run_hook(blocker / "ws", payload("Stop"))

    assert proc.returncode == 0 and proc.stdout == b""
    assert len(proc.stderr.splitlines()) <= 1
    assert all_files(tmp_path) == ["blocker"]


def test_secrets_are_redacted_in_the_log(tmp_path: Path) -> None:
    body = tool_payload("PreToolUse")
    body["tool_input"] = {"command": f"curl -H 'x-api-key: {SECRET}' https://api.example"}

    assert call(tmp_path, body) == 0

    raw = (tmp_path / "logs" / f"session_{SESSION}.jsonl").read_text()
    assert SECRET not in raw
    (line,) = log_lines(tmp_path)
    assert line["payload"]["tool_input"]["command"].startswith("curl -H")


def test_secrets_are_redacted_in_the_fallback(tmp_path: Path) -> None:
    raw = b'{"session_id": "s", "prompt": "key ' + SECRET.encode() + b'"'
    assert call(tmp_path, raw) == 0

    text = (tmp_path / "fallback" / "hook_payloads.jsonl").read_text()
    assert SECRET not in text
    assert '"session_id": "s"' in fallback_lines(tmp_path)[0]["stdin"]


@pytest.mark.parametrize(
    "session_id",
    ["../../escape", "a/b", "..", "a\\b", "a\x00b", "", "x" * 201, "line\nbreak", 42, None],
)
def test_session_ids_that_could_leave_logs_are_rejected(tmp_path: Path, session_id: object) -> None:
    ws = tmp_path / "ws"
    body = payload("Stop")
    body["session_id"] = session_id

    assert call(ws, body) == 0

    assert all_files(tmp_path) == ["ws/fallback/hook_payloads.jsonl"]
    (kept,) = fallback_lines(ws)
    assert "session_id" in kept["error"]


def test_huge_strings_are_cut_with_a_marker(tmp_path: Path) -> None:
    extra = 40_000
    body = tool_payload(
        "PostToolUse", tool_response={"stdout": "é" * ((MAX_STRING_BYTES + extra) // 2)}
    )
    body["tool_input"] = {"command": "cat big.txt"}

    assert call(tmp_path, body) == 0

    (line,) = log_lines(tmp_path)
    stdout = line["payload"]["tool_response"]["stdout"]
    head, marker = stdout.rsplit("\n", 1)
    assert len(head.encode()) == MAX_STRING_BYTES
    assert marker == f"[tierkeeper: truncated, {extra} bytes cut]"
    assert line["payload"]["tool_input"] == {"command": "cat big.txt"}


def test_concurrent_hooks_leave_only_whole_lines(tmp_path: Path) -> None:
    bodies = [
        tool_payload("PostToolUse", tool_use_id=f"toolu_{i:02d}", tool_response="x" * 200_000)
        for i in range(20)
    ]
    with ThreadPoolExecutor(max_workers=20) as pool:
        procs = list(pool.map(lambda b: run_hook(tmp_path, b), bodies))

    assert all(p.returncode == 0 for p in procs)
    lines = log_lines(tmp_path)
    assert sorted(e["payload"]["tool_use_id"] for e in lines) == [
        f"toolu_{i:02d}" for i in range(20)
    ]
    assert all(len(e["payload"]["tool_response"]) == 200_000 for e in lines)


def _hold_repair_lock(ws: Path) -> int:
    """What `ActivityLog.open` holds while it sets a torn tail aside."""
    logs = ws / "logs"
    logs.mkdir(parents=True)
    fd = os.open(logs / f"session_{SESSION}.jsonl", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def test_the_hook_waits_for_a_tail_repair_then_records(tmp_path: Path) -> None:
    fd = _hold_repair_lock(tmp_path)
    codes: list[int] = []
    hook = threading.Thread(target=lambda: codes.append(call(tmp_path, payload("Stop"))))
    hook.start()
    time.sleep(0.3)  # the hook waits up to seconds; this only gives it time to try
    assert os.fstat(fd).st_size == 0, "nothing is appended while the repair looks at the tail"
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    hook.join()
    assert codes == [0]
    (line,) = log_lines(tmp_path)
    assert line["type"] == "Stop"


def test_a_lock_that_never_comes_does_not_cost_the_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stuck repair (shortened wait, so the test is quick): the hook writes anyway."""
    monkeypatch.setattr(log_lock, "WRITER_WAIT", 0.05)
    fd = _hold_repair_lock(tmp_path)
    try:
        assert call(tmp_path, payload("Stop")) == 0
    finally:
        os.close(fd)
    (line,) = log_lines(tmp_path)
    assert line["type"] == "Stop"
    assert not (tmp_path / "fallback").exists()
