"""The installed-app sign-in, end to end over real sockets.

The fake Drive plays Google's consent screen (`/auth`, which answers at once with a
redirect) and token endpoint (`/token`, which enforces PKCE). The "browser" is a thread
that fetches the sign-in address with urllib and follows the redirect to the loopback
server that `sign_in` runs.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable

import pytest
from google.oauth2.credentials import Credentials

from core.remote.oauth_loopback import (
    DRIVE_FILE_SCOPE,
    OAuthClient,
    SignInCancelled,
    SignInError,
    SignInTimeout,
    Tokens,
    drive_credentials,
    sign_in,
)
from tests.drive_server.auth import s256
from tests.drive_server.fixture import DriveHarness, drive_fixture

drive = drive_fixture()


def oauth_client(drive: DriveHarness, *, secret: str | None = None) -> OAuthClient:
    return OAuthClient(
        client_id=drive.server.client_id,
        client_secret=drive.server.client_secret if secret is None else secret,
        auth_uri=drive.server.auth_uri,
        token_uri=drive.server.token_uri,
        scopes=(DRIVE_FILE_SCOPE,),
    )


class Browser:
    """Opens the address it is given in a thread, like a user's browser tab would."""

    def __init__(self, rewrite: Callable[[str], str] | None = None) -> None:
        self._rewrite = rewrite
        self._thread: threading.Thread | None = None
        self.url = ""
        self.status: int | None = None
        self.page = ""

    def __call__(self, url: str) -> None:
        self.url = url
        target = self._rewrite(url) if self._rewrite else url
        self._thread = threading.Thread(target=self._visit, args=(target,), daemon=True)
        self._thread.start()

    def _visit(self, url: str) -> None:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(url, timeout=10) as answer:
                self.status, self.page = answer.status, answer.read().decode()
        except urllib.error.HTTPError as err:
            with err:
                self.status, self.page = err.code, err.read().decode()

    def finish(self) -> None:
        assert self._thread is not None, "the browser was never opened"
        self._thread.join(timeout=10)

    @property
    def params(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.url).query))

    @property
    def port(self) -> int:
        port = urllib.parse.urlsplit(self.params["redirect_uri"]).port
        assert port is not None
        return port


def port_is_closed(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


async def test_sign_in_yields_tokens_that_work_and_keep_working(
    drive: DriveHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = oauth_client(drive)
    browser = Browser()

    tokens = await sign_in(client, on_url=browser, open_browser=False, timeout=20)
    browser.finish()

    assert browser.status == 200 and "you can close this tab" in browser.page
    params = browser.params
    assert params["redirect_uri"].startswith("http://127.0.0.1:")
    assert params["access_type"] == "offline" and params["prompt"] == "consent"
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) >= 43
    assert drive.server.tokens.redeemed_pkce == ["S256"]  # the verifier matched the challenge
    assert tokens.scope == DRIVE_FILE_SCOPE and tokens.expires_in == 3600

    fresh = Credentials(token=tokens.access_token)  # type: ignore[no-untyped-call]
    assert drive.service(fresh).files().list().execute()["files"] == []

    service = drive.service(drive_credentials(client, tokens.refresh_token))
    service.files().create(body={"name": "a.jsonl"}).execute()
    drive.server.tokens.expire_all()
    listed = service.files().list().execute()["files"]
    assert [f["name"] for f in listed] == ["a.jsonl"]
    assert drive.traffic.count("token") == 3  # the exchange, the first refresh, one after expiry

    assert port_is_closed(browser.port)
    for secret in (tokens.access_token, tokens.refresh_token):
        assert secret not in caplog.text
        assert secret not in repr(tokens) and secret not in str(tokens)
    assert client.client_secret is not None and client.client_secret not in repr(client)


def test_tokens_repr_hides_the_values() -> None:
    tokens = Tokens("ya29.visible?", "1//visible?", 3600, DRIVE_FILE_SCOPE)
    assert "visible" not in repr(tokens) and "visible" not in f"{tokens}"
    assert DRIVE_FILE_SCOPE in repr(tokens)


def test_the_token_endpoint_refuses_a_wrong_or_missing_verifier(drive: DriveHarness) -> None:
    verifier = "v" * 43
    redirect = "http://127.0.0.1:1/"
    conn = http.client.HTTPConnection("127.0.0.1", drive.server.port, timeout=5)

    def code() -> str:
        query = urllib.parse.urlencode(
            {
                "client_id": drive.server.client_id,
                "redirect_uri": redirect,
                "response_type": "code",
                "scope": DRIVE_FILE_SCOPE,
                "code_challenge": s256(verifier),
                "code_challenge_method": "S256",
            }
        )
        conn.request("GET", f"/auth?{query}")
        answer = conn.getresponse()
        answer.read()
        location = answer.getheader("Location") or ""
        return urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["code"][0]

    def exchange(code: str, verifier: str | None) -> tuple[int, dict[str, str]]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect,
            "client_id": drive.server.client_id,
            "client_secret": drive.server.client_secret,
        }
        if verifier is not None:
            form["code_verifier"] = verifier
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        conn.request("POST", "/token", body=urllib.parse.urlencode(form), headers=headers)
        answer = conn.getresponse()
        return answer.status, json.loads(answer.read())

    try:
        status, body = exchange(code(), "w" * 43)
        assert (status, body["error"]) == (400, "invalid_grant")
        status, body = exchange(code(), None)
        assert (status, body["error"]) == (400, "invalid_grant")
        status, body = exchange(code(), verifier)
        assert status == 200 and "refresh_token" in body
    finally:
        conn.close()
    assert drive.server.tokens.redeemed_pkce == ["S256"]


