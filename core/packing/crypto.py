"""Optional client-side encryption of Tier 2/3 artifacts: streaming, chunked AES-256-GCM.

Drive and S3 then hold only ciphertext. The file format is fixed here so that a
backup stays decryptable for years, by this code or by anyone reading this:

    offset  size  field
    0       7     magic b"TKENC1\\n"
    7       1     format version = 1
    8       1     algorithm = 1: AES-256-GCM, per-file key from HKDF-SHA256
    9       4     chunk size C (uint32 big-endian): plaintext bytes per full chunk
    13      16    file salt (random per file)
    29      8     key id (see core.packing.keys), raw bytes
    37      4     CRC-32 (zlib/PNG polynomial) of bytes 0..36, uint32 big-endian
    41            chunks

    file key  = HKDF-SHA256(ikm=key, salt=file salt,
                            info=b"tierkeeper TKENC1 AES-256-GCM file key", length=32)
    chunk i   = AES-256-GCM(file key, nonce=i as 12 bytes big-endian,
                            associated data = header (41 bytes) + i (8 bytes BE) + last (1 byte))
                stored as ciphertext followed by the 16-byte tag.

Every chunk but the last holds exactly C plaintext bytes (C + 16 stored); the
last holds 0 to C-1, so a reader needs no length fields and no look-ahead: a
full-sized chunk is never the last one, and a plaintext whose size is a
multiple of C (including an empty one) ends with an empty final chunk.

Why it is shaped this way:

- A fresh random salt gives every file its own AES key, so a plain counter is
  a safe nonce and no nonce is ever reused, however many files one passphrase
  encrypts (random 96-bit nonces under one key would put a ceiling on that).
- The associated data binds each chunk to this header, its position and
  whether it is the last: chunks reordered, dropped (the final one included),
  or appended from anywhere fail authentication. The last-chunk flag is what
  makes a cut at a chunk boundary detectable.
- The key id is checked before decrypting, so a wrong passphrase is reported
  as such and never yields garbage; the CRC keeps a damaged header from being
  mistaken for a wrong passphrase (it is a typo check, the GCM tags are the
  security).
- A new layout gets a new magic (TKENC2…): `is_encrypted` recognises the family.

Files are written and read in chunks (memory stays at a few chunks whatever
the size), digests of the stored bytes are taken in the same pass, and an
output appears only complete, and for decryption only if every chunk
authenticated.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.errors import BadInputError
from core.packing import IntegrityError
from core.packing.compress import atomic_output
from core.packing.keys import Key, KeyParams, WrongKeyError, derive_key, new_key_params
from core.packing.recovery import key_from_recovery, recovery_code, recovery_kit

__all__ = [
    "DEFAULT_CHUNK",
    "HEADER_SIZE",
    "MAGIC",
    "TAG_SIZE",
    "DecryptInfo",
    "EncryptInfo",
    "EncryptedDataError",
    "Key",
    "KeyParams",
    "WrongKeyError",
    "decrypt_file",
    "decrypt_stream",
    "derive_key",
    "encrypt_file",
    "encrypt_stream",
    "encrypted_key_id",
    "is_encrypted",
    "key_from_recovery",
    "new_key_params",
    "recovery_code",
    "recovery_kit",
]

MAGIC = b"TKENC1\n"
VERSION = 1
ALG_AES256GCM_HKDF = 1
DEFAULT_CHUNK = 1 << 20
MIN_CHUNK, MAX_CHUNK = 1 << 10, 1 << 26
"""A reader refuses chunk sizes beyond these, so a bad header cannot demand huge buffers."""
TAG_SIZE = 16
SALT_SIZE = 16
_FIELDS = struct.Struct(">7sBBI16s8s")
_CRC = struct.Struct(">I")
HEADER_SIZE = _FIELDS.size + _CRC.size  # 41
_AD_TAIL = struct.Struct(">QB")
_FILE_KEY_INFO = b"tierkeeper TKENC1 AES-256-GCM file key"
_OTHER_COPY = "the stored copy is damaged or was altered: restore it from another copy"


class EncryptedDataError(IntegrityError):
    """Ciphertext that does not authenticate: damaged, cut short, reordered or tampered with."""


class _Source(Protocol):
    def readinto(self, buffer: memoryview, /) -> int | None: ...


class _Sink(Protocol):
    def write(self, data: bytes, /) -> object: ...


@dataclass(frozen=True, slots=True)
class EncryptInfo:
    """The stored (encrypted) bytes: what the remote's own checksums must match."""

    size: int
    sha256: str
    md5: str
    plain_size: int


