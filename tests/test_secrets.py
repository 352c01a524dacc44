"""Secrets go to a real keyring backend, and never silently to an unprotected one.

The happy path uses the `keyrings.alt` plaintext file backend, chosen explicitly
through `PYTHON_KEYRING_BACKEND` (the only way the product accepts it) with its
file in tmp_path. A locked keyring cannot be produced without a desktop session,
so that one fault is a tiny backend that raises what the Secret Service raises.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keyring
import keyring.core
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail, null
from keyring.compat import properties
from keyring.errors import InitError, KeyringLocked
from keyrings.alt.file import PlaintextKeyring

from core.errors import ExitCode, TierkeeperError
from core.secrets import (
    ENV_BACKEND,
    InsecureKeyringError,
    KeyringFailedError,
    KeyringLockedError,
    NoKeyringError,
    Secrets,
)

PLAINTEXT = "keyrings.alt.file.PlaintextKeyring"
TOKEN = "1//refresh-token-value-that-must-stay-secret"


@pytest.fixture
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """keyrings.alt puts its file under $XDG_DATA_HOME/python_keyring."""
    home = tmp_path / "data"
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    return home


@pytest.fixture
def plaintext(data_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(ENV_BACKEND, PLAINTEXT)
    return data_home / "python_keyring" / "keyring_pass.cfg"


@pytest.fixture
def global_keyring(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any], None]:
    """No env choice; the process-wide backend is whatever the test sets (restored after)."""
    monkeypatch.delenv(ENV_BACKEND, raising=False)
    monkeypatch.setattr(keyring.core, "_keyring_backend", None)
    return keyring.set_keyring


class _FaultyKeyring(KeyringBackend):
    """Raises what a real backend raises when it is locked or its D-Bus link fails."""

    error: Exception = KeyringLocked("Failed to unlock the collection!")

    @properties.classproperty
    def priority(cls) -> float:
        raise RuntimeError("test backend: never picked by autodetection")

    def get_password(self, service: str, username: str) -> str | None:
        raise self.error

    def set_password(self, service: str, username: str, password: str) -> None:
        raise self.error

    def delete_password(self, service: str, username: str) -> None:
        raise self.error


def test_a_secret_survives_a_new_instance_and_can_be_deleted(plaintext: Path) -> None:
    Secrets().set("drive:alice", TOKEN)

    again = Secrets()
    assert again.get("drive:alice") == TOKEN
    assert plaintext.exists()  # in tmp_path, never in the real home

    again.delete("drive:alice")
    assert Secrets().get("drive:alice") is None


def test_missing_secrets_read_as_none_and_delete_quietly(plaintext: Path) -> None:
    secrets = Secrets()
    assert secrets.get("never-stored") is None
    secrets.delete("never-stored")


def test_services_do_not_see_each_other(plaintext: Path) -> None:
    Secrets("tierkeeper").set("drive", TOKEN)
    other = Secrets("tierkeeper-dev")
    assert other.get("drive") is None
    other.set("drive", "other-value")
    assert Secrets("tierkeeper").get("drive") == TOKEN


def test_values_never_reach_the_log(plaintext: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = Secrets()
    secrets.set("drive:alice", TOKEN)
    secrets.get("drive:alice")
    secrets.delete("drive:alice")
    assert TOKEN not in caplog.text


def test_no_keyring_at_all_is_refused_with_a_way_out(
    global_keyring: Callable[[Any], None],
) -> None:
    global_keyring(fail.Keyring())
    with pytest.raises(NoKeyringError) as caught:
        Secrets().set("drive:alice", TOKEN)
    err = caught.value
    assert isinstance(err, TierkeeperError)
    assert err.exit_code == ExitCode.NEEDS_USER
    assert err.hint is not None
    assert "GNOME Keyring" in err.hint and ENV_BACKEND in err.hint


def test_an_implicit_plaintext_keyring_is_refused_and_nothing_is_written(
    global_keyring: Callable[[Any], None], data_home: Path
) -> None:
    global_keyring(PlaintextKeyring())
    secrets = Secrets()
    with pytest.raises(InsecureKeyringError) as caught:
        secrets.set("drive:alice", TOKEN)
    with pytest.raises(InsecureKeyringError):
        secrets.get("drive:alice")
    assert caught.value.hint is not None and f"{ENV_BACKEND}={PLAINTEXT}" in caught.value.hint
    assert not data_home.exists()


def test_the_same_plaintext_keyring_is_accepted_when_named_in_the_environment(
    global_keyring: Callable[[Any], None], data_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    global_keyring(fail.Keyring())  # the environment variable wins over the global choice
    monkeypatch.setenv(ENV_BACKEND, PLAINTEXT)
    secrets = Secrets()
    secrets.set("drive:alice", TOKEN)
    assert secrets.get("drive:alice") == TOKEN
    assert secrets.backend_name == PLAINTEXT


def test_a_disabled_keyring_is_refused_even_when_chosen(
    global_keyring: Callable[[Any], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The null backend would accept a token and forget it: sign-in would not stick."""
    monkeypatch.setenv(ENV_BACKEND, "keyring.backends.null.Keyring")
    with pytest.raises(NoKeyringError):
        Secrets().set("drive:alice", TOKEN)
    global_keyring(null.Keyring())
    monkeypatch.delenv(ENV_BACKEND)
    with pytest.raises(NoKeyringError):
        Secrets().get("drive:alice")


def test_an_unusable_backend_name_says_which_variable_to_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV_BACKEND, "keyrings.nonexistent.Keyring")
    with pytest.raises(NoKeyringError) as caught:
        Secrets().get("drive:alice")
    assert ENV_BACKEND in str(caught.value)


def test_a_locked_keyring_becomes_a_clear_error_without_the_value(
    global_keyring: Callable[[Any], None],
) -> None:
    global_keyring(_FaultyKeyring())
    secrets = Secrets()
    with pytest.raises(KeyringLockedError) as caught:
        secrets.set("drive:alice", TOKEN)
    assert "locked" in caught.value.message and "unlock" in (caught.value.hint or "")
    assert TOKEN not in str(caught.value)
    with pytest.raises(KeyringLockedError):
        secrets.get("drive:alice")


def test_a_failing_keyring_service_becomes_a_clear_error(
    global_keyring: Callable[[Any], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    faulty = _FaultyKeyring()
    monkeypatch.setattr(faulty, "error", InitError("Failed to create the collection"))
    global_keyring(faulty)
    with pytest.raises(KeyringFailedError) as caught:
        Secrets().delete("drive:alice")
    assert caught.value.exit_code == ExitCode.FAILED
    assert "Failed to create the collection" in caught.value.message
