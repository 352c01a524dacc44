"""The fake Drive, driven by the real google-api-python-client.

The product's Drive store will be tested against this server, so these tests pin down that
the server answers the way Google does for the calls, failures and recoveries it relies on.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import math
import urllib.parse
from collections.abc import Callable
from typing import Any

import pytest
from google.auth.exceptions import RefreshError
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import Resource
from googleapiclient.errors import HttpError
from googleapiclient.http import HttpRequest, MediaIoBaseDownload, MediaIoBaseUpload

from tests.drive_server.auth import DRIVE_FILE_SCOPE
from tests.drive_server.fixture import DriveHarness, drive_fixture
from tests.drive_server.store import FOLDER_MIME

drive = drive_fixture()
small_drive = drive_fixture(name="small_drive", quota_limit=1_000_000)
impatient_drive = drive_fixture(name="impatient_drive", body_timeout=0.3)

CHUNK = 256 * 1024
OCTET = "application/octet-stream"


def payload(size: int, seed: int = 7) -> bytes:
    """Incompressible-looking bytes so a misplaced chunk changes the checksum."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def start_upload(service: Resource, data: bytes, name: str = "blob.bin") -> HttpRequest:
    media = MediaIoBaseUpload(io.BytesIO(data), mimetype=OCTET, chunksize=CHUNK, resumable=True)
    request: HttpRequest = service.files().create(
        body={"name": name}, media_body=media, fields="id,md5Checksum,size"
    )
    return request


def finish(request: HttpRequest, *, attempts: int = 5) -> dict[str, Any]:
    """Drive an upload to the end the way TESTING-NOTES advises: no client retries, and on a
    failure simply call next_chunk again (the client then asks the server where it stands)."""
    failures = 0
    while True:
        try:
            _, response = request.next_chunk(num_retries=0)
        except (HttpError, OSError):
            failures += 1
            if failures > attempts:
                raise
            continue
        if response is not None:
            return dict(response)


def error_reason(err: HttpError) -> str:
    details = err.error_details
    assert isinstance(details, list)
    return str(details[0]["reason"])


def make_folder(service: Resource, name: str, parent: str = "root", **app: str) -> str:
    body = {"name": name, "mimeType": FOLDER_MIME, "parents": [parent], "appProperties": app}
    made = service.files().create(body=body, fields="id").execute()
    return str(made["id"])


def upload_small(service: Resource, data: bytes, name: str = "small.bin") -> dict[str, str]:
    media = MediaIoBaseUpload(io.BytesIO(data), mimetype=OCTET, resumable=False)
    made = service.files().create(
        body={"name": name}, media_body=media, fields="id,md5Checksum,size"
    )
    return dict(made.execute())


def test_folder_is_found_by_name_parent_and_app_properties(drive: DriveHarness) -> None:
    service = drive.service()
    top = make_folder(service, "tierkeeper", role="root")
    wanted = make_folder(service, "sessions", top, role="sessions")
    make_folder(service, "sessions", "root", role="sessions")  # other parent
    make_folder(service, "sessions", top, role="other")  # other appProperties
    trashed = make_folder(service, "sessions", top, role="sessions")
    service.files().update(fileId=trashed, body={"trashed": True}).execute()

    q = (
        f"name = 'sessions' and '{top}' in parents and mimeType = '{FOLDER_MIME}' "
        "and trashed = false and appProperties has { key='role' and value='sessions' }"
    )
    found = service.files().list(q=q, fields="files(id,name)").execute()

    assert found == {"files": [{"id": wanted, "name": "sessions"}]}
    # Like Drive, a response without `fields` carries only kind, id, name and mimeType.
    plain = service.files().get(fileId=wanted).execute()
    assert set(plain) == {"kind", "id", "name", "mimeType"}


def test_resumable_upload_in_256k_chunks_reports_true_md5(drive: DriveHarness) -> None:
    data = payload(3 * 1024 * 1024 + 1234)
    result = finish(start_upload(drive.service(), data))

    assert result["md5Checksum"] == hashlib.md5(data).hexdigest()
    assert result["size"] == str(len(data))
    assert drive.store.get(result["id"]).content == data
    chunks = drive.traffic.records("upload.chunk")
    assert len(chunks) == math.ceil(len(data) / CHUNK)
    assert [c.status for c in chunks] == [308] * (len(chunks) - 1) + [200]


