"""OAuth state for the fake server: which access and refresh tokens are good.

Tests flip tokens to expired or revoked to drive the client's refresh path for real (the
client's own `Credentials.refresh` posts to `/token` here).
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass

DRIVE_FILE_SCOPE = "https://www.googleapis.com/auth/drive.file"


@dataclass
class RefreshGrant:
    client_id: str
    client_secret: str
    scope: str
    revoked: bool = False


class TokenBook:
    def __init__(self, *, client_id: str, client_secret: str) -> None:
        self._lock = threading.Lock()
        self.client_id = client_id
        self.client_secret = client_secret
        self._access: dict[str, str] = {}  # token -> scope
        self._refresh: dict[str, RefreshGrant] = {}
        self._codes: dict[str, tuple[str, str]] = {}  # code -> (scope, redirect_uri)

    def issue_access_token(self, scope: str = DRIVE_FILE_SCOPE) -> str:
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        with self._lock:
            self._access[token] = scope
        return token

    def issue_refresh_token(self, scope: str = DRIVE_FILE_SCOPE) -> str:
        token = "1//fake-" + secrets.token_urlsafe(24)
        with self._lock:
            self._refresh[token] = RefreshGrant(self.client_id, self.client_secret, scope)
        return token

    def is_valid(self, access_token: str) -> bool:
        with self._lock:
            return access_token in self._access

    def expire(self, access_token: str) -> None:
        with self._lock:
            self._access.pop(access_token, None)

    def expire_all(self) -> None:
        """Every access token now gets 401 — what a client sees an hour after it refreshed."""
        with self._lock:
            self._access.clear()

    def revoke(self, refresh_token: str) -> None:
        with self._lock:
            grant = self._refresh.get(refresh_token)
            if grant is not None:
                grant.revoked = True

    def issue_code(self, scope: str, redirect_uri: str) -> str:
        code = "4/fake-" + secrets.token_urlsafe(16)
        with self._lock:
            self._codes[code] = (scope, redirect_uri)
        return code

    def redeem_code(self, code: str, redirect_uri: str | None) -> str | None:
        """Authorization codes are single-use; returns the granted scope or None."""
        with self._lock:
            found = self._codes.pop(code, None)
        if found is None or (redirect_uri is not None and redirect_uri != found[1]):
            return None
        return found[0]

    def grant_for(self, refresh_token: str) -> RefreshGrant | None:
        with self._lock:
            grant = self._refresh.get(refresh_token)
            return None if grant is None or grant.revoked else grant

    def client_ok(self, client_id: str | None, client_secret: str | None) -> bool:
        return client_id == self.client_id and client_secret == self.client_secret
