"""The one place Tierkeeper keeps secrets (refresh tokens, keys): the OS keyring.

Config files and the DB are readable by anything running as the user and end up
in backups, so secrets live only in the desktop's keyring (Secret Service,
KWallet, macOS Keychain, Windows Credential Locker) through the `keyring`
package.

`keyring` quietly picks *something* when no real keyring is available: the
`fail` backend (every call raises a generic error) or, when `keyrings.alt` is
installed, an unencrypted file. Both are turned into a clear refusal here. The
file backends are accepted only when the user named one in
`PYTHON_KEYRING_BACKEND`, since then leaving tokens in a plain file is their
informed choice and not an accident of what happened to be installed.

The backend is resolved per instance on first use rather than at import, so
the environment at the time of use decides (and tests can switch it).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import keyring
import keyring.core
from keyring.backends import chainer, fail, null
from keyring.errors import KeyringError, KeyringLocked, PasswordDeleteError

from core.errors import ExitCode, TierkeeperError

log = logging.getLogger(__name__)

ENV_BACKEND = "PYTHON_KEYRING_BACKEND"
_INSECURE_PACKAGE = "keyrings.alt"
"""Home of the file/registry backends: its own README calls them possibly insecure."""

_SETUP_HINT = (
    "install and unlock a system keyring (GNOME Keyring or KWallet on Linux), or set "
    f"{ENV_BACKEND} to the keyring backend you want to use"
)


class SecretsError(TierkeeperError):
    """Base: the keyring cannot be used right now."""

    exit_code = ExitCode.NEEDS_USER


class NoKeyringError(SecretsError):
    """No usable keyring backend exists in this session."""


class InsecureKeyringError(SecretsError):
    """Only a plaintext-style backend is available and the user did not choose it."""


class KeyringLockedError(SecretsError):
    """The keyring exists but stayed locked (the unlock prompt was dismissed)."""


class KeyringFailedError(SecretsError):
    """The keyring backend itself failed (D-Bus error, unreadable file…)."""

    exit_code = ExitCode.FAILED


def _is_insecure(backend: Any) -> bool:
    return type(backend).__module__.startswith(_INSECURE_PACKAGE)


def _is_absent(backend: Any) -> bool:
    return isinstance(backend, (fail.Keyring, null.Keyring))


def _describe(backend: Any) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


class Secrets:
    def __init__(self, service: str = "tierkeeper") -> None:
        self.service = service
        self._backend: Any = None

    # --- public API -------------------------------------------------------------------

    def get(self, account: str) -> str | None:
        backend = self._resolve()
        try:
            value: str | None = backend.get_password(self.service, account)
        except (KeyringError, OSError) as exc:
            raise _backend_failure("read", account, exc) from exc
        return value

    def set(self, account: str, value: str) -> None:
        backend = self._resolve()
        try:
            backend.set_password(self.service, account, value)
        except (KeyringError, OSError) as exc:
            raise _backend_failure("store", account, exc) from exc
        log.debug("stored secret %r in %s", account, _describe(backend))

    def delete(self, account: str) -> None:
        """Forget a secret; forgetting one that is not there is not an error."""
        backend = self._resolve()
        try:
            backend.delete_password(self.service, account)
        except PasswordDeleteError as exc:
            # Backends use this one error both for "no such entry" and for real
            # failures; only a secret that is really gone counts as success.
            if self.get(account) is not None:
                raise _backend_failure("delete", account, exc) from exc
        except (KeyringError, OSError) as exc:
            raise _backend_failure("delete", account, exc) from exc
        log.debug("deleted secret %r", account)

    @property
    def backend_name(self) -> str:
        """What `get`/`set` talk to, for diagnostics (`tierkeeper doctor`, logs)."""
        return _describe(self._resolve())

    # --- backend choice ---------------------------------------------------------------

    def _resolve(self) -> Any:
        if self._backend is None:
            self._backend = self._choose()
        return self._backend

    def _choose(self) -> Any:
        chosen = os.environ.get(ENV_BACKEND)
        if chosen:
            try:
                backend = keyring.core.load_env()
            except (ImportError, AttributeError, ValueError, RuntimeError, TypeError) as exc:
                raise NoKeyringError(
                    f"{ENV_BACKEND}={chosen} names a keyring backend that cannot be used here "
                    f"({exc})",
                    hint=f"fix or unset {ENV_BACKEND}",
                ) from exc
            if _is_absent(backend):
                raise NoKeyringError(
                    f"{ENV_BACKEND}={chosen} disables the keyring, so Tierkeeper has nowhere "
                    "safe to keep its sign-in",
                    hint=_SETUP_HINT,
                )
            return backend  # the user's explicit choice, plaintext included

        try:
            backend = keyring.get_keyring()
        except (ImportError, AttributeError, ValueError, RuntimeError, TypeError) as exc:
            raise NoKeyringError(
                f"The keyring configuration names a backend that cannot be used here ({exc})",
                hint="fix the keyringrc.cfg file of the keyring package, or " + _SETUP_HINT,
            ) from exc
        if isinstance(backend, chainer.ChainerBackend):
            # The chainer writes to the first member that accepts, which may be a
            # plaintext file when the real keyring hiccups: use a secure member directly.
            members = [b for b in backend.backends if not _is_absent(b)]
            secure = [b for b in members if not _is_insecure(b)]
            if secure:
                return secure[0]
            if not members:
                raise _no_keyring()
            backend = members[0]
        if _is_absent(backend):
            raise _no_keyring()
        if _is_insecure(backend):
            raise InsecureKeyringError(
                "No system keyring is available; the only keyring found "
                f"({_describe(backend)}) stores secrets without real protection",
                hint=_SETUP_HINT
                + f" (e.g. {ENV_BACKEND}={_describe(backend)} to accept that file anyway)",
            )
        return backend


def _no_keyring() -> NoKeyringError:
    return NoKeyringError(
        "No system keyring is available to keep Tierkeeper's sign-in safe",
        hint=_SETUP_HINT,
    )


def _backend_failure(action: str, account: str, exc: Exception) -> SecretsError:
    if isinstance(exc, KeyringLocked):
        return KeyringLockedError(
            f"The system keyring is locked, so Tierkeeper could not {action} {account!r}",
            hint="unlock the keyring (GNOME Keyring / KWallet) when it asks, then try again",
        )
    return KeyringFailedError(
        f"The system keyring failed to {action} {account!r}: {type(exc).__name__}: {exc}",
        hint="check that the keyring service is running and unlocked, then try again",
    )
