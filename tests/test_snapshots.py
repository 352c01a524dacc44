"""Session state snapshots: atomic numbered files, redaction, damage, hostile session ids."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import BadInputError, NotFoundError
from core.local import snapshots
from core.local.snapshots import SnapshotStore
from core.redact import redact_obj

SID = "20260131_091502"


def _fake_key() -> str:
    return "".join(["sk-", "proj-", "Zq8Yx7Wv6Ut5Sr4Qp3On2Ml1Kj0Ih", "_9Gf8Ed7Cb6"])


def _big_state(n: int = 3000) -> dict[str, Any]:
    """A transcript-like state of a few MB (big enough for the threaded path)."""
    return {
        "todo": [f"step {i}: verify the manifest and retry the upload" for i in range(n)],
        "messages": [
            {
                "role": "assistant" if i % 2 else "user",
                "text": f"message {i} " + "token cost latency checksum " * 40,
                "usage": {"input_tokens": i, "output_tokens": 2 * i},
            }
            for i in range(n)
        ],
    }


def test_save_then_load_round_trips_with_increasing_numbers(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "state")  # created on first save
    states = [{"step": i, "files": {"a.py": "x" * i}, "ok": True, "ratio": 0.5} for i in range(3)]
    infos = [store.save(SID, s) for s in states]

    assert [i.number for i in infos] == [1, 2, 3]
    assert [i.path.name for i in infos] == [
        f"session_{SID}_snap001.json.zst",
        f"session_{SID}_snap002.json.zst",
        f"session_{SID}_snap003.json.zst",
    ]
    for info in infos:
        assert info.path.parent == tmp_path / "state"
        assert info.size == info.path.stat().st_size
        assert info.path.read_bytes()[:4] == b"\x28\xb5\x2f\xfd", "a zstd frame"
    assert store.list(SID) == infos
    assert store.load(SID) == states[-1]
    assert store.load(SID, 1) == states[0]


def test_list_separates_sessions_and_sorts_by_number(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    for sid in ("b", "a", "b"):
        store.save(sid, {"sid": sid})
    assert [(i.session_id, i.number) for i in store.list()] == [("a", 1), ("b", 1), ("b", 2)]
    assert [i.number for i in store.list("b")] == [1, 2]
    assert store.list("nobody") == []
    assert SnapshotStore(tmp_path / "missing").list() == []


def test_numbers_grow_past_three_digits(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    (tmp_path / f"session_{SID}_snap999.json.zst").write_bytes(
        zstandard.ZstdCompressor().compress(orjson.dumps({"n": 999}))
    )
    info = store.save(SID, {"n": 1000})
    assert info.number == 1000
    assert info.path.name == f"session_{SID}_snap1000.json.zst"
    assert store.load(SID) == {"n": 1000}


def test_secrets_are_redacted_before_they_are_written(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    key = _fake_key()
    state = {"config": {"api_key": "plain-" + "value-1"}, "log": [f"export OPENAI_API_KEY={key}"]}
    info = store.save(SID, state)
    raw = zstandard.ZstdDecompressor().decompress(info.path.read_bytes())
    assert key.encode() not in raw
    assert b"plain-value-1" not in raw
    assert store.load(SID) == {
        "config": {"api_key": "[REDACTED:secret_value]"},
        "log": ["export OPENAI_API_KEY=[REDACTED:openai_key]"],
    }


def test_a_large_state_round_trips_exactly_when_clean(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    state = _big_state()
    assert len(orjson.dumps(state)) > 2 << 20
    store.save(SID, state)
    assert store.load(SID) == state


def test_a_large_state_with_a_few_secrets_is_redacted_like_redact_obj(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    state = _big_state()
    key = _fake_key()
    state["messages"][1234]["text"] += f" OPENAI_API_KEY={key}"
    state["messages"][2500]["auth"] = {"token": "t0k3n-" + "abc"}
    state["settings"] = {"password": "pw-" + "xyz", "retries": 3}
    store.save(SID, state)
    loaded = store.load(SID)
    assert loaded == orjson.loads(orjson.dumps(redact_obj(state)))
    assert loaded["messages"][2500]["auth"] == {"token": "[REDACTED:secret_value]"}
    assert loaded["messages"][1233] == state["messages"][1233]


def test_state_that_is_not_json_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="JSON"):
        SnapshotStore(tmp_path).save(SID, {"x": object()})
    assert SnapshotStore(tmp_path).list() == []


def test_a_truncated_snapshot_names_itself_and_the_older_one(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    store.save(SID, {"v": 1})
    latest = store.save(SID, {"v": 2, "pad": "z" * 5000})
    data = latest.path.read_bytes()
    latest.path.write_bytes(data[: len(data) // 2])

    with pytest.raises(BadInputError) as err:
        store.load(SID)
    text = str(err.value)
    assert str(latest.path) in text
    assert "damaged" in text
    assert "older snapshot 1" in text
    assert store.load(SID, 1) == {"v": 1}


def test_a_flipped_byte_is_caught_by_the_checksum(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    info = store.save(SID, {"v": "a" * 1000, "w": list(range(200))})
    data = bytearray(info.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    info.path.write_bytes(bytes(data))
    with pytest.raises(BadInputError, match="damaged") as err:
        store.load(SID)
    assert "no older snapshot" in str(err.value)


def test_unknown_session_or_number_is_not_found(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    with pytest.raises(NotFoundError):
        store.load(SID)
    store.save(SID, {"v": 1})
    with pytest.raises(NotFoundError, match="no snapshot 7"):
        store.load(SID, 7)


@pytest.mark.parametrize(
    "bad", ["../escape", "a/b", "..", "a..b", "a\0b", "", ".hidden", "a\\b", "x\ny", "z" * 201]
)
def test_session_ids_cannot_leave_the_state_folder(tmp_path: Path, bad: str) -> None:
    state_dir = tmp_path / "ws" / "state"
    store = SnapshotStore(state_dir)
    with pytest.raises(BadInputError):
        store.save(bad, {"v": 1})
    with pytest.raises(BadInputError):
        store.load(bad)
    with pytest.raises(BadInputError):
        store.list(bad)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written == []


def test_leftover_temp_files_are_ignored_and_cleaned_when_their_writer_is_gone(
    tmp_path: Path,
) -> None:
    store = SnapshotStore(tmp_path)
    store.save(SID, {"v": 1})
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(gone.stdout)
    crashed = tmp_path / f".tmp-{dead_pid}-0a0b0c-{SID}"
    crashed.write_bytes(b"half a snapshot")
    in_flight = tmp_path / f".tmp-{os.getpid()}-0d0e0f-{SID}"  # a save still running here
    in_flight.write_bytes(b"being written")

    assert [i.number for i in store.list(SID)] == [1]
    assert store.load(SID) == {"v": 1}
    store.save(SID, {"v": 2})
    assert not crashed.exists(), "cleaned on the next save"
    assert in_flight.exists(), "a live writer's temp file is left alone"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        f"session_{SID}_snap001.json.zst",
        f"session_{SID}_snap002.json.zst",
    ]


def test_concurrent_saves_never_overwrite_each_other(tmp_path: Path) -> None:
    stores = [SnapshotStore(tmp_path) for _ in range(4)]  # separate instances, shared folder
    errors: list[BaseException] = []

    def save_many(store: SnapshotStore, who: int) -> None:
        try:
            for i in range(5):
                store.save(SID, {"who": who, "i": i})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=save_many, args=(s, n)) for n, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    infos = stores[0].list(SID)
    assert [i.number for i in infos] == list(range(1, 21))
    saved = sorted((s["who"], s["i"]) for s in (stores[0].load(SID, i.number) for i in infos))
    assert saved == [(w, i) for w in range(4) for i in range(5)]


def test_later_saves_still_catch_a_secret_added_to_a_part_seen_clean(tmp_path: Path) -> None:
    """Remembering clean parts must never let a changed part through unscanned."""
    store = SnapshotStore(tmp_path / "state")
    key = "sk-ant-" + "api03-" + "Qx9" * 30
    code = "\n".join(f"token_{i} = compute_token({i})" for i in range(400))
    state = {"files": [{"path": f"f{i}.py", "text": code} for i in range(40)], "notes": []}
    store.save("s1", state)
    assert store.save("s1", state).number == 2  # identical: served from the clean digests
    state["files"][7]["text"] += f"\nAPI_KEY={key}\n"
    state["notes"].append(f"use {key}")
    info = store.save("s1", state)
    raw = zstandard.ZstdDecompressor().decompress(info.path.read_bytes())
    assert key.encode() not in raw
    loaded = store.load("s1", info.number)
    assert "[REDACTED" in loaded["files"][7]["text"] and "[REDACTED" in loaded["notes"][0]
    assert loaded["files"][8] == state["files"][8]
    again = store.save("s1", state)  # a dirty state saved twice is redacted twice
    assert key.encode() not in zstandard.ZstdDecompressor().decompress(again.path.read_bytes())


def test_secrets_inside_non_json_types_are_redacted_too(tmp_path: Path) -> None:
    """The walk splits the caller's own objects; a dataclass still gets redacted."""
    import dataclasses
    import datetime

    @dataclasses.dataclass
    class Creds:
        note: str

    key = "sk-ant-" + "api03-" + "Wp4" * 30
    store = SnapshotStore(tmp_path / "state")
    state = {
        "when": datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
        "items": [Creds(note=f"the key is {key}"), {"plain": "x" * 70_000}],
    }
    for _ in range(2):  # cold, then with clean parts remembered
        info = store.save("s1", state)
        raw = zstandard.ZstdDecompressor().decompress(info.path.read_bytes())
        assert key.encode() not in raw and b"[REDACTED" in raw


