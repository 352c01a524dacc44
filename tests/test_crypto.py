"""Client-side encryption: round trips, refusals of wrong keys and damaged files, recovery kit.

Everything runs on real files in tmp_path with a cheap scrypt cost (N=2**10)
and 64 KiB chunks, so chunk boundaries are crossed with small inputs.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import random
import subprocess
import sys
import textwrap
import threading
import unicodedata
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.errors import BadInputError, ExitCode
from core.packing import IntegrityError
from core.packing.crypto import (
    HEADER_SIZE,
    TAG_SIZE,
    EncryptedDataError,
    Key,
    KeyParams,
    WrongKeyError,
    decrypt_file,
    decrypt_stream,
    derive_key,
    encrypt_file,
    encrypt_stream,
    encrypted_key_id,
    is_encrypted,
    key_from_recovery,
    new_key_params,
    recovery_code,
    recovery_kit,
)

C = 64 * 1024
FRAME = C + TAG_SIZE
PASSPHRASE = "correct horse battery staple"
FAST = 2**10


@pytest.fixture(scope="module")
def params() -> KeyParams:
    return new_key_params(n=FAST)


@pytest.fixture(scope="module")
def key(params: KeyParams) -> Key:
    return params.derive(PASSPHRASE)


def _plain(path: Path, size: int, seed: int = 1) -> bytes:
    data = random.Random(seed).randbytes(size)
    path.write_bytes(data)
    return data


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


def _expected_size(plain_size: int) -> int:
    """Full chunks of C, then a final chunk of 0..C-1 bytes, each with a tag."""
    return HEADER_SIZE + (plain_size // C) * FRAME + plain_size % C + TAG_SIZE


# --- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, C - 1, C, C + 1, 3 * C + 7])
def test_round_trip_across_chunk_boundaries(tmp_path: Path, key: Key, size: int) -> None:
    data = _plain(tmp_path / "plain", size)

    info = encrypt_file(tmp_path / "plain", tmp_path / "enc", key, chunk_size=C)

    stored = (tmp_path / "enc").read_bytes()
    assert info.size == len(stored) == _expected_size(size)
    assert info.sha256 == hashlib.sha256(stored).hexdigest()
    assert info.md5 == hashlib.md5(stored, usedforsecurity=False).hexdigest()
    assert info.plain_size == size
    assert is_encrypted(tmp_path / "enc")
    assert encrypted_key_id(tmp_path / "enc") == key.key_id

    restored = decrypt_file(tmp_path / "enc", tmp_path / "out", key)

    assert (tmp_path / "out").read_bytes() == data
    assert restored.size == size
    assert restored.sha256 == hashlib.sha256(data).hexdigest()
    assert _leftovers(tmp_path) == []


def test_ciphertext_hides_the_plaintext_and_differs_every_time(tmp_path: Path, key: Key) -> None:
    data = b"session transcript: the API key is sk-live-0123456789\n" * 3000
    (tmp_path / "plain").write_bytes(data)

    encrypt_file(tmp_path / "plain", tmp_path / "a", key, chunk_size=C)
    encrypt_file(tmp_path / "plain", tmp_path / "b", key, chunk_size=C)

    a, b = (tmp_path / "a").read_bytes(), (tmp_path / "b").read_bytes()
    assert b"sk-live" not in a
    assert a != b
    assert a[HEADER_SIZE:][:4096] != b[HEADER_SIZE:][:4096]
    for name in ("a", "b"):
        decrypt_file(tmp_path / name, tmp_path / f"{name}.out", key)
        assert (tmp_path / f"{name}.out").read_bytes() == data


def test_default_chunk_size_round_trip(tmp_path: Path, key: Key) -> None:
    data = _plain(tmp_path / "plain", (1 << 20) * 2 + 5)
    encrypt_file(tmp_path / "plain", tmp_path / "enc", key)
    decrypt_file(tmp_path / "enc", tmp_path / "out", key, expect_sha256=_sha(data).upper())
    assert (tmp_path / "out").read_bytes() == data


def test_streams_from_a_pipe_give_the_same_layout_as_files(tmp_path: Path, key: Key) -> None:
    """A pipe delivers short reads; chunking must not depend on how the bytes arrive."""
    data = random.Random(3).randbytes(3 * C + 7)
    read_fd, write_fd = os.pipe()

    def feed() -> None:
        with os.fdopen(write_fd, "wb", buffering=0) as w:
            for start in range(0, len(data), 1000):
                w.write(data[start : start + 1000])

    feeder = threading.Thread(target=feed)
    feeder.start()
    encrypted = io.BytesIO()
    with os.fdopen(read_fd, "rb", buffering=0) as r:
        assert encrypt_stream(r, encrypted, key, chunk_size=C) == len(data)
    feeder.join()

    assert len(encrypted.getvalue()) == _expected_size(len(data))
    restored = io.BytesIO()
    encrypted.seek(0)
    assert decrypt_stream(encrypted, restored, key) == len(data)
    assert restored.getvalue() == data


# --- wrong key ----------------------------------------------------------------------------


def test_wrong_passphrase_is_named_as_such_and_writes_nothing(
    tmp_path: Path, params: KeyParams, key: Key
) -> None:
    _plain(tmp_path / "plain", 2 * C + 3)
    encrypt_file(tmp_path / "plain", tmp_path / "enc", key, chunk_size=C)
    wrong = params.derive("correct horse battery stapler")

    with pytest.raises(WrongKeyError) as caught:
        decrypt_file(tmp_path / "enc", tmp_path / "out", wrong)

    assert caught.value.exit_code == ExitCode.BAD_INPUT
    message = str(caught.value)
    assert key.key_id in message and wrong.key_id in message
    assert "stapler" not in message and wrong.secret.hex() not in message
    assert not (tmp_path / "out").exists()
    assert _leftovers(tmp_path) == []


def test_same_passphrase_with_other_params_is_a_wrong_key(tmp_path: Path, key: Key) -> None:
    _plain(tmp_path / "plain", 10)
    encrypt_file(tmp_path / "plain", tmp_path / "enc", key, chunk_size=C)
    other = new_key_params(n=FAST).derive(PASSPHRASE)
    with pytest.raises(WrongKeyError):
        decrypt_file(tmp_path / "enc", tmp_path / "out", other)
    assert not (tmp_path / "out").exists()


# --- damage -------------------------------------------------------------------------------


def _flip(pos: int) -> Callable[[bytes], bytes]:
    def mutate(data: bytes) -> bytes:
        out = bytearray(data)
        out[pos] ^= 0x01
        return bytes(out)

    return mutate


def _chunk(data: bytes, i: int) -> bytes:
    return data[HEADER_SIZE + i * FRAME : HEADER_SIZE + (i + 1) * FRAME]


def _swap_0_1(data: bytes) -> bytes:
    return data[:HEADER_SIZE] + _chunk(data, 1) + _chunk(data, 0) + data[HEADER_SIZE + 2 * FRAME :]


def _rewrite_header(offset: int, value: bytes) -> Callable[[bytes], bytes]:
    """An attacker who also fixes the header's CRC: only the GCM tags can catch this."""

    def mutate(data: bytes) -> bytes:
        head = bytearray(data[: HEADER_SIZE - 4])
        head[offset : offset + len(value)] = value
        crc = zlib.crc32(head).to_bytes(4, "big")
        return bytes(head) + crc + data[HEADER_SIZE:]

    return mutate


