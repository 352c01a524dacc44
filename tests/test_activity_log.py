"""The activity log: line shape, redaction on disk, torn tails, concurrent writers, group fsync."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest

from core.local import activity_log
from core.local.activity_log import (
    FIELDS,
    ActivityEvent,
    ActivityLog,
    BadLogLineError,
    read_events,
)

REPO = Path(__file__).resolve().parents[1]


def _fake_key() -> str:
    return "".join(["sk-", "ant-", "api03-", "Zq8Yx7Wv6Ut5Sr4Qp3On2Ml1Kj0Ih", "9Gf8Ed7Cb6"])


def test_append_then_read_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "session_s1.jsonl"  # the folder is created on open
    events = [
        ActivityEvent(session="s1", type="SessionStart", agent="human"),
        ActivityEvent(
            session="s1",
            type="PostToolUse",
            agent="claude-code",
            tool="Bash",
            duration_ms=12.5,
            tokens_in=100,
            tokens_out=7,
            payload={"command": "ls -la", "exit": 0, "nested": [1, {"a": None}]},
            ts="2026-01-31T09:15:02.123456+00:00",
        ),
    ]
    with ActivityLog.open(path) as log:
        assert log.recovered is None
        for event in events:
            log.append(event)

    back = list(read_events(path))
    assert back[1] == events[1]
    assert back[0].session == "s1" and back[0].type == "SessionStart" and back[0].agent == "human"
    ts = datetime.fromisoformat(back[0].ts or "")
    assert ts.utcoffset() == timedelta(0)
    assert len((back[0].ts or "").split(".")[1].split("+")[0]) == 6, "microseconds"

    raw_lines = path.read_bytes().split(b"\n")
    assert raw_lines[-1] == b"", "every line ends with a newline"
    for raw in raw_lines[:-1]:
        assert tuple(orjson.loads(raw)) == FIELDS, "keys in the documented order"


def test_secrets_never_reach_the_file(tmp_path: Path) -> None:
    path = tmp_path / "session_s2.jsonl"
    key = _fake_key()
    password = "".join(["correct", "-horse-", "9battery"])
    with ActivityLog.open(path) as log:
        log.append(
            ActivityEvent(
                session="s2",
                type="PreToolUse",
                tool=f"Bash {key}",
                payload={
                    "command": f"curl -H 'x-api-key: {key}' https://api.example.com",
                    "env": {"DB_PASSWORD": password},
                    "text": f"postgres://app:{password}@db/main",
                },
            )
        )
    raw = path.read_bytes()
    assert key.encode() not in raw
    assert password.encode() not in raw
    assert b"[REDACTED:anthropic_key]" in raw
    assert b"[REDACTED:url_password]" in raw
    (event,) = read_events(path)
    assert event.payload is not None and event.payload["env"] == {
        "DB_PASSWORD": "[REDACTED:secret_value]"
    }


def test_torn_tail_is_set_aside_byte_for_byte_and_the_log_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "session_s3.jsonl"
    with ActivityLog.open(path) as log:
        for i in range(3):
            log.append(ActivityEvent(session="s3", type="Tick", payload={"i": i}))
    whole = path.read_bytes()
    torn = b'{"ts":"2026-01-31T09:15:02.123456+00:00","session":"s3","type":"Ti\xc3'
    with open(path, "ab") as f:
        f.write(torn)

    with ActivityLog.open(path) as log:
        assert log.recovered is not None
        assert log.recovered.offset == len(whole)
        assert log.recovered.data == torn
        assert path.read_bytes() == whole, "truncated back to the last complete line"
        log.append(ActivityEvent(session="s3", type="Tick", payload={"i": 3}))

    sidecar = path.with_name(path.name + ".torn")
    assert log.recovered.sidecar == sidecar
    content = sidecar.read_bytes()
    header, rest = content.split(b"\n", 1)
    assert header.startswith(b"# torn tail of session_s3.jsonl")
    assert f"byte offset {len(whole)}".encode() in header
    assert f"{len(torn)} bytes".encode() in header
    assert rest == torn + b"\n", "the exact bytes, then a newline"
    assert [e.payload for e in read_events(path)] == [{"i": i} for i in range(4)]


def test_a_log_that_is_only_a_torn_line_becomes_empty(tmp_path: Path) -> None:
    path = tmp_path / "session_s4.jsonl"
    path.write_bytes(b'{"ts":"2026')
    with ActivityLog.open(path) as log:
        assert log.recovered is not None and log.recovered.offset == 0
    assert path.read_bytes() == b""
    # a second crash appends a second record to the same sidecar
    path.write_bytes(b"partial")
    with ActivityLog.open(path):
        pass
    assert path.with_name(path.name + ".torn").read_bytes().count(b"# torn tail of") == 2


def test_a_complete_but_invalid_last_line_is_kept_and_reading_flags_it(tmp_path: Path) -> None:
    path = tmp_path / "session_s5.jsonl"
    with ActivityLog.open(path) as log:
        log.append(ActivityEvent(session="s5", type="A"))
    with open(path, "ab") as f:
        f.write(b"this is not json\n")
    before = path.read_bytes()
    with ActivityLog.open(path) as log:
        assert log.recovered is None
    assert path.read_bytes() == before
    assert not path.with_name(path.name + ".torn").exists()
    with pytest.raises(BadLogLineError) as err:
        list(read_events(path))
    assert err.value.line_no == 2
    assert err.value.offset == before.index(b"this")


@pytest.mark.parametrize(
    "line",
    [
        b'["not", "an", "object"]\n',
        b'{"ts":"x","session":"s","type":"t","extra":1}\n',
        b'{"ts":"x","type":"t"}\n',
        b'{"ts":"x","session":"s","type":"t","tokens_in":"7"}\n',
        b'{"ts":"x","session":"s","type":"t","payload":[1]}\n',
    ],
)
def test_reading_rejects_lines_of_the_wrong_shape(tmp_path: Path, line: bytes) -> None:
    path = tmp_path / "session_bad.jsonl"
    path.write_bytes(line)
    with pytest.raises(BadLogLineError):
        list(read_events(path))


def test_reading_an_unrecovered_torn_tail_raises_instead_of_skipping(tmp_path: Path) -> None:
    path = tmp_path / "session_s6.jsonl"
    path.write_bytes(b'{"ts":"x","session":"s","type":"t"}\n{"ts":')
    with pytest.raises(BadLogLineError, match="unterminated"):
        list(read_events(path))


def test_append_after_close_fails(tmp_path: Path) -> None:
    log = ActivityLog.open(tmp_path / "session_s7.jsonl")
    log.close()
    log.close()  # harmless
    with pytest.raises(ValueError, match="closed"):
        log.append(ActivityEvent(session="s7", type="A"))


_WRITER = """
import sys
from pathlib import Path
from core.local.activity_log import ActivityEvent, ActivityLog
path, name, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
pad = "x" * 3000  # lines well past PIPE_BUF: atomicity must not depend on small writes
with ActivityLog.open(path, fsync_interval=0.01) as log:
    for i in range(count):
        log.append(ActivityEvent(session="c", type="W", agent=name, payload={"i": i, "pad": pad}))