# --- the walk looks only where the gate fired -----------------------------------------------
def _code(i: int) -> str:
    """Source lines that trip the gate without holding a secret (`token = ...`)."""
    return "\n".join(f"    token = compute_token({i}, {n})  # step {n}" for n in range(40))


def _raw(info: Any) -> bytes:
    return bytes(zstandard.ZstdDecompressor().decompress(info.path.read_bytes()))


def _expected(state: Any) -> Any:
    return orjson.loads(orjson.dumps(redact_obj(state)))


def test_a_secret_right_after_a_false_alarm_is_cut(tmp_path: Path) -> None:
    key = _fake_key()
    outputs = [{"tool": "Read", "output": _code(i)} for i in range(1200)]
    outputs[500]["output"] += "\nclean tail"  # the gate fires here for nothing...
    outputs[501]["output"] = f"API_KEY={key}"  # ...and the very next part holds a secret
    outputs[900]["output"] += f"\nexport OPENAI_API_KEY={key}\n"  # after a false alarm, same part
    state = {"tool_outputs": outputs, "notes": ["plain"] * 10}
    assert len(orjson.dumps(state)) > 2 << 20  # the threaded path
    store = SnapshotStore(tmp_path)
    for _ in range(2):  # first save, then with the false alarms remembered as clean
        info = store.save(SID, state)
        assert key.encode() not in _raw(info)
        loaded = store.load(SID, info.number)
        assert loaded == _expected(state)
        assert loaded["tool_outputs"][500] == outputs[500]
        assert loaded["tool_outputs"][501]["output"] == "API_KEY=[REDACTED:openai_key]"
        assert loaded["tool_outputs"][900]["output"].startswith(outputs[899]["output"][:20])


