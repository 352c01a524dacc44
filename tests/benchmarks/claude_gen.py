"""Synthetic Claude Code projects (`<project>/<session>.jsonl`) for import benchmarks.

The peer-benchmark generator (`shared/bench/gen_sessions.py`) writes Tierkeeper's
own layout, not Claude Code transcripts, so this writes the real shape:
summaries, user prompts, assistant text and `tool_use` blocks with usage and
request ids, `tool_result` lines carrying numbered file contents, the odd
system line, and `agent-*.jsonl` subagent transcripts beside the sessions.
The output is cached under `.bench-cache/` and reused while `VERSION` holds.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import orjson

from tests.benchmarks.measure import cache_dir, log
from tests.benchmarks.synth import TextGen

VERSION = "claude-projects-v1"
SEED = 4242
PROJECTS = 6
_TOOLS = ("Read", "Edit", "Bash", "Grep", "Glob", "Write")


def ensure_projects(size_mb: int) -> Path:
    """A folder of Claude Code projects holding about `size_mb` MB of transcripts."""
    root = cache_dir() / f"{VERSION}-{size_mb}MB"
    done = root / ".complete"
    if done.exists():
        return root / "projects"
    shutil.rmtree(root, ignore_errors=True)
    log(f"generating ~{size_mb} MB of Claude Code transcripts (cached under .bench-cache/)")
    _generate(root / "projects", size_mb * 1_000_000)
    done.write_text("ok\n")
    return root / "projects"


class _Session:
    def __init__(self, gen: TextGen, project: str, sid: str, n: int) -> None:
        self.gen = gen
        self.project = project
        self.sid = sid
        self.n = n
        self.parent: str | None = None
        self.clock = 1_752_000_000 + n * 7_200
        self.lines: list[bytes] = []

    def _uuid(self) -> str:
        return str(uuid.UUID(int=int(self.gen.rng.integers(0, 1 << 62)) << 64 | self.n, version=4))

    def _ts(self) -> str:
        self.clock += int(self.gen.rng.integers(1, 40))
        sec = self.clock
        day = (sec // 86_400) % 28 + 1
        clock = f"{(sec // 3600) % 24:02d}:{(sec // 60) % 60:02d}:{sec % 60:02d}"
        return f"2025-07-{day:02d}T{clock}.{sec % 1000:03d}Z"

    def _base(self, kind: str, sidechain: bool) -> dict[str, object]:
        me = self._uuid()
        line: dict[str, object] = {
            "parentUuid": self.parent,
            "isSidechain": sidechain,
            "userType": "external",
            "cwd": "/home/dev/" + self.project.rsplit("-", 1)[-1],
            "sessionId": self.sid,
            "version": "1.0.53",
            "gitBranch": "main",
            "type": kind,
            "uuid": me,
            "timestamp": self._ts(),
        }
        self.parent = me
        return line

    def emit(self, obj: dict[str, object]) -> None:
        self.lines.append(orjson.dumps(obj) + b"\n")

    def turn(self, sidechain: bool = False) -> None:
        gen = self.gen
        prompt, reply, thought = gen.texts(3, median_words=30)
        user = self._base("user", sidechain)
        user["message"] = {"role": "user", "content": prompt}
        self.emit(user)
        request = f"req_{self._uuid().replace('-', '')[:24]}"
        msg_id = f"msg_{self._uuid().replace('-', '')[:24]}"
        usage = {
            "input_tokens": int(gen.rng.integers(3, 400)),
            "cache_creation_input_tokens": int(gen.rng.integers(0, 20_000)),
            "cache_read_input_tokens": int(gen.rng.integers(0, 90_000)),
            "output_tokens": int(gen.rng.integers(5, 1_500)),
            "service_tier": "standard",
        }
        for _ in range(int(gen.rng.integers(1, 4))):
            tool = _TOOLS[int(gen.rng.integers(0, len(_TOOLS)))]
            tool_id = f"toolu_{self._uuid().replace('-', '')[:24]}"
            path = f"/home/dev/src/pkg_{int(gen.rng.integers(0, 30))}/mod_{thought[:12].strip()}.py"
            tool_input: dict[str, object]
            if tool == "Bash":
                tool_input = {"command": f"pytest -q {path}", "description": thought[:60]}
            elif tool == "Edit":
                tool_input = {"file_path": path, "old_string": thought, "new_string": reply}
            else:
                tool_input = {"file_path": path}
            call = self._base("assistant", sidechain)
            call["requestId"] = request
            call["message"] = {
                "id": msg_id,
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-20250514",
                "content": [{"type": "tool_use", "id": tool_id, "name": tool, "input": tool_input}],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": usage,
            }
            self.emit(call)
            lines = int(min(gen.rng.lognormal(3.8, 1.0), 800))
            result = self._base("user", sidechain)
            result["message"] = {
                "role": "user",
                "content": [
                    {
                        "tool_use_id": tool_id,
                        "type": "tool_result",
                        "content": gen.code(max(lines, 1)),
                        "is_error": bool(gen.rng.random() < 0.04),
                    }
                ],
            }
            result["toolUseResult"] = {"type": "text", "file": {"filePath": path}}
            self.emit(result)
        answer = self._base("assistant", sidechain)
        answer["requestId"] = request
        answer["message"] = {
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-20250514",
            "content": [{"type": "text", "text": reply}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }
        self.emit(answer)
        if gen.rng.random() < 0.03:
            system = self._base("system", sidechain)
            system["content"] = f"Running PostToolUse hook: {thought[:40]}"
            system["level"] = "info"
            self.emit(system)


def _generate(out: Path, budget: int) -> None:
    gen = TextGen(SEED, vocab_size=30_000)
    written = 0
    n = 0
    while written < budget:
        project = f"-home-dev-project-{n % PROJECTS}"
        folder = out / project
        folder.mkdir(parents=True, exist_ok=True)
        sid = str(uuid.UUID(int=(SEED << 96) | n, version=4))
        session = _Session(gen, project, sid, n)
        for summary in gen.texts(int(gen.rng.integers(0, 3)), median_words=6):
            session.emit({"type": "summary", "summary": summary, "leafUuid": sid})
        for _ in range(int(gen.rng.integers(10, 120))):
            session.turn()
        data = b"".join(session.lines)
        (folder / f"{sid}.jsonl").write_bytes(data)
        written += len(data)
        if n % 4 == 0:
            agent = _Session(gen, project, sid, n + 1_000_000)
            for _ in range(int(gen.rng.integers(3, 30))):
                agent.turn(sidechain=True)
            data = b"".join(agent.lines)
            (folder / f"agent-{n:08x}.jsonl").write_bytes(data)
            written += len(data)
        n += 1


def ensure_big_session(size_mb: int) -> Path:
    """One long Claude Code session of about `size_mb` MB: the 'typical big session' a
    restore goal speaks of (≤ 20 MB once packed)."""
    root = cache_dir() / f"{VERSION}-one-{size_mb}MB"
    done = root / ".complete"
    path = root / "projects" / "-home-dev-big" / "big-session.jsonl"
    if done.exists():
        return path
    shutil.rmtree(root, ignore_errors=True)
    log(f"generating one ~{size_mb} MB Claude Code session (cached under .bench-cache/)")
    gen = TextGen(SEED + 1, vocab_size=30_000)
    sid = str(uuid.UUID(int=(SEED << 96) | 0xB16, version=4))
    session = _Session(gen, "-home-dev-big", sid, 0xB16)
    path.parent.mkdir(parents=True)
    written = 0
    with open(path, "wb") as out:
        while written < size_mb * 1_000_000:
            session.turn()
            data = b"".join(session.lines)
            session.lines.clear()
            out.write(data)
            written += len(data)
    done.write_text("ok\n")
    return path
