"""A target's encryption key: made from a passphrase, kept in the OS keyring.

config.toml holds only the scrypt parameters and the key's id. The key is in
the keyring, stored as its recovery code, so what the keyring holds is exactly
what the printed recovery kit holds. On a new machine (or after the keyring
was wiped) `target unlock` asks for the passphrase or the recovery code and
checks it against the key id before keeping it: a wrong passphrase is refused
there, never discovered as garbage during a restore.
"""

from __future__ import annotations

from datetime import UTC, datetime

from core.config import EncryptionConfig, TargetConfig
from core.errors import ExitCode, TierkeeperError
from core.packing.crypto import (
    Key,
    KeyParams,
    WrongKeyError,
    key_from_recovery,
    new_key_params,
    recovery_code,
    recovery_kit,
)
from core.secrets import Secrets

KEY = "encryption-key"


class KeyMissingError(TierkeeperError):
    exit_code = ExitCode.NEEDS_USER


def _account(scope: str, target: str) -> str:
    return f"{scope}/{target}/{KEY}"


def _params(config: EncryptionConfig) -> KeyParams:
    return KeyParams.from_dict(config.model_dump())


def encrypt_target(
    target: TargetConfig, scope: str, passphrase: str, secrets: Secrets | None = None
) -> TargetConfig:
    """A fresh key from `passphrase`, kept in the keyring; returns the target to save."""
    params = new_key_params()
    key = params.derive(passphrase)
    (secrets or Secrets()).set(_account(scope, target.name), recovery_code(key))
    config = EncryptionConfig.model_validate({**params.to_dict(), "key_id": key.key_id})
    return target.model_copy(update={"encryption": config})


def unlock(
    target: TargetConfig, scope: str, passphrase_or_code: str, secrets: Secrets | None = None
) -> Key:
    """Checks a passphrase (or recovery code) against the target's key id and keeps the key."""
    config = target.encryption
    if config is None:
        raise WrongKeyError(f"{target.name} is not encrypted: there is nothing to unlock")
    candidates: list[Key] = []
    try:
        candidates.append(key_from_recovery(passphrase_or_code))
    except TierkeeperError:
        pass  # not a recovery code: a passphrase
    if not candidates or candidates[0].key_id != config.key_id:
        candidates = [_params(config).derive(passphrase_or_code)]
    key = candidates[0]
    if key.key_id != config.key_id:
        raise WrongKeyError(
            f"That passphrase does not open {target.name}'s backups",
            hint="check it (or use the recovery code from the kit) and try again",
        )
    (secrets or Secrets()).set(_account(scope, target.name), recovery_code(key))
    return key


def target_key(target: TargetConfig, scope: str, secrets: Secrets | None = None) -> Key | None:
    """The key for an encrypted target (None when it is not encrypted)."""
    config = target.encryption
    if config is None:
        return None
    code = (secrets or Secrets()).get(_account(scope, target.name))
    if code is None:
        raise KeyMissingError(
            f"The encryption key of {target.name} is not in this computer's keyring",
            hint=f"run `tierkeeper target unlock {target.name}` and give its passphrase "
            "or recovery code",
        )
    key = key_from_recovery(code)
    if key.key_id != config.key_id:
        raise KeyMissingError(
            f"The keyring holds a different key for {target.name} than its config names",
            hint=f"run `tierkeeper target unlock {target.name}`",
        )
    return key


def kit(target: TargetConfig, scope: str, secrets: Secrets | None = None) -> str:
    key = target_key(target, scope, secrets)
    if key is None or target.encryption is None:
        raise WrongKeyError(f"{target.name} is not encrypted: it has no recovery kit")
    return recovery_kit(_params(target.encryption), key, target=target.name,
                        created=datetime.now(UTC))  # fmt: skip