def test_secrets_at_the_edges_of_big_parts_are_cut(tmp_path: Path) -> None:
    key = _fake_key()
    big = "x" * (70 * 1024)  # a part bigger than the 64 KiB the walk looks into
    state = {
        "blobs": [f"{key} {big}", f"{big} {key}", big, f"{big}\npassword: hunter2-{key[3:9]}"],
        "nested": [{"id": i, "text": f"entry {i} " + "y" * 400} for i in range(400)],
        "last": {"inner": [big, f"ends with {key}"]},
    }
    state["nested"][0]["text"] = f"{key} first"
    state["nested"][-1]["text"] += f" last {key}"
    state["padding"] = ["z" * 1000] * 1000
    store = SnapshotStore(tmp_path)
    info = store.save(SID, state)
    raw = _raw(info)
    assert key.encode() not in raw and b"hunter2" not in raw
    assert store.load(SID) == _expected(state)


def test_a_secret_in_a_key_is_cut(tmp_path: Path) -> None:
    url = "https://ana:" + "s3cr3t-" + "pw@db.example.com/"
    state = {
        "pad": ["p" * 1000] * 1200,
        "by_url": {url: 1, "other": 2},  # a small part: redacted whole
        url: [{"n": i, "t": "q" * 500} for i in range(300)],  # a big container under the key
    }
    store = SnapshotStore(tmp_path)
    info = store.save(SID, state)
    raw = _raw(info)
    assert b"s3cr3t-pw" not in raw
    loaded = store.load(SID)
    assert loaded == _expected(state)
    assert "https://ana:[REDACTED:url_password]@db.example.com/" in loaded


