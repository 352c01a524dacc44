"""The recovery kit: a paper copy of a target's key that a person can type back in.

A forgotten passphrase must not mean lost backups, and a sheet of paper outlives
any keyring. So the kit carries the raw key as a recovery code, built to be
read aloud and typed by hand:

- payload = 32-byte key + first 3 bytes of SHA-256(key)            (35 bytes)
- code    = payload as one 280-bit big-endian number in Crockford base32,
            most significant digit first: exactly 56 symbols from
            0123456789ABCDEFGHJKMNPQRSTVWXYZ, printed as 14 groups of 4.

Crockford's alphabet has no I, L, O or U, so on input I and L read as 1 and O as
0; case, spaces and dashes do not matter. The 24-bit checksum catches a typo
(all but one in 16 million), and the key id printed on the kit confirms the
result. The kit also states the scrypt parameters, so the passphrase route stays
documented alongside, and sketches the file format so that the page alone is
enough to rebuild a decrypter.

The kit and the code are secrets: nothing here logs them or puts them in errors.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

from core.errors import BadInputError
from core.packing.keys import KEY_SIZE, Key, KeyParams

__all__ = ["key_from_recovery", "recovery_code", "recovery_kit"]

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CHECK_SIZE = 3
_SYMBOLS = (KEY_SIZE + _CHECK_SIZE) * 8 // 5  # 56: 280 bits, no padding
_GROUP = 4
_GROUPS_PER_LINE = 7
_BEGIN = "-----BEGIN TIERKEEPER RECOVERY CODE-----"
_END = "-----END TIERKEEPER RECOVERY CODE-----"
_BLOCK = re.compile(
    r"-+\s*BEGIN TIERKEEPER RECOVERY CODE\s*-+(?P<code>.*?)(?:-+\s*END TIERKEEPER RECOVERY CODE|$)",
    re.IGNORECASE | re.DOTALL,
)
_DECODE = {ch: i for i, ch in enumerate(ALPHABET)} | {"O": 0, "I": 1, "L": 1}
_HINT = "check the code against the recovery kit and type it again"


def _checksum(secret: bytes) -> bytes:
    return hashlib.sha256(secret).digest()[:_CHECK_SIZE]


def recovery_code(key: Key) -> str:
    """The key as 14 dash-separated groups of 4 symbols (one line)."""
    number = int.from_bytes(key.secret + _checksum(key.secret), "big")
    symbols = "".join(ALPHABET[(number >> (5 * (_SYMBOLS - 1 - i))) & 31] for i in range(_SYMBOLS))
    return "-".join(symbols[i : i + _GROUP] for i in range(0, _SYMBOLS, _GROUP))


def key_from_recovery(text_or_code: str) -> Key:
    """Read a key back from a whole kit (pasted) or from the code typed alone."""
    block = _BLOCK.search(text_or_code)
    code = block.group("code") if block else text_or_code
    symbols = re.sub(r"[\s\-]+", "", code).upper()
    if not symbols:
        raise BadInputError("The recovery code is empty", hint="type the code from the kit")
    for position, ch in enumerate(symbols, 1):
        if ch not in _DECODE:
            raise BadInputError(
                f"Character {position} of the recovery code ({ch!r}) cannot appear in a "
                "recovery code",
                hint=_HINT,
            )
    if len(symbols) != _SYMBOLS:
        raise BadInputError(
            f"The recovery code has {len(symbols)} characters; a recovery code has "
            f"{_SYMBOLS} (14 groups of 4)",
            hint=_HINT,
        )
    number = 0
    for ch in symbols:
        number = number << 5 | _DECODE[ch]
    payload = number.to_bytes(KEY_SIZE + _CHECK_SIZE, "big")
    secret, check = payload[:KEY_SIZE], payload[KEY_SIZE:]
    if _checksum(secret) != check:
        raise BadInputError(
            "The recovery code does not check out: a character is mistyped or two are swapped",
            hint=_HINT,
        )
    return Key(secret)


def recovery_kit(params: KeyParams, key: Key, *, target: str, created: datetime) -> str:
    """A printable page holding the key, what it opens, and how to use it."""
    groups = recovery_code(key).split("-")
    per_line = _GROUPS_PER_LINE
    lines = ["-".join(groups[i : i + per_line]) for i in range(0, len(groups), per_line)]
    safe_target = "".join(ch if ch.isprintable() else "?" for ch in target)
    when = created.isoformat(sep=" ", timespec="minutes")
    code_block = "\n".join(f"    {line}" for line in lines)
    salt = params.to_dict()["salt"]
    return f"""\
TIERKEEPER RECOVERY KIT
=======================

This page unlocks the encrypted backups of one Tierkeeper storage target.
If the passphrase is forgotten, the recovery code below still opens every
backup made with this key.

  * Keep it on paper, somewhere safe (not next to the computer, not in the
    backups it protects).
  * Anyone holding this page can read your backups. Without it or the
    passphrase, nobody can - not even you.

Target:   {safe_target}
Created:  {when}
Key ID:   {key.key_id}

Recovery code:

    {_BEGIN}
{code_block}
    {_END}

To use it, enter the code when Tierkeeper asks for this target's passphrase
or key. Case, spaces and dashes do not matter; O reads as 0, I and L as 1.
Tierkeeper then shows the key ID: it must be {key.key_id}.

Technical details (enough to decrypt without Tierkeeper):
  Passphrase -> key: scrypt, N={params.n}, r={params.r}, p={params.p}, 32-byte output,
    salt (base64) {salt}, of the passphrase as NFC-normalised UTF-8.
  Recovery code: 56 Crockford base32 digits (0-9 A-Z without I L O U) of one
    big-endian number: the 32-byte key followed by the first 3 bytes of its
    SHA-256.
  Key ID: first 8 bytes of HMAC-SHA256(key, "tierkeeper key id v1"), in hex.
  Files start with "TKENC1\\n": version 1, algorithm 1 (AES-256-GCM), chunk size
    (uint32 BE), 16-byte salt, 8-byte key id, CRC-32 of the preceding 37 bytes.
    File key = HKDF-SHA256(key, salt, info "tierkeeper TKENC1 AES-256-GCM file key").
    Then chunks of chunk size + 16 bytes, the last one shorter; chunk i has nonce
    i (12 bytes BE) and associated data = the 41 header bytes + i (8 bytes BE)
    + 1 byte (1 for the last chunk, else 0).
"""
