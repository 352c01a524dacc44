"""Snapshot save time for a 5 MB agent state, against doing it all by hand.

`SnapshotStore.save` serializes, checks for secrets (compressing in a worker
thread meanwhile), writes a temp file, fsyncs, publishes it with `os.link`
and fsyncs the folder. The baseline does the same durable steps by hand —
`orjson.dumps`, zstd level 3, write, fsync, rename, folder fsync — without
the secret check, so the ratio is what safety costs. Saves of the two kinds
alternate so that disk weather hits both alike.
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import zstandard

from core.local.snapshots import SnapshotStore
from core.redact import contains_secret, might_contain_secret
from core.secret_gate import engine
from tests.benchmarks.measure import (
    Result,
    Row,
    log,
    mb,
    median,
    ms,
    percentile,
    ratio,
    scratch_parent,
)
from tests.benchmarks.synth import TextGen

NAME = "snapshots"
TITLE = "Snapshot save (5 MB state)"
GOAL = 0.050
TARGET_BYTES = 5_000_000
_FALSE_POSITIVE = (
    " (a false positive: source code in the tool outputs has `token = …`-like names),"
    " so the walk parsed and redacted the few parts it fired in, for nothing"
)


def make_state(target: int = TARGET_BYTES, seed: int = 11) -> dict[str, Any]:
    """A nested agent state: conversation, tool outputs, file list, todos (~`target` bytes)."""
    gen = TextGen(seed, vocab_size=20_000)
    state: dict[str, Any] = {
        "session_id": "7a1c9e2b-0000-4000-8000-000000005a7e",
        "model": "claude-sonnet-4-5",
        "cwd": "/home/dev/src/tierkeeper",
        "git_branch": "main",
        "created_at": "2026-01-31T09:15:02.123456+00:00",
        "messages": [],
        "tool_outputs": [],
        "files": [],
        "todos": [],
    }
    size = 0
    turn = 0
    while size < target:
        for _ in range(20):
            turn += 1
            texts = gen.texts(3, median_words=40)
            tool_id = f"toolu_{turn:08d}{seed:04d}"
            state["messages"].append({"role": "user", "ts": f"t{turn}", "content": texts[0]})
            state["messages"].append(
                {
                    "role": "assistant",
                    "ts": f"t{turn}",
                    "content": [
                        {"type": "text", "text": texts[1]},
                        {
                            "type": "tool_use",
                            "id": tool_id,
                            "name": "Read",
                            "input": {"file_path": f"src/mod_{turn % 300}.py"},
                        },
                    ],
                    "usage": {"input_tokens": 1200 + turn, "output_tokens": 80 + turn % 400},
                }
            )
            state["tool_outputs"].append(
                {
                    "tool_use_id": tool_id,
                    "tool": "Read",
                    "is_error": False,
                    "output": gen.code(20 + turn % 60),
                }
            )
            state["files"].append(
                {
                    "path": f"src/pkg_{turn % 17}/mod_{turn % 300}.py",
                    "size": 1000 + turn * 37 % 50_000,
                    "sha256": f"{turn * 2654435761 % (1 << 64):064x}",
                    "modified": turn % 5 == 0,
                    "summary": texts[2][:200],
                }
            )
            if turn % 10 == 0:
                state["todos"].append({"content": texts[2][:80], "status": "pending"})
        size = len(orjson.dumps(state))
    return state


def _by_hand(folder: Path, n: int, state: Any) -> None:
    data = orjson.dumps(state)
    blob = zstandard.ZstdCompressor(level=3, write_checksum=True).compress(data)
    tmp = folder / f".tmp-{n}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(blob)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, folder / f"snap{n:03d}.json.zst")
    dfd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _evolve(state: dict[str, Any], n: int) -> None:
    """The next moment of a session: ~5 % of the tool outputs change, a message is added."""
    outputs = state["tool_outputs"]
    step = max(1, len(outputs) // max(1, len(outputs) * 5 // 100))
    for i in range(n % step, len(outputs), step):
        outputs[i]["output"] += f"\n# edit {n}: re-ran the tool, output changed"
    state["messages"].append({"role": "assistant", "content": f"step {n}: applied the change"})


def _time_saves(
    root: Path, state: dict[str, Any], rounds: int
) -> tuple[list[float], list[float], list[float], Path]:
    """(next saves as the session evolves, first saves on a fresh store, by hand)."""
    store = SnapshotStore(root / "state")
    hand = root / "by-hand"
    hand.mkdir()
    ours: list[float] = []
    cold: list[float] = []
    base: list[float] = []
    clock = time.perf_counter
    store.save("warmup", state)
    _by_hand(hand, 999, state)
    last = root
    for n in range(rounds):
        _evolve(state, n)
        gc.collect()
        t0 = clock()
        info = store.save("bench", state)
        ours.append(clock() - t0)
        last = info.path
        gc.collect()
        fresh = SnapshotStore(root / f"cold-{n}")
        t0 = clock()
        fresh.save("bench", state)
        cold.append(clock() - t0)
        gc.collect()
        t0 = clock()
        _by_hand(hand, n, state)
        base.append(clock() - t0)
    return ours, cold, base, last


def run(quick: bool) -> Result:
    rounds = 5 if quick else 20
    state = make_state()
    data = orjson.dumps(state)
    gated = might_contain_secret(data)
    really = contains_secret(data.decode())
    planted = orjson.loads(data)
    planted["tool_outputs"][len(planted["tool_outputs"]) // 2]["output"] += (
        "\nANTHROPIC_API_KEY=sk-ant-api03-" + "Xy7" * 30
    )
    log(f"snapshots: {rounds} saves of {mb(len(data))} (+ {rounds} by hand)")
    with tempfile.TemporaryDirectory(prefix="bench-snap-", dir=scratch_parent()) as tmp:
        root = Path(tmp)
        ours, cold, base, last = _time_saves(root, state, rounds)
        packed = last.stat().st_size
        store = SnapshotStore(root / "state")
        loads = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            store.load("bench")
            loads.append(time.perf_counter() - t0)
        secret_times = []
        for _ in range(max(3, rounds // 4)):
            t0 = time.perf_counter()
            store.save("secret", planted)
            secret_times.append(time.perf_counter() - t0)
        assert b"sk-ant-api03" not in zstandard.ZstdDecompressor().decompress(
            store.list("secret")[-1].path.read_bytes()
        )

    m, c, b = median(ours), median(cold), median(base)
    res = Result(NAME, TITLE)
    res.rows.append(
        Row("Snapshot save, 5 MB, next save (5 % changed)", ms(m), "< 50 ms", m < GOAL, ms(b),
            ratio(m, b))
    )  # fmt: skip
    res.rows.append(
        Row("Snapshot save, 5 MB, first save of a session", ms(c), "< 50 ms", c < GOAL, ms(b),
            ratio(c, b))
    )  # fmt: skip
    res.method = (
        f"A {mb(len(data))} JSON state shaped like an agent's (messages with tool_use blocks "
        f"and usage, {len(state['tool_outputs']):,} numbered source-file tool outputs, a file "
        "list, todos) saved "
        f"{rounds} times as the session evolves (before each save ~5 % of the tool outputs "
        "change and a message is added), with `SnapshotStore.save` on one store (it remembers "
        "which parts it found clean), on a fresh store each time (the first save of a session),"
        f" and {rounds} times by hand (orjson.dumps + zstd level 3 with checksum + write + "
        "fsync + rename + folder fsync). One warm-up save of each is not counted."
    )
    res.details = [
        "| | median | p90 | min | max |",
        "|---|---|---|---|---|",
        _line("SnapshotStore.save, next save (5 % changed)", ours),
        _line("SnapshotStore.save, first save of a session", cold),
        _line("by hand (baseline)", base),
        _line("SnapshotStore.load", loads),
        _line("save, one secret planted", secret_times),
        "",
        f"Compressed size {mb(packed)} ({len(data) / packed:.1f}:1). The fast secret gate "
        f"{'fired' if gated else 'did not fire'} on the clean state, which "
        f"{'does' if really else 'does not'} contain a secret by `contains_secret`"
        f"{_FALSE_POSITIVE if gated and not really else ''}"
        ". With a planted API key the key is redacted in the file (checked). "
        f"The gate ran on {engine()}.",
    ]
    return res


def _line(label: str, values: list[float]) -> str:
    cells = [ms(median(values)), ms(percentile(values, 90)), ms(min(values)), ms(max(values))]
    return f"| {label} | {' | '.join(cells)} |"