# 3*C + 7 bytes: chunks 0, 1, 2 are full, chunk 3 holds 7 bytes and is the last.
DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "flipped byte in chunk 1": _flip(HEADER_SIZE + FRAME + 100),
    "flipped tag of the last chunk": lambda d: _flip(len(d) - 1)(d),
    "last chunk dropped": lambda d: d[: HEADER_SIZE + 3 * FRAME],
    "cut inside chunk 1": lambda d: d[: HEADER_SIZE + FRAME + FRAME // 2],
    "cut inside the last chunk's tag": lambda d: d[:-5],
    "cut right after the header": lambda d: d[:HEADER_SIZE],
    "cut inside the header": lambda d: d[:20],
    "cut inside the magic": lambda d: d[:3],
    "chunks 0 and 1 swapped": _swap_0_1,
    "chunk 1 repeated": lambda d: d[: HEADER_SIZE + 2 * FRAME] + d[HEADER_SIZE + FRAME :],
    "one garbage byte appended": lambda d: d + b"\x00",
    "a whole chunk appended": lambda d: d + _chunk(d, 1),
    "key id byte damaged": _flip(30),
    "salt rewritten with a valid CRC": _rewrite_header(13, b"\xff" * 4),
    "chunk size rewritten with a valid CRC": _rewrite_header(9, (C * 2).to_bytes(4, "big")),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_damaged_ciphertext_is_refused_and_nothing_is_written(
    tmp_path: Path, key: Key, damage: str
) -> None:
    _plain(tmp_path / "plain", 3 * C + 7)
    encrypt_file(tmp_path / "plain", tmp_path / "enc", key, chunk_size=C)
    good = (tmp_path / "enc").read_bytes()
    bad = DAMAGE[damage](good)
    assert bad != good
    (tmp_path / "enc").write_bytes(bad)

    with pytest.raises(EncryptedDataError) as caught:
        decrypt_file(tmp_path / "enc", tmp_path / "out", key)

    assert isinstance(caught.value, IntegrityError)
    assert "enc" in str(caught.value)
    assert not (tmp_path / "out").exists()
    assert _leftovers(tmp_path) == []


def test_dropping_the_empty_final_chunk_of_an_exact_multiple_is_caught(
    tmp_path: Path, key: Key
) -> None:
    _plain(tmp_path / "plain", 2 * C)
    encrypt_file(tmp_path / "plain", tmp_path / "enc", key, chunk_size=C)
    data = (tmp_path / "enc").read_bytes()
    (tmp_path / "enc").write_bytes(data[:-TAG_SIZE])

    with pytest.raises(EncryptedDataError, match="truncated"):
        decrypt_file(tmp_path / "enc", tmp_path / "out", key)
    assert not (tmp_path / "out").exists()


def test_failed_decrypt_leaves_an_existing_output_untouched(tmp_path: Path, key: Key) -> None:
    _plain(tmp_path / "plain", 2 * C + 1)
    encrypt_file(tmp_path / "plain", tmp_path / "enc", key, chunk_size=C)
    (tmp_path / "enc").write_bytes(_flip(HEADER_SIZE + 2 * FRAME)((tmp_path / "enc").read_bytes()))
    (tmp_path / "out").write_bytes(b"what was restored before")

    with pytest.raises(EncryptedDataError):
        decrypt_file(tmp_path / "enc", tmp_path / "out", key)
    assert (tmp_path / "out").read_bytes() == b"what was restored before"


def test_unexpected_plaintext_digest_is_refused(tmp_path: Path, key: Key) -> None:
    _plain(tmp_path / "plain", 100)
    encrypt_file(tmp_path / "plain", tmp_path / "enc", key, chunk_size=C)
    with pytest.raises(EncryptedDataError, match="SHA-256"):
        decrypt_file(tmp_path / "enc", tmp_path / "out", key, expect_sha256="0" * 64)
    assert not (tmp_path / "out").exists()


def test_files_that_are_not_encrypted(tmp_path: Path, key: Key) -> None:
    plain = tmp_path / "artifact.tar.zst"
    plain.write_bytes(b"\x28\xb5\x2f\xfd" + b"zstd frame" * 10)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    newer = tmp_path / "newer"
    newer.write_bytes(b"TKENC2\n" + bytes(100))

    assert not is_encrypted(plain)
    assert not is_encrypted(empty)
    assert not is_encrypted(tmp_path / "missing")
    assert not is_encrypted(tmp_path)
    assert is_encrypted(newer)

    for path in (plain, empty):
        with pytest.raises(EncryptedDataError, match="not an encrypted"):
            decrypt_file(path, tmp_path / "out", key)
    with pytest.raises(BadInputError, match="newer format") as caught:
        decrypt_file(newer, tmp_path / "out", key)
    assert not isinstance(caught.value, EncryptedDataError)
    assert not (tmp_path / "out").exists()


# --- keys ---------------------------------------------------------------------------------


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_key_never_shows_its_bytes(key: Key) -> None:
    shown = [repr(key), str(key), f"{key}", f"{key!r}", repr([key]), repr(KeyError(key))]
    secret_forms = [key.secret.hex(), repr(key.secret)[2:-1], base64.b64encode(key.secret).decode()]
    for text in shown:
        assert key.key_id in text
        for form in secret_forms:
            assert form not in text


def test_passphrase_gives_the_same_key_wherever_it_is_typed(params: KeyParams) -> None:
    composed = unicodedata.normalize("NFC", "Café crème 🔑")
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed

    a = params.derive(composed)
    b = derive_key(decomposed, params.salt, n=params.n, r=params.r, p=params.p)

    assert a == b and a.key_id == b.key_id
    assert len(a.key_id) == 16 and int(a.key_id, 16) >= 0
    assert params.derive("Cafe creme 🔑") != a


def test_key_params_survive_json_and_are_not_secret(params: KeyParams, key: Key) -> None:
    stored = json.dumps(params.to_dict())
    assert key.secret.hex() not in stored and PASSPHRASE not in stored

    again = KeyParams.from_dict(json.loads(stored))

    assert again == params
    assert again.derive(PASSPHRASE) == key


@pytest.mark.parametrize(
    "damaged",
    [
        {"n": 1024, "r": 8, "p": 1},
        {"salt": "not base64!", "n": 1024, "r": 8, "p": 1},
        {"salt": base64.b64encode(b"short").decode(), "n": 1024, "r": 8, "p": 1},
        {"salt": base64.b64encode(bytes(16)).decode(), "n": 1000, "r": 8, "p": 1},
        {"salt": base64.b64encode(bytes(16)).decode(), "n": "1024", "r": 8, "p": 1},
        {"salt": base64.b64encode(bytes(16)).decode(), "n": 2**24, "r": 8, "p": 1},
        {"kdf": "argon2id", "salt": base64.b64encode(bytes(16)).decode(), "n": 1024},
    ],
)
def test_damaged_key_params_are_refused_clearly(damaged: dict[str, object]) -> None:
    with pytest.raises(BadInputError):
        KeyParams.from_dict(damaged)


def test_empty_passphrase_is_refused(params: KeyParams) -> None:
    with pytest.raises(BadInputError, match="empty"):
        params.derive("")


# --- recovery kit -------------------------------------------------------------------------

FIXED = Key(bytes(range(32)))


def test_recovery_kit_round_trip(params: KeyParams, key: Key) -> None:
    created = datetime(2025, 3, 14, 9, 26, tzinfo=UTC)
    kit = recovery_kit(params, key, target="Google Drive (me@example.com)", created=created)

    assert key_from_recovery(kit) == key
    assert "Google Drive (me@example.com)" in kit
    assert "2025-03-14" in kit
    assert key.key_id in kit
    assert f"N={params.n}" in kit and params.to_dict()["salt"] in kit
    assert "Anyone holding this page can read your backups" in kit
    assert key.secret.hex() not in kit
    # a kit pasted with mangled spacing still reads
    assert key_from_recovery(kit.replace("    ", " ").replace("\n", "\r\n")) == key


def test_recovery_code_tolerates_spacing_case_and_lookalikes() -> None:
    code = recovery_code(FIXED)
    groups = code.split("-")
    assert len(groups) == 14 and all(len(g) == 4 for g in groups)
    assert "0" in code or "1" in code

    assert key_from_recovery(code) == FIXED
    assert key_from_recovery(code.lower().replace("-", " ")) == FIXED
    assert key_from_recovery(code.replace("-", "")) == FIXED
    assert key_from_recovery("\n".join(groups)) == FIXED
    lookalikes = code.replace("0", "o").replace("1", "l")
    assert key_from_recovery(lookalikes) == FIXED


def test_every_single_character_typo_is_caught() -> None:
    symbols = recovery_code(FIXED).replace("-", "")
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    for i, ch in enumerate(symbols):
        typo = alphabet[(alphabet.index(ch) + 1) % 32]
        with pytest.raises(BadInputError, match="mistyped") as caught:
            key_from_recovery(symbols[:i] + typo + symbols[i + 1 :])
        assert symbols[:8] not in str(caught.value)


def test_swapped_neighbours_and_wrong_lengths_are_caught() -> None:
    symbols = recovery_code(FIXED).replace("-", "")
    i = next(i for i in range(len(symbols) - 1) if symbols[i] != symbols[i + 1])
    swapped = symbols[:i] + symbols[i + 1] + symbols[i] + symbols[i + 2 :]
    with pytest.raises(BadInputError, match="mistyped"):
        key_from_recovery(swapped)
    with pytest.raises(BadInputError, match="55 characters"):
        key_from_recovery(symbols[:-1])
    with pytest.raises(BadInputError, match="57 characters"):
        key_from_recovery(symbols + "0")
    with pytest.raises(BadInputError, match="'U'"):
        key_from_recovery("U" + symbols[1:])
    with pytest.raises(BadInputError, match="empty"):
        key_from_recovery(" - ")


def test_recovered_key_decrypts_backups(tmp_path: Path, params: KeyParams, key: Key) -> None:
    data = _plain(tmp_path / "plain", C + 9)
    encrypt_file(tmp_path / "plain", tmp_path / "enc", key, chunk_size=C)
    kit = recovery_kit(params, key, target="t", created=datetime.now(UTC))

    decrypt_file(tmp_path / "enc", tmp_path / "out", key_from_recovery(kit))

    assert (tmp_path / "out").read_bytes() == data


# --- memory -------------------------------------------------------------------------------

_RSS_PROBE = textwrap.dedent(
    """
    import resource, sys
    from pathlib import Path
    from core.packing.crypto import Key, decrypt_file, encrypt_file

    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    work = Path(sys.argv[1])
    key = Key(bytes(32))
    (work / "small").write_bytes(b"x" * 5000)
    encrypt_file(work / "small", work / "small.enc", key)
    decrypt_file(work / "small.enc", work / "small.out", key)
    base = peak()
    encrypt_file(work / "big", work / "big.enc", key)
    decrypt_file(work / "big.enc", work / "big.out", key)
    print(peak() - base)
    """
)


def test_50_mib_round_trip_keeps_process_memory_flat(tmp_path: Path) -> None:
    piece = random.Random(5).randbytes(1 << 20)
    with open(tmp_path / "big", "wb") as fh:
        for _ in range(50):
            fh.write(piece)
    repo = Path(__file__).resolve().parents[1]

    done = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE, str(tmp_path)],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )

    growth = int(done.stdout)
    assert growth < 40 * 2**20, f"RSS grew {growth / 2**20:.0f} MiB for a 50 MiB round trip"
    assert (tmp_path / "big.out").stat().st_size == 50 << 20