@pytest.mark.parametrize("keep_received", [False, True])
def test_upload_resumes_after_connection_drops_mid_chunk(
    drive: DriveHarness, keep_received: bool
) -> None:
    data = payload(CHUNK * 5 + 999)
    drive.faults.drop_connection(
        endpoint="upload.chunk", nth=3, after_bytes=100_000, keep_received=keep_received
    )
    request = start_upload(drive.service(), data)
    for _ in range(2):
        request.next_chunk(num_retries=0)
    with pytest.raises(ConnectionError):
        request.next_chunk(num_retries=0)

    result = finish(request)

    assert drive.store.get(result["id"]).content == data
    assert result["md5Checksum"] == hashlib.md5(data).hexdigest()
    # Resumed, not restarted: one session, one status query, and the next chunk starts where
    # the server said it stood (mid-chunk when it kept the partial bytes).
    assert drive.traffic.count("upload.start") == 1
    assert drive.traffic.count("upload.status") == 1
    resumed_at = 2 * CHUNK + (100_000 if keep_received else 0)
    after_query = drive.traffic.records("upload.chunk")[3]
    assert after_query.content_range is not None
    assert after_query.content_range.startswith(f"bytes {resumed_at}-")
    assert drive.faults.pending() == []


@pytest.mark.parametrize(
    ("inject", "status", "reason"),
    [("user_rate_limit", 403, "userRateLimitExceeded"), ("rate_limit", 429, "rateLimitExceeded")],
)
def test_rate_limit_error_then_retry_succeeds(
    drive: DriveHarness, inject: str, status: int, reason: str
) -> None:
    service = drive.service()
    make_folder(service, "a")
    getattr(drive.faults, inject)(endpoint="files.list", times=2)

    for _ in range(2):
        with pytest.raises(HttpError) as caught:
            service.files().list(fields="files(name)").execute(num_retries=0)
        assert caught.value.resp.status == status
        assert error_reason(caught.value) == reason
    listed = service.files().list(fields="files(name)").execute(num_retries=0)

    assert listed == {"files": [{"name": "a"}]}
    assert drive.traffic.count("files.list") == 3


def test_503_on_a_chunk_then_client_resumes(drive: DriveHarness) -> None:
    data = payload(CHUNK * 3 + 5)
    drive.faults.server_error(503, endpoint="upload.chunk", nth=2)
    request = start_upload(drive.service(), data)
    request.next_chunk(num_retries=0)
    with pytest.raises(HttpError) as caught:
        request.next_chunk(num_retries=0)
    assert caught.value.resp.status == 503
    assert error_reason(caught.value) == "backendError"

    result = finish(request)

    assert drive.store.get(result["id"]).content == data
    assert drive.traffic.count("upload.status") == 1


def test_client_retry_after_5xx_resends_a_spent_stream_and_gets_400(
    impatient_drive: DriveHarness,
) -> None:
    """The pitfall in TESTING-NOTES, reproduced: next_chunk(num_retries>0) after a 503 resends
    the chunk from an exhausted stream; the server answers 400 instead of hanging."""
    drive = impatient_drive
    drive.faults.server_error(503, endpoint="upload.chunk", nth=2)
    request = start_upload(drive.service(), payload(CHUNK * 3))
    request._sleep = lambda seconds: None  # skip the client's backoff, not its behaviour
    request.next_chunk(num_retries=2)
    with pytest.raises(HttpError) as caught:
        request.next_chunk(num_retries=2)
    assert caught.value.resp.status == 400
    assert "spent stream" in str(caught.value)


@pytest.mark.parametrize("how", ["token_expired", "injected_401"])
def test_401_makes_client_refresh_against_token_endpoint(drive: DriveHarness, how: str) -> None:
    creds = drive.credentials()
    service = drive.service(creds)
    first_token = creds.token
    if how == "token_expired":
        drive.server.tokens.expire_all()
    else:
        drive.faults.expired_token(endpoint="about.get")

    about = service.about().get(fields="user(emailAddress)").execute(num_retries=0)

    assert about == {"user": {"emailAddress": "test.user@example.com"}}
    assert drive.traffic.count("token") == 1
    assert isinstance(creds.token, str)
    assert creds.token != first_token
    assert drive.server.tokens.is_valid(creds.token)
    assert [r.status for r in drive.traffic.records("about.get")] == [401, 200]


