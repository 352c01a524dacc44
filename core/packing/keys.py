"""Encryption keys: from a passphrase (scrypt), with a public id that names them.

A backup may have to be decrypted years from now, on another machine, by a
person who only remembers the passphrase. So the key is a pure function of
things that can be written down: the passphrase, and `KeyParams` (salt and
scrypt cost), which are not secret and travel with the target's config and
every manifest.

- key    = scrypt(NFC-normalised UTF-8 passphrase, salt, N, r, p, length 32)
- key id = first 8 bytes of HMAC-SHA256(key, b"tierkeeper key id v1"), as 16 hex digits

The passphrase is NFC-normalised because the same word typed on macOS and on
Linux can arrive as different code points. The key id lets a restore say
"wrong passphrase" before decrypting anything, and tells apart files made with
different keys; it reveals no more than a ciphertext's own tags already do
(checking a guessed passphrase against it still costs one scrypt run).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from core.errors import BadInputError

__all__ = [
    "KEY_SIZE",
    "Key",
    "KeyParams",
    "WrongKeyError",
    "derive_key",
    "new_key_params",
]

KEY_SIZE = 32
"""AES-256."""

SALT_SIZE = 16
DEFAULT_N, DEFAULT_R, DEFAULT_P = 2**17, 8, 1
"""scrypt cost: 128 MiB and ~0.3 s per derivation, paid once per passphrase entry."""

_MAX_SCRYPT_MEMORY = 1 << 30
"""Params come from config and manifests: refuse ones that would take more than 1 GiB."""
_MAX_P = 16
_KEY_ID_LABEL = b"tierkeeper key id v1"
_KEY_ID_SIZE = 8


class WrongKeyError(BadInputError):
    """The passphrase (or recovery code) gives a different key from the one a file needs.

    Detected from the key id before any decryption, so it never produces output.
    """


def _key_id_for(secret: bytes) -> str:
    """The public name of a key (16 hex digits)."""
    mac = hmac.new(secret, _KEY_ID_LABEL, hashlib.sha256).digest()
    return mac[:_KEY_ID_SIZE].hex()


@dataclass(frozen=True, slots=True, repr=False)
class Key:
    """A 32-byte AES key and its public id; its repr shows only the id.

    Python cannot wipe immutable bytes, so "never shown" is what can be
    promised: not in repr or str, hence not in logs or error messages.
    """

    secret: bytes = field(repr=False)
    key_id: str = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.secret, bytes) or len(self.secret) != KEY_SIZE:
            raise ValueError(f"a key is {KEY_SIZE} bytes")
        object.__setattr__(self, "key_id", _key_id_for(self.secret))

    def __repr__(self) -> str:
        return f"Key(key_id={self.key_id!r})"


@dataclass(frozen=True, slots=True)
class KeyParams:
    """How a passphrase becomes a key: not secret, stored in config and manifests."""

    salt: bytes
    n: int = DEFAULT_N
    r: int = DEFAULT_R
    p: int = DEFAULT_P

    def __post_init__(self) -> None:
        _check_params(self.salt, self.n, self.r, self.p)

    def derive(self, passphrase: str) -> Key:
        return derive_key(passphrase, self.salt, n=self.n, r=self.r, p=self.p)

    def to_dict(self) -> dict[str, str | int]:
        """JSON-ready form; `kdf` names the function so a later one can be told apart."""
        return {
            "kdf": "scrypt",
            "salt": base64.b64encode(self.salt).decode("ascii"),
            "n": self.n,
            "r": self.r,
            "p": self.p,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> KeyParams:
        kdf = data.get("kdf", "scrypt")
        if kdf != "scrypt":
            raise BadInputError(
                f"The encryption settings use key derivation {kdf!r}, which this "
                "Tierkeeper does not know",
                hint="update Tierkeeper",
            )
        salt = data.get("salt")
        if not isinstance(salt, str):
            raise _damaged_params("the salt is missing")
        try:
            raw = base64.b64decode(salt, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _damaged_params("the salt is not base64") from exc
        return cls(
            salt=raw, n=_int_field(data, "n"), r=_int_field(data, "r"), p=_int_field(data, "p")
        )


def new_key_params(*, n: int = DEFAULT_N, r: int = DEFAULT_R, p: int = DEFAULT_P) -> KeyParams:
    """Fresh parameters (random salt) for a new passphrase."""
    return KeyParams(salt=os.urandom(SALT_SIZE), n=n, r=r, p=p)


def derive_key(
    passphrase: str, salt: bytes, *, n: int = DEFAULT_N, r: int = DEFAULT_R, p: int = DEFAULT_P
) -> Key:
    """scrypt a passphrase into a key (slow on purpose: it is what guessing costs)."""
    if not passphrase:
        raise BadInputError("The passphrase is empty", hint="enter the target's passphrase")
    _check_params(salt, n, r, p)
    secret = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    kdf = Scrypt(salt=salt, length=KEY_SIZE, n=n, r=r, p=p)
    return Key(kdf.derive(secret))


def _check_params(salt: bytes, n: int, r: int, p: int) -> None:
    if len(salt) < SALT_SIZE:
        raise _damaged_params(f"the salt has {len(salt)} bytes, at least {SALT_SIZE} are needed")
    if n < 2 or n & (n - 1):
        raise _damaged_params(f"scrypt N={n} is not a power of two")
    if r < 1 or not 1 <= p <= _MAX_P:
        raise _damaged_params(f"scrypt r={r}, p={p} are out of range")
    if 128 * n * r > _MAX_SCRYPT_MEMORY:
        raise _damaged_params(f"scrypt N={n}, r={r} would need more than 1 GiB of memory")


def _int_field(data: Mapping[str, object], name: str) -> int:
    value = data.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _damaged_params(f"scrypt {name} is missing or not a whole number")
    return value


def _damaged_params(detail: str) -> BadInputError:
    return BadInputError(
        f"The encryption settings are not usable: {detail}",
        hint="the config or manifest holding them is damaged; the recovery kit lists the "
        "original values",
    )