@dataclass(frozen=True, slots=True)
class DecryptInfo:
    """What decryption wrote: size and SHA-256 of the plaintext."""

    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class _Header:
    raw: bytes
    chunk_size: int
    salt: bytes
    key_id: str


# --- files --------------------------------------------------------------------------------


def encrypt_file(src: Path, dst: Path, key: Key, *, chunk_size: int = DEFAULT_CHUNK) -> EncryptInfo:
    """Encrypt `src` into `dst` (atomically), hashing the ciphertext in the same pass."""
    with open(src, "rb") as fh, atomic_output(dst) as out:
        plain_size = encrypt_stream(fh, out, key, chunk_size=chunk_size)
        info = EncryptInfo(size=out.size, sha256=out.sha256, md5=out.md5, plain_size=plain_size)
    return info


def decrypt_file(
    src: Path, dst: Path, key: Key, *, expect_sha256: str | None = None
) -> DecryptInfo:
    """Decrypt `src` into `dst`; `dst` appears only if every chunk (and the digest) checks out.

    A wrong key is refused before any output file is opened.
    """
    with open(src, "rb") as fh:
        header = _read_header(fh, key, src.name)
        with atomic_output(dst, md5=False) as out:
            _decrypt_chunks(fh, out, header, key, src.name)
            if expect_sha256 is not None and out.sha256 != expect_sha256.lower():
                raise EncryptedDataError(
                    f"{src.name} decrypts to data with SHA-256 {out.sha256}, but "
                    f"{expect_sha256.lower()} was recorded; {dst.name} was not written",
                    hint=_OTHER_COPY,
                )
            info = DecryptInfo(size=out.size, sha256=out.sha256)
    return info