def test_revoked_refresh_token_surfaces_as_refresh_error(drive: DriveHarness) -> None:
    creds = drive.credentials()
    service = drive.service(creds)
    drive.server.tokens.revoke(creds.refresh_token)
    drive.server.tokens.expire_all()

    with pytest.raises(RefreshError, match="invalid_grant"):
        service.files().list().execute(num_retries=0)


def test_upload_over_quota_is_refused(small_drive: DriveHarness) -> None:
    service = small_drive.service()
    upload_small(service, payload(600_000), "fits.bin")

    with pytest.raises(HttpError) as caught:
        upload_small(service, payload(600_000, seed=2), "too-much.bin")
    assert caught.value.resp.status == 403
    assert error_reason(caught.value) == "storageQuotaExceeded"
    with pytest.raises(HttpError) as resumable:
        finish(start_upload(service, payload(600_000, seed=3)), attempts=0)
    assert error_reason(resumable.value) == "storageQuotaExceeded"
    assert [f.name for f in small_drive.store.all_files()] == ["fits.bin"]


def test_injected_quota_error(drive: DriveHarness) -> None:
    drive.faults.quota_exceeded(endpoint="upload.start")
    with pytest.raises(HttpError) as caught:
        finish(start_upload(drive.service(), payload(10)), attempts=0)
    assert caught.value.resp.status == 403
    assert error_reason(caught.value) == "storageQuotaExceeded"


def test_injected_wrong_md5_is_reported_and_sticks(drive: DriveHarness) -> None:
    service = drive.service()
    data = payload(50_000)
    drive.faults.wrong_md5()

    bad = upload_small(service, data)
    good = upload_small(service, data, "again.bin")

    true_md5 = hashlib.md5(data).hexdigest()
    assert bad["md5Checksum"] != true_md5
    refetched = service.files().get(fileId=bad["id"], fields="md5Checksum").execute()
    assert refetched["md5Checksum"] == bad["md5Checksum"]
    assert service.files().get_media(fileId=bad["id"]).execute() == data
    assert good["md5Checksum"] == true_md5


def test_ranged_download_returns_exact_bytes(drive: DriveHarness) -> None:
    service = drive.service()
    data = payload(1_000_003)
    file_id = finish(start_upload(service, data))["id"]

    sink = io.BytesIO()
    download = MediaIoBaseDownload(
        sink, service.files().get_media(fileId=file_id), chunksize=300_000
    )
    done = False
    while not done:
        _, done = download.next_chunk(num_retries=0)
    assert sink.getvalue() == data
    assert drive.traffic.count("files.get_media") == 4

    def ranged(header: str) -> bytes:
        request = service.files().get_media(fileId=file_id)
        request.headers["Range"] = header
        body: bytes = request.execute(num_retries=0)
        return body

    assert ranged("bytes=10-19") == data[10:20]
    assert ranged("bytes=-5") == data[-5:]
    assert ranged("bytes=999990-") == data[999_990:]
    with pytest.raises(HttpError) as caught:
        ranged("bytes=2000000-2000010")
    assert caught.value.resp.status == 416


def test_list_pages_through_every_file_once(drive: DriveHarness) -> None:
    service = drive.service()
    folder = make_folder(service, "many")
    names = [f"f{i:02d}" for i in range(23)]
    for name in names:
        service.files().create(body={"name": name, "parents": [folder]}, fields="id").execute()

    seen: list[str] = []
    pages = 0
    token: str | None = None
    while True:
        page = (
            service.files()
            .list(
                q=f"'{folder}' in parents",
                pageSize=10,
                pageToken=token,
                orderBy="name desc",
                fields="nextPageToken,files(name)",
            )
            .execute()
        )
        pages += 1
        seen += [f["name"] for f in page["files"]]
        token = page.get("nextPageToken")
        if token is None:
            break

    assert pages == 3
    assert seen == sorted(names, reverse=True)