async def test_an_answer_with_the_wrong_state_is_refused(drive: DriveHarness) -> None:
    def forge(url: str) -> str:
        redirect = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))["redirect_uri"]
        return redirect + "?" + urllib.parse.urlencode({"code": "4/forged", "state": "not-it"})

    browser = Browser(rewrite=forge)
    with pytest.raises(SignInError, match="state"):
        await sign_in(oauth_client(drive), on_url=browser, open_browser=False, timeout=20)
    browser.finish()

    assert browser.status == 400 and "does not belong" in browser.page
    assert drive.traffic.count("token") == 0  # the forged code was never exchanged
    assert port_is_closed(browser.port)


async def test_cancel_in_the_browser_is_a_clear_error(drive: DriveHarness) -> None:
    drive.server.tokens.deny_next_authorization()
    browser = Browser()
    with pytest.raises(SignInCancelled) as caught:
        await sign_in(oauth_client(drive), on_url=browser, open_browser=False, timeout=20)
    browser.finish()

    assert str(caught.value).startswith("Sign-in was cancelled in the browser")
    assert "cancelled" in browser.page
    assert drive.traffic.count("token") == 0


async def test_no_refresh_token_tells_the_user_how_to_get_one(drive: DriveHarness) -> None:
    drive.server.tokens.withhold_next_refresh_token()
    browser = Browser()
    with pytest.raises(SignInError) as caught:
        await sign_in(oauth_client(drive), on_url=browser, open_browser=False, timeout=20)
    browser.finish()

    assert "refresh token" in caught.value.message
    assert "myaccount.google.com/permissions" in (caught.value.hint or "")
    assert browser.status == 400 and "Sign-in failed" in browser.page


async def test_a_rejected_client_is_a_clear_error_and_the_page_says_so(
    drive: DriveHarness,
) -> None:
    browser = Browser()
    client = oauth_client(drive, secret="not-the-secret")
    with pytest.raises(SignInError, match="invalid_client") as caught:
        await sign_in(client, on_url=browser, open_browser=False, timeout=20)
    browser.finish()

    assert "not-the-secret" not in str(caught.value)
    assert browser.status == 400 and "Sign-in failed" in browser.page


async def test_no_answer_from_the_browser_times_out_and_closes_the_port(
    drive: DriveHarness,
) -> None:
    urls: list[str] = []
    with pytest.raises(SignInTimeout, match="No answer came back"):
        await sign_in(oauth_client(drive), on_url=urls.append, open_browser=False, timeout=0.2)

    browser = Browser()
    browser.url = urls[0]
    assert port_is_closed(browser.port)


async def test_cancelling_sign_in_closes_the_port(drive: DriveHarness) -> None:
    urls: list[str] = []
    shown = asyncio.Event()

    def on_url(url: str) -> None:
        urls.append(url)
        shown.set()

    task = asyncio.create_task(
        sign_in(oauth_client(drive), on_url=on_url, open_browser=False, timeout=60)
    )
    await shown.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    browser = Browser()
    browser.url = urls[0]
    assert port_is_closed(browser.port)