"""

_HOOK = """
import json, sys
from pathlib import Path
from core.hooks.record import record
ws, count = Path(sys.argv[1]), int(sys.argv[2])
for i in range(count):
    body = {"session_id": "c", "hook_event_name": "Notification", "i": i, "pad": "y" * 2000}
    record(json.dumps(body).encode(), ws)
"""


def test_concurrent_writers_interleave_only_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "session_c.jsonl"
    count = 3000
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # The real hook plus two writer processes, each opening whenever it starts up.
    procs = [subprocess.Popen([sys.executable, "-c", _HOOK, str(tmp_path), str(count)], env=env)]
    procs += [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), f"p{n}", str(count)], env=env)
        for n in range(2)
    ]
    # Two instances inside this process open late, while the others are writing: open may
    # meet a line half written, and must leave it alone (it holds the writers' lock).
    deadline = time.monotonic() + 120
    while not path.exists() or path.stat().st_size == 0:
        assert time.monotonic() < deadline, "no writer started"
        time.sleep(0.005)
    logs = [ActivityLog.open(path) for _ in range(2)]

    def write(log: ActivityLog, name: str) -> None:
        for i in range(count):
            log.append(ActivityEvent(session="c", type="W", agent=name, payload={"i": i}))

    threads = [threading.Thread(target=write, args=(log, f"t{n}")) for n, log in enumerate(logs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for log in logs:
        log.close()
    for p in procs:
        assert p.wait(timeout=120) == 0

    seen: dict[str, list[int]] = {}
    for event in read_events(path):  # raises on any broken line
        assert event.payload is not None
        seen.setdefault(event.agent or "", []).append(event.payload["i"])
    assert sorted(seen) == ["claude-code", "p0", "p1", "t0", "t1"]
    for name, numbers in seen.items():
        assert numbers == list(range(count)), f"{name}: lost, duplicated or reordered lines"
    assert not path.with_name(path.name + ".torn").exists()


def _same_file(fd: int, path: Path) -> bool:
    st = os.fstat(fd)
    other = path.stat()
    return (st.st_dev, st.st_ino) == (other.st_dev, other.st_ino)


class _Counter:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
        self.path = path
        self.count = 0
        real = os.fsync

        def counting(fd: int) -> None:
            real(fd)
            if self.path.exists() and _same_file(fd, self.path):
                self.count += 1

        monkeypatch.setattr(activity_log.os, "fsync", counting)


def test_a_burst_of_appends_shares_one_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "session_f1.jsonl"
    fsyncs = _Counter(monkeypatch, path)
    log = ActivityLog.open(path, fsync_interval=3600)
    for i in range(200):
        log.append(ActivityEvent(session="f1", type="A", payload={"i": i}))
    assert fsyncs.count == 0, "within the interval, appends do not fsync"
    log.sync()
    assert fsyncs.count == 1
    log.sync()
    assert fsyncs.count == 1, "nothing new, nothing to fsync"
    log.append(ActivityEvent(session="f1", type="A"))
    log.close()
    assert fsyncs.count == 2, "close fsyncs what is pending"


def test_an_append_after_the_interval_fsyncs_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "session_f2.jsonl"
    fsyncs = _Counter(monkeypatch, path)
    with ActivityLog.open(path, fsync_interval=0) as log:
        for i in range(5):
            log.append(ActivityEvent(session="f2", type="A", payload={"i": i}))
            assert fsyncs.count == i + 1


def test_a_lone_append_is_fsynced_by_the_timer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "session_f3.jsonl"
    fsyncs = _Counter(monkeypatch, path)
    with ActivityLog.open(path, fsync_interval=0.5) as log:
        log.append(ActivityEvent(session="f3", type="A"))
        log.sync()
        log.append(ActivityEvent(session="f3", type="B"))  # inside the interval: no fsync now
        deadline = time.monotonic() + 10
        while fsyncs.count < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert fsyncs.count == 2, "no further append came, yet the write was fsynced"