def test_delete_then_get_is_404_and_takes_children(drive: DriveHarness) -> None:
    service = drive.service()
    folder = make_folder(service, "doomed")
    child = service.files().create(body={"name": "c", "parents": [folder]}, fields="id").execute()
    service.files().delete(fileId=folder).execute()

    for gone in (folder, child["id"]):
        with pytest.raises(HttpError) as caught:
            service.files().get(fileId=gone).execute(num_retries=0)
        assert caught.value.resp.status == 404
        assert error_reason(caught.value) == "notFound"


def test_about_reports_quota_and_user(drive: DriveHarness) -> None:
    service = drive.service()
    upload_small(service, payload(12_345))

    about = service.about().get(fields="storageQuota(limit,usage),user").execute()

    assert about["storageQuota"] == {"limit": str(15 * 1024**3), "usage": "12345"}
    assert about["user"]["displayName"] == "Test User"
    assert about["user"]["emailAddress"] == "test.user@example.com"


def test_quota_usage_follows_updates_and_deletes(drive: DriveHarness) -> None:
    service = drive.service()

    def usage() -> int:
        about = service.about().get(fields="storageQuota(usage)").execute()
        return int(about["storageQuota"]["usage"])

    kept = upload_small(service, payload(1_000), "kept.bin")
    folder = make_folder(service, "doomed")
    media = MediaIoBaseUpload(io.BytesIO(payload(300)), mimetype=OCTET, resumable=False)
    service.files().create(body={"name": "c", "parents": [folder]}, media_body=media).execute()
    assert usage() == 1_300

    media = MediaIoBaseUpload(io.BytesIO(payload(250, seed=2)), mimetype=OCTET, resumable=False)
    service.files().update(fileId=kept["id"], media_body=media).execute()
    assert usage() == 550
    service.files().delete(fileId=folder).execute()  # its file goes with it
    assert usage() == 250


def test_checksums_are_of_the_content_held_now(drive: DriveHarness) -> None:
    service = drive.service()
    old, new = payload(5_000), payload(7_000, seed=3)
    made = upload_small(service, old)
    fields = "md5Checksum,sha1Checksum,sha256Checksum"
    assert service.files().get(fileId=made["id"], fields=fields).execute() == {
        "md5Checksum": hashlib.md5(old).hexdigest(),
        "sha1Checksum": hashlib.sha1(old).hexdigest(),
        "sha256Checksum": hashlib.sha256(old).hexdigest(),
    }

    drive.store.get(made["id"]).content = new  # as a test that damages a file does
    listed = service.files().list(q="name = 'small.bin'", fields=f"files({fields})").execute()

    assert listed["files"] == [{
        "md5Checksum": hashlib.md5(new).hexdigest(),
        "sha1Checksum": hashlib.sha1(new).hexdigest(),
        "sha256Checksum": hashlib.sha256(new).hexdigest(),
    }]  # fmt: skip


def test_update_replaces_content_and_merges_app_properties(drive: DriveHarness) -> None:
    service = drive.service()
    made = (
        service.files()
        .create(body={"name": "state.json", "appProperties": {"a": "1", "b": "2"}}, fields="id")
        .execute()
    )
    new = payload(CHUNK + 10, seed=9)
    media = MediaIoBaseUpload(io.BytesIO(new), mimetype=OCTET, chunksize=CHUNK, resumable=True)
    request = service.files().update(
        fileId=made["id"],
        body={"appProperties": {"a": None, "c": "3"}},
        media_body=media,
        fields="md5Checksum,appProperties,size",
    )

    result = finish(request)

    assert result["md5Checksum"] == hashlib.md5(new).hexdigest()
    assert result["appProperties"] == {"b": "2", "c": "3"}
    assert drive.store.get(made["id"]).content == new