def test_secrets_seen_only_in_their_json_escaped_form_are_cut(tmp_path: Path) -> None:
    token = "".join(["eyJhbGciOiJIUzI1NiJ9", ".", "eyJzdWIiOiIxMjM0In0", ".", "abc_-Z"])
    texts = [
        f"header:\tBearer\t{token}",  # a tab is `\t` in JSON
        "cat .env\nDB_PASSWORD=" + "hunter" + "2-x\n",  # a line that starts after `\n`
        '{"api_key": "' + "plain-" + 'value-9"}',  # JSON inside a string: escaped quotes
    ]
    state = {"log": ["filler " * 100] * 2000, "outputs": texts}
    store = SnapshotStore(tmp_path)
    raw = _raw(store.save(SID, state))
    for secret in (token, "hunter2-x", "plain-value-9"):
        assert secret.encode() not in raw
    assert store.load(SID) == _expected(state)


_LEAVES = st.lists(
    st.sampled_from(
        ["token = t", "API_KEY=abc123", "password: hunter2", "plain", "author: Ana",
         "input_tokens", " ", "sk-" + "proj-" + "Zq8Yx7Wv6Ut5Sr4Qp3On2Ml1Kj0Ih", "\n", "\t"]
    ),
    max_size=4,
).map("".join)  # fmt: skip
_STATES = st.recursive(
    _LEAVES | st.integers(0, 9) | st.none(),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.sampled_from(["password", "token", "k", "tokens", "api_key"]), inner)
    ),
    max_leaves=25,
)


@settings(max_examples=200, deadline=None)
@given(_STATES)
def test_the_walk_redacts_exactly_like_redact_obj(state: Any) -> None:
    """With a tiny part size every container is looked into: the walk at every depth."""
    clean = snapshots.CleanParts()
    data = orjson.dumps(state)
    with _part_size(16):
        for _ in range(2):  # the second time with the clean parts remembered
            out = snapshots._redact_document(data, clean, state)
            assert orjson.loads(out) == _expected(state)
            if _expected(state) == orjson.loads(data):
                assert out is data


def test_the_bytes_that_were_scanned_are_what_gets_redacted() -> None:
    """A state changed while it is being saved: the walk trusts the serialized bytes."""
    key = _fake_key()
    state: dict[str, Any] = {"a": [f"k={i}" for i in range(50)], "b": [f"use {key}"]}
    data = orjson.dumps(state)
    state["a"].insert(0, "shifts every offset")
    state["b"] = ["clean now"]
    with _part_size(16):
        out = snapshots._redact_document(data, snapshots.CleanParts(), state)
    assert key.encode() not in out
    assert orjson.loads(out) == _expected(orjson.loads(data))


class _part_size:
    """The walk's part size, made small so tiny states exercise it at every depth."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __enter__(self) -> None:
        self.saved = snapshots._GROUP_BYTES
        snapshots._GROUP_BYTES = self.size

    def __exit__(self, *_: object) -> None:
        snapshots._GROUP_BYTES = self.saved
