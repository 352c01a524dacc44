"""OAuth state for the fake server: which access and refresh tokens are good.

Tests flip tokens to expired or revoked to drive the client's refresh path for real (the
client's own `Credentials.refresh` posts to `/token` here).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass

DRIVE_FILE_SCOPE = "https://www.googleapis.com/auth/drive.file"
PKCE_METHODS = frozenset({"S256", "plain"})
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


def s256(verifier: str) -> str:
    """RFC 7636 S256: base64url(sha256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class IssuedCode:
    scope: str
    redirect_uri: str
    code_challenge: str | None = None
    code_challenge_method: str | None = None

    def verifier_ok(self, verifier: str | None) -> bool:
        """No challenge at /auth: nothing to prove. Otherwise the verifier must match it."""
        if self.code_challenge is None:
            return True
        if verifier is None or not _VERIFIER.fullmatch(verifier):
            return False
        derived = s256(verifier) if self.code_challenge_method == "S256" else verifier
        return hmac.compare_digest(derived, self.code_challenge)


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
        self._codes: dict[str, IssuedCode] = {}
        self._deny_next = False
        self._withhold_next_refresh = False
        self.redeemed_pkce: list[str] = []
        """PKCE method of each code redeemed at /token ("S256", "plain" or "none")."""

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

    def revoke_all(self) -> None:
        """What a user does at myaccount.google.com/permissions: every grant ends."""
        with self._lock:
            for grant in self._refresh.values():
                grant.revoked = True
            self._access.clear()

    def revoke(self, refresh_token: str) -> None:
        with self._lock:
            grant = self._refresh.get(refresh_token)
            if grant is not None:
                grant.revoked = True

    def issue_code(
        self,
        scope: str,
        redirect_uri: str,
        *,
        code_challenge: str | None = None,
        code_challenge_method: str | None = None,
    ) -> str:
        code = "4/fake-" + secrets.token_urlsafe(16)
        method = (code_challenge_method or "plain") if code_challenge else None
        with self._lock:
            self._codes[code] = IssuedCode(scope, redirect_uri, code_challenge, method)
        return code

    def redeem_code(
        self, code: str, redirect_uri: str | None, code_verifier: str | None = None
    ) -> str | None:
        """Authorization codes are single-use (a failed attempt spends them too); returns
        the granted scope or None."""
        with self._lock:
            found = self._codes.pop(code, None)
        if found is None or (redirect_uri is not None and redirect_uri != found.redirect_uri):
            return None
        if not found.verifier_ok(code_verifier):
            return None
        with self._lock:
            self.redeemed_pkce.append(found.code_challenge_method or "none")
        return found.scope

    def deny_next_authorization(self) -> None:
        """The next consent screen is answered "Cancel": /auth redirects with access_denied."""
        with self._lock:
            self._deny_next = True

    def take_denial(self) -> bool:
        with self._lock:
            denied, self._deny_next = self._deny_next, False
            return denied

    def withhold_next_refresh_token(self) -> None:
        """The next code exchange answers without `refresh_token`, as Google does when the
        app already holds one and the consent was not forced."""
        with self._lock:
            self._withhold_next_refresh = True

    def take_withholding(self) -> bool:
        with self._lock:
            withheld, self._withhold_next_refresh = self._withhold_next_refresh, False
            return withheld

    def grant_for(self, refresh_token: str) -> RefreshGrant | None:
        with self._lock:
            grant = self._refresh.get(refresh_token)
            return None if grant is None or grant.revoked else grant

    def client_ok(self, client_id: str | None, client_secret: str | None) -> bool:
        return client_id == self.client_id and client_secret == self.client_secret