def is_encrypted(path: Path) -> bool:
    """Whether `path` starts like an encrypted artifact (this format or a later one)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(MAGIC))
    except (FileNotFoundError, IsADirectoryError):
        return False
    return _looks_encrypted(head)


def encrypted_key_id(path: Path) -> str:
    """The id of the key an encrypted file needs (to name it, or to pick it from several)."""
    with open(path, "rb") as fh:
        data = _read_exactly(fh, HEADER_SIZE)
    return _parse_header(data, path.name).key_id


# --- streams ------------------------------------------------------------------------------


def encrypt_stream(src: _Source, dst: _Sink, key: Key, *, chunk_size: int = DEFAULT_CHUNK) -> int:
    """Encrypt everything `src` yields into `dst`; returns the plaintext size.

    Reads are gathered into whole chunks, so pipes and sockets give the same
    layout as files.
    """
    if not MIN_CHUNK <= chunk_size <= MAX_CHUNK:
        raise ValueError(f"chunk_size must be between {MIN_CHUNK} and {MAX_CHUNK}")
    salt = os.urandom(SALT_SIZE)
    fields = _FIELDS.pack(
        MAGIC, VERSION, ALG_AES256GCM_HKDF, chunk_size, salt, bytes.fromhex(key.key_id)
    )
    header = fields + _CRC.pack(zlib.crc32(fields))
    dst.write(header)
    aead = _file_cipher(key, salt)
    buf = bytearray(chunk_size)
    view = memoryview(buf)
    index = total = 0
    while True:
        n = _fill(src, view)
        last = n < chunk_size
        dst.write(aead.encrypt(_nonce(index), view[:n], header + _AD_TAIL.pack(index, last)))
        total += n
        if last:
            return total
        index += 1


def decrypt_stream(src: _Source, dst: _Sink, key: Key, *, name: str = "encrypted data") -> int:
    """Decrypt `src` into `dst`; returns the plaintext size.

    Chunks are written as each authenticates, so on an error `dst` holds a
    prefix that must be thrown away (`decrypt_file` does that for files).
    """
    header = _read_header(src, key, name)
    return _decrypt_chunks(src, dst, header, key, name)


# --- internals ----------------------------------------------------------------------------


def _read_header(src: _Source, key: Key, name: str) -> _Header:
    header = _parse_header(_read_exactly(src, HEADER_SIZE), name)
    if header.key_id != key.key_id:
        raise WrongKeyError(
            f"{name} was encrypted with key {header.key_id}, but the passphrase (or recovery "
            f"code) given is for key {key.key_id}",
            hint="enter the passphrase that was set for this target when the backup was made, "
            "or its recovery code",
        )
    return header


def _parse_header(data: bytes, name: str) -> _Header:
    if not data.startswith(MAGIC):
        if data and MAGIC.startswith(data):
            raise EncryptedDataError(
                f"{name} is truncated: it ends inside its encryption header", hint=_OTHER_COPY
            )
        if _looks_encrypted(data):
            raise BadInputError(
                f"{name} is encrypted in a newer format ({data[:6].decode('ascii')}) than "
                "this Tierkeeper reads",
                hint="update Tierkeeper",
            )
        raise EncryptedDataError(
            f"{name} is not an encrypted Tierkeeper artifact (no {MAGIC[:6].decode()} header)",
            hint=_OTHER_COPY,
        )
    if len(data) < HEADER_SIZE:
        raise EncryptedDataError(
            f"{name} is truncated: it ends inside its encryption header", hint=_OTHER_COPY
        )
    fields, (crc,) = data[: _FIELDS.size], _CRC.unpack(data[_FIELDS.size : HEADER_SIZE])
    if zlib.crc32(fields) != crc:
        raise EncryptedDataError(f"{name} has a damaged encryption header", hint=_OTHER_COPY)
    _, version, alg, chunk_size, salt, key_id = _FIELDS.unpack(fields)
    if version != VERSION or alg != ALG_AES256GCM_HKDF:
        raise BadInputError(
            f"{name} uses encryption format version {version}, algorithm {alg}, which this "
            "Tierkeeper does not read",
            hint="update Tierkeeper",
        )
    if not MIN_CHUNK <= chunk_size <= MAX_CHUNK:
        raise EncryptedDataError(
            f"{name} declares a chunk size of {chunk_size} bytes, outside what Tierkeeper writes",
            hint=_OTHER_COPY,
        )
    return _Header(raw=data[:HEADER_SIZE], chunk_size=chunk_size, salt=salt, key_id=key_id.hex())


def _decrypt_chunks(src: _Source, dst: _Sink, header: _Header, key: Key, name: str) -> int:
    aead = _file_cipher(key, header.salt)
    frame = header.chunk_size + TAG_SIZE
    buf = bytearray(frame)
    view = memoryview(buf)
    index = total = 0
    offset = HEADER_SIZE
    while True:
        n = _fill(src, view)
        last = n < frame
        if n < TAG_SIZE:
            raise EncryptedDataError(
                f"{name} is truncated: it ends "
                + (f"after chunk {index - 1} " if index else "right after its header ")
                + "without its final chunk",
                hint="the copy was cut short (interrupted transfer?): download or restore it again",
            )
        try:
            plain = aead.decrypt(_nonce(index), view[:n], header.raw + _AD_TAIL.pack(index, last))
        except InvalidTag:
            raise EncryptedDataError(
                f"{name} does not authenticate at chunk {index} (byte {offset}): it is damaged, "
                "cut short, or was altered",
                hint=_OTHER_COPY,
            ) from None
        dst.write(plain)
        total += len(plain)
        if last:
            return total
        index += 1
        offset += n


def _file_cipher(key: Key, salt: bytes) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_FILE_KEY_INFO)
    return AESGCM(hkdf.derive(key.secret))


def _nonce(index: int) -> bytes:
    return index.to_bytes(12, "big")


def _looks_encrypted(head: bytes) -> bool:
    return len(head) >= len(MAGIC) and head[:5] == b"TKENC" and head[6:7] == b"\n"


def _fill(src: _Source, view: memoryview) -> int:
    """Read until `view` is full or the source ends; short reads do not mean the end."""
    got = 0
    while got < len(view):
        n = src.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def _read_exactly(src: _Source, size: int) -> bytes:
    buf = bytearray(size)
    n = _fill(src, memoryview(buf))
    return bytes(buf[:n])
