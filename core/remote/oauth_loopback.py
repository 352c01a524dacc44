"""Google sign-in for a desktop app: the browser hands the code back to a loopback server.

This is the flow Google prescribes for installed apps (RFC 8252): a one-off HTTP
server on 127.0.0.1 with an ephemeral port is the redirect URI, and PKCE (RFC
7636) binds the code to this process, because an installed app's client secret
is not secret. `state` ties the answer to the request we started, so a page
that merely knows the port cannot feed us a code of its choosing.

The code is exchanged inside this process before the browser's tab gets its
answer, so the page can tell the truth ("signed in" or what went wrong) rather
than a hopeful "done".

The tokens are returned, never logged; storing the refresh token is the
caller's job (see `core.secrets`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import html
import json
import logging
import secrets
import socket
import threading
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:  # aiohttp and google-auth load when used, not with every service start
    from aiohttp import web
    from google.oauth2.credentials import Credentials

from core.errors import ExitCode, TierkeeperError

log = logging.getLogger(__name__)

GOOGLE_AUTH_URI = "https://accounts.google.com/o/oauth2/auth"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
DRIVE_FILE_SCOPE = "https://www.googleapis.com/auth/drive.file"

PERMISSIONS_URL = "https://myaccount.google.com/permissions"
_EXCHANGE_TIMEOUT = 30.0


@dataclass(frozen=True)
class OAuthClient:
    client_id: str
    client_secret: str | None = field(repr=False)
    auth_uri: str
    token_uri: str
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_in: int | None
    scope: str

    def __repr__(self) -> str:
        # Tracebacks, logs and debuggers print reprs; the values must never show up there.
        return (
            f"Tokens(access_token=<hidden>, refresh_token=<hidden>, "
            f"expires_in={self.expires_in!r}, scope={self.scope!r})"
        )

    __str__ = __repr__


class SignInError(TierkeeperError):
    """Sign-in did not finish; the user has to try again (or fix what the hint says)."""

    exit_code = ExitCode.NEEDS_USER


class SignInCancelled(SignInError):
    pass


class SignInTimeout(SignInError):
    pass


class SignInNetworkError(SignInError):
    exit_code = ExitCode.FAILED


def drive_credentials(client: OAuthClient, refresh_token: str) -> Credentials:
    """Credentials with no access token yet: the first request refreshes at `token_uri`."""
    from google.oauth2.credentials import Credentials

    return Credentials(  # type: ignore[no-untyped-call]
        token=None,
        refresh_token=refresh_token,
        token_uri=client.token_uri,
        client_id=client.client_id,
        client_secret=client.client_secret,
        scopes=list(client.scopes),
    )


async def sign_in(
    client: OAuthClient,
    *,
    on_url: Callable[[str], None],
    open_browser: bool = True,
    timeout: float = 300.0,  # noqa: ASYNC109 — the user's time in the browser, not an I/O bound
) -> Tokens:
    """Run the consent flow once and return fresh tokens (with a refresh token).

    `on_url` always gets the address, because the browser may not open (no desktop,
    `--no-browser`, a remote shell): printing it keeps the flow usable.
    """
    from aiohttp import web

    verifier = _code_verifier()
    loopback = _Loopback(state=secrets.token_urlsafe(32))
    runner = web.AppRunner(
        loopback.app(), handle_signals=False, access_log=None, shutdown_timeout=2.0
    )
    await runner.setup()
    try:
        sock = _listen()
        redirect_uri = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        try:
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            raise
        url = _authorization_url(client, redirect_uri, loopback.state, _challenge(verifier))
        on_url(url)
        if open_browser:
            _open_in_background(url)
        try:
            code = await asyncio.wait_for(loopback.redirect, timeout)
        except TimeoutError:
            raise SignInTimeout(
                f"No answer came back from the browser within {_duration(timeout)}",
                hint="sign in again; if no browser opened, open the printed address yourself",
            ) from None
        try:
            tokens = await _exchange(client, code, redirect_uri, verifier)
        except SignInError as exc:
            loopback.finish(exc.message)
            raise
        loopback.finish(None)
        log.info("signed in to %s with scope %s", client.auth_uri, tokens.scope)
        return tokens
    finally:
        loopback.finish("Sign-in stopped before it finished.")
        await runner.cleanup()


# --- the loopback server ----------------------------------------------------------------


class _Loopback:
    """Receives exactly one answer from the browser, then only says the flow is over."""

    def __init__(self, *, state: str) -> None:
        self.state = state
        loop = asyncio.get_running_loop()
        self.redirect: asyncio.Future[str] = loop.create_future()
        self._outcome: asyncio.Future[str | None] = loop.create_future()

    def app(self) -> web.Application:
        from aiohttp import web

        app = web.Application()
        app.router.add_get("/", self._handle)
        return app

    def finish(self, failure: str | None) -> None:
        """Tell the waiting browser tab how the exchange went (None: it worked)."""
        if not self._outcome.done():
            self._outcome.set_result(failure)

    async def _handle(self, request: web.Request) -> web.Response:
        if self.redirect.done():
            return _page("This sign-in is already over. You can close this tab.", status=410)
        query = request.query
        if "code" not in query and "error" not in query:
            return _page("This address only receives Google's answer to a sign-in.", status=400)
        given = query.get("state", "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, self.state.encode()):
            self.redirect.set_exception(
                SignInError(
                    "The browser's answer did not belong to the sign-in Tierkeeper started "
                    "(state mismatch)",
                    hint="sign in again, and use only the newest sign-in link",
                )
            )
            return _page(
                "Sign-in failed: this answer does not belong to the sign-in Tierkeeper "
                "started. Close this tab and sign in again from Tierkeeper.",
                status=400,
            )
        if "error" in query:
            error = query["error"]
            self.redirect.set_exception(_authorization_error(error))
            if error == "access_denied":
                return _page("Sign-in was cancelled. You can close this tab.", status=200)
            return _page(
                f"Google refused the sign-in ({error}). Close this tab and try again "
                "from Tierkeeper.",
                status=400,
            )
        self.redirect.set_result(query["code"])
        failure = await asyncio.shield(self._outcome)
        if failure is None:
            return _page("Signed in to Tierkeeper — you can close this tab.", status=200)
        return _page(f"Sign-in failed: {failure} Close this tab and try again.", status=400)


def _listen() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
    except OSError:
        sock.close()
        raise
    return sock


def _page(message: str, *, status: int) -> web.Response:
    from aiohttp import web

    text = html.escape(message)
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Tierkeeper</title></head>"
        f"<body style='font-family:sans-serif;margin:3em'><p>{text}</p></body></html>"
    )
    # A page that may follow a code must not be cached or leak the URL onward.
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    return web.Response(text=body, status=status, content_type="text/html", headers=headers)


def _authorization_error(error: str) -> SignInError:
    if error == "access_denied":
        return SignInCancelled(
            "Sign-in was cancelled in the browser",
            hint="sign in again and choose Allow to let Tierkeeper use Google Drive",
        )
    return SignInError(
        f"Google refused the sign-in ({error})",
        hint="sign in again; if it keeps failing, check the OAuth client settings",
    )


# --- URLs, PKCE, browser ----------------------------------------------------------------


def _code_verifier() -> str:
    """RFC 7636: 43–128 characters from the unreserved set; 64 random bytes give 86."""
    return secrets.token_urlsafe(64)


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _authorization_url(client: OAuthClient, redirect_uri: str, state: str, challenge: str) -> str:
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(client.scopes),
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        # Without both, Google returns a refresh token only on the very first consent.
        "access_type": "offline",
        "prompt": "consent",
    }
    sep = "&" if "?" in client.auth_uri else "?"
    return client.auth_uri + sep + urlencode(params)


def _open_in_background(url: str) -> None:
    """A daemon thread: some `webbrowser` launchers block until the browser exits."""

    def run() -> None:
        try:
            opened = webbrowser.open(url)
        except Exception as exc:  # the URL was already shown to the user
            log.info("could not open a browser (%s); the sign-in address was printed", exc)
            return
        if not opened:
            log.info("no browser could be opened; the sign-in address was printed")

    threading.Thread(target=run, name="tierkeeper-open-browser", daemon=True).start()


def _duration(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds:g} seconds"


# --- token exchange ---------------------------------------------------------------------


async def _exchange(client: OAuthClient, code: str, redirect_uri: str, verifier: str) -> Tokens:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": client.client_id,
        "code_verifier": verifier,
    }
    if client.client_secret is not None:
        form["client_secret"] = client.client_secret
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=_EXCHANGE_TIMEOUT)
    try:
        # trust_env: honour HTTPS_PROXY/NO_PROXY like the Drive client (httplib2) does.
        async with (
            aiohttp.ClientSession(timeout=timeout, trust_env=True) as session,
            session.post(
                client.token_uri, data=form, headers={"Accept": "application/json"}
            ) as response,
        ):
            status = response.status
            body = await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise SignInNetworkError(
            f"Could not reach Google to finish sign-in ({type(exc).__name__})",
            hint="check the network connection and sign in again",
        ) from None
    data = _json_object(body)
    if status != 200 or "access_token" not in data:
        raise _token_error(status, data)
    refresh = data.get("refresh_token")
    if not isinstance(refresh, str) or not refresh:
        raise SignInError(
            "Google signed you in but gave Tierkeeper no refresh token, so it could not "
            "stay signed in",
            hint=f"remove Tierkeeper's access at {PERMISSIONS_URL}, then sign in again",
        )
    return Tokens(
        access_token=str(data["access_token"]),
        refresh_token=refresh,
        expires_in=_seconds(data.get("expires_in")),
        scope=str(data.get("scope") or " ".join(client.scopes)),
    )


def _seconds(value: object) -> int | None:
    try:
        return int(value) if isinstance(value, (int, float, str)) else None
    except ValueError:
        return None


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _token_error(status: int, data: dict[str, Any]) -> SignInError:
    """Only the OAuth error code is reported: the body is never echoed into messages."""
    error = data.get("error")
    error = error if isinstance(error, str) else None
    if error == "invalid_grant":
        return SignInError(
            "Google did not accept the sign-in code (invalid_grant)",
            hint="sign in again and finish within a few minutes; "
            "check that the computer's clock is right",
        )
    if error == "invalid_client":
        return SignInError(
            "Google does not recognise Tierkeeper's OAuth client (invalid_client)",
            hint="the client id or secret is wrong or was deleted; check the OAuth client settings",
        )
    what = error or f"HTTP {status}"
    return SignInError(
        f"Google's token endpoint refused the sign-in ({what})",
        hint="sign in again; if it keeps failing, check the OAuth client settings",
    )