@pytest.mark.parametrize(
    ("call", "location"),
    [
        (lambda s: s.files().list(q="name = sessions"), "q"),
        (lambda s: s.files().list(fields="files(id,nmae)"), "fields"),
        (lambda s: s.files().list(pageToken="bm90LWEtdG9rZW4="), "pageToken"),
        (lambda s: s.about().get(), "fields"),
    ],
)
def test_malformed_requests_get_400(
    drive: DriveHarness, call: Callable[[Resource], HttpRequest], location: str
) -> None:
    service = drive.service()
    with pytest.raises(HttpError) as caught:
        call(service).execute(num_retries=0)
    assert caught.value.resp.status == 400
    details = caught.value.error_details
    assert isinstance(details, list)
    assert details[0]["location"] == location


def test_chunk_not_a_multiple_of_256k_is_rejected(drive: DriveHarness) -> None:
    service = drive.service()
    media = MediaIoBaseUpload(
        io.BytesIO(payload(300_000)), mimetype=OCTET, chunksize=100_000, resumable=True
    )
    request = service.files().create(body={"name": "odd"}, media_body=media)
    with pytest.raises(HttpError) as caught:
        request.next_chunk(num_retries=0)
    assert caught.value.resp.status == 400
    assert "multiple of 262144" in str(caught.value)


def test_slow_response_times_out_the_client_then_recovers(drive: DriveHarness) -> None:
    service = drive.service(timeout=0.5)
    drive.faults.delay(1.2, endpoint="files.list")
    with pytest.raises(TimeoutError):
        service.files().list().execute(num_retries=0)
    assert service.files().list(fields="files(id)").execute(num_retries=0) == {"files": []}


def test_empty_file_uploads_resumably(drive: DriveHarness) -> None:
    result = finish(start_upload(drive.service(), b"", "empty.jsonl"))

    assert result["size"] == "0"
    assert result["md5Checksum"] == hashlib.md5(b"").hexdigest()
    assert drive.store.get(result["id"]).content == b""


def test_move_between_folders_with_add_and_remove_parents(drive: DriveHarness) -> None:
    service = drive.service()
    archive = make_folder(service, "archive")
    made = service.files().create(body={"name": "s.jsonl"}, fields="id").execute()

    def names_in(parent: str) -> list[str]:
        found = service.files().list(q=f"'{parent}' in parents", fields="files(name)").execute()
        return [f["name"] for f in found["files"]]

    assert names_in("root") == ["archive", "s.jsonl"]
    moved = (
        service.files()
        .update(fileId=made["id"], addParents=archive, removeParents="root", fields="parents")
        .execute()
    )

    assert moved["parents"] == [archive]
    assert names_in("root") == ["archive"]
    assert names_in(archive) == ["s.jsonl"]


def test_authorization_code_flow_yields_working_tokens(drive: DriveHarness) -> None:
    """The consent endpoint redirects straight back with a code, as InstalledAppFlow expects."""
    redirect = "http://127.0.0.1:1/callback"
    query = urllib.parse.urlencode(
        {
            "client_id": drive.server.client_id,
            "redirect_uri": redirect,
            "response_type": "code",
            "scope": DRIVE_FILE_SCOPE,
            "state": "xyz",
        }
    )
    conn = http.client.HTTPConnection("127.0.0.1", drive.server.port, timeout=5)
    try:
        conn.request("GET", f"/auth?{query}")
        answer = conn.getresponse()
        answer.read()
        location = answer.getheader("Location") or ""
        assert answer.status == 302
        assert location.startswith(redirect)
        params = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
        assert params["state"] == ["xyz"]
        form = urllib.parse.urlencode(
            {
                "grant_type": "authorization_code",
                "code": params["code"][0],
                "redirect_uri": redirect,
                "client_id": drive.server.client_id,
                "client_secret": drive.server.client_secret,
            }
        )
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        conn.request("POST", "/token", body=form, headers=headers)
        tokens = json.loads(conn.getresponse().read())
        conn.request("POST", "/token", body=form, headers=headers)  # codes are single-use
        reused = conn.getresponse()
        assert json.loads(reused.read())["error"] == "invalid_grant"
    finally:
        conn.close()

    creds = Credentials(
        token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
        token_uri=drive.server.token_uri,
        client_id=drive.server.client_id,
        client_secret=drive.server.client_secret,
    )
    about = drive.service(creds).about().get(fields="user(displayName)").execute()
    assert about == {"user": {"displayName": "Test User"}}
