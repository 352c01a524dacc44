"""The fake Drive as a separate process: what the Drive benchmark measures against.

The benchmark's figures are only honest if the child serves the real client the way the
in-process server does, counts what it served, and leaves no process behind.
"""

from __future__ import annotations

import io
import os
import urllib.error
import urllib.request

from googleapiclient.http import MediaIoBaseUpload

from tests.drive_server.control import PREFIX, SECRET_HEADER
from tests.drive_server.fixture import drive_service, running_drive
from tests.drive_server.process import DriveProcess, drive_process


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_child_serves_the_real_client_counts_requests_and_goes_away() -> None:
    with drive_process() as drive:
        pid = drive.pid
        service = drive_service(drive.base_url, drive.credentials())
        try:
            media = MediaIoBaseUpload(io.BytesIO(b"x" * 1000), mimetype="application/octet-stream")
            made = (
                service.files()
                .create(body={"name": "a.bin"}, media_body=media, fields="id,size,md5Checksum")
                .execute()
            )
            assert made["size"] == "1000"
            assert drive.traffic_counts() == {"upload.multipart": 1}
            assert drive.stored() == {"files": 1, "folders": 0, "bytes": 1000}
            drive.reset_traffic()
            service.files().get(fileId=made["id"], fields="id").execute()
            assert drive.traffic_counts() == {"files.get": 1}  # control calls are not counted
        finally:
            service.close()
    assert not _alive(pid)


def _control_status(base_url: str, secret: str) -> int:
    request = urllib.request.Request(
        f"{base_url}{PREFIX.lstrip('/')}tokens", method="POST", data=b"",
        headers={SECRET_HEADER: secret},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as err:
        err.close()
        return int(err.code)


def test_control_routes_need_the_secret_and_exist_only_when_asked_for() -> None:
    with DriveProcess() as drive:
        assert _control_status(drive.base_url, "guess") == 403
        assert _control_status(drive.base_url, drive.client_secret) == 200
    with running_drive() as in_process:  # what the test suite uses: no side door at all
        secret = in_process.server.client_secret
        assert _control_status(in_process.base_url, secret) == 404
