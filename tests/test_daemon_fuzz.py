"""No request, however odd, makes the daemon answer 5xx.

Schemathesis builds requests from the OpenAPI document the daemon serves (valid ones,
and invalid ones: wrong types, unknown fields, missing parts) and sends them through
the daemon's own Unix socket. Every answer must be a documented status with a body
matching the document, and invalid input must be refused with a 4xx. Beside it,
hypothesis throws what no schema describes: bytes that are not JSON, bodies past the
size limit, path segments and query strings of any text.

The daemon runs with its job runner off: jobs the fuzzing starts stay queued and are
cancelled at once (so a long poll on them answers), and no job touches the files a
fuzzed path might name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from core.client import InProcessClient
from core.daemon.app import MAX_BODY, api
from core.daemon.errors import ErrorBody
from core.daemon.server import Daemon
from core.errors import BadInputError, NotFoundError, TierkeeperError
from core.service import Service
from tests.daemon_harness import BASE, ThreadedDaemon, unix_session
from tests.support import CLAUDE_FIXTURES

SOURCE = CLAUDE_FIXTURES / "claude-code-log-cases" / "edge_cases.jsonl"
MAX_LINE = 8190
"""aiohttp's limit on a request line: past it the HTTP parser answers 400 in plain text
before any route (or our JSON errors) is involved. Still a refusal, never a 5xx."""


def content_type_as_documented(ctx: Any, response: schemathesis.Response, case: Any) -> bool | None:
    if response.status_code == 400 and len(response.request.url or "") > MAX_LINE:
        return None
    return content_type_conformance(ctx, response, case)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_as_documented,
    response_schema_conformance,
    negative_data_rejection,
]
EXAMPLES = int(os.environ.get("TIERKEEPER_FUZZ_EXAMPLES", "20"))
"""Per test; raise it for a deeper hunt (`TIERKEEPER_FUZZ_EXAMPLES=2000 pytest ...`)."""
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # a failure prints its request; no shrinking
    suppress_health_check=list(HealthCheck),
)
OUTSIDE = {("POST", "/targets"), ("POST", "/targets/test"), ("POST", "/drive-sign-ins")}
"""Valid requests here reach beyond the workspace (a folder anywhere, an S3 endpoint, a
browser, the keyring), so only invalid ones are fuzzed: they must be refused first."""

ROUTES = [r for r in api.routes if not r.stream]
BODIES = [r for r in ROUTES if r.body is not None]


class Served:
    def __init__(self, daemon: Daemon, http: requests.Session, doc: dict[str, Any]) -> None:
        self.daemon = daemon
        self.http = http
        self.schema = schemathesis.openapi.from_dict(doc)

    def send(self, method: str, path: str, body: bytes | None = None) -> requests.Response:
        return self.http.request(method, BASE + path, data=body, timeout=30)

    def settle(self, response: requests.Response) -> None:
        """A started job is cancelled at once: a later long poll on it must answer."""
        jobs = []
        if response.status_code == 202:
            jobs.append(response.json()["id"])
        elif response.status_code == 200 and response.request.url.endswith("/sessions/end"):
            backup = response.json().get("backup")  # ending a session starts its backup
            jobs += [backup["id"]] if backup else []
        for job in jobs:
            self.settle_job(job)

    def settle_job(self, job: int) -> None:
        assert self.send("POST", f"/v1/jobs/{job}/cancel").status_code == 200


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("fuzz")
    runner = ThreadedDaemon()
    try:
        d = runner.start(tmp / "ws", socket=tmp / "d.sock", run_jobs=False, schedule=False)
        runner.run(d.service.import_now([str(SOURCE)]))
        runner.run(d.service.add_folder_target("usb", str(tmp / "disk")))
        http = unix_session(d.socket)
        try:
            doc = http.get(BASE + "/v1/openapi.json", timeout=30).json()
            yield Served(d, http, doc)
        finally:
            http.close()
    finally:
        runner.close()


def _error(response: requests.Response) -> str:
    assert response.headers["Content-Type"].startswith("application/json"), response.text
    body = response.content
    assert b"Traceback" not in body
    return ErrorBody.model_validate_json(body).error.message


CASES = [(r, GenerationMode.POSITIVE) for r in ROUTES if (r.method, r.path) not in OUTSIDE] + [
    (r, GenerationMode.NEGATIVE) for r in ROUTES if r.params is not None or r.body is not None
]


@pytest.mark.parametrize(
    ("route", "mode"), CASES, ids=[f"{m.value}-{r.method}-{r.path}" for r, m in CASES]
)
def test_requests_built_from_the_api_document_never_get_a_5xx(
    served: Served, route: Any, mode: GenerationMode
) -> None:
    operation = served.schema[route.url][route.method]

    @FUZZ
    @given(case=operation.as_strategy(generation_mode=mode))
    def one(case: schemathesis.Case) -> None:
        response = case.call(base_url=BASE, session=served.http, timeout=30)
        case.validate_response(response, checks=CHECKS)
        served.settle(response)

    try:
        one()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        pytest.skip("every value of this route's inputs is valid: nothing invalid to send")


@pytest.mark.parametrize("route", BODIES, ids=[f"{r.method}-{r.path}" for r in BODIES])
def test_a_body_that_is_not_a_json_object_is_refused_with_400(served: Served, route: Any) -> None:
    @FUZZ
    @given(
        body=st.binary(max_size=64)
        | st.sampled_from([b"", b"null", b"[]", b'"x"', b"1e999", b"[" * 5000, b"{" * 5000])
        | st.recursive(st.none() | st.integers() | st.text(), st.lists, max_leaves=8).map(
            lambda v: json.dumps(v).encode()
        )
    )
    def one(body: bytes) -> None:
        response = served.send(route.method, route.url, body)
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            _error(response)
        served.settle(response)

    one()
    for body in (b"{not json", b"[1, 2]", b"\xff\xfe", b"[" * 5000):
        response = served.send(route.method, route.url, body)
        assert response.status_code == 400 and "Bad request" in _error(response)


@pytest.mark.parametrize("route", BODIES, ids=[f"{r.method}-{r.path}" for r in BODIES])
def test_huge_bodies_and_unknown_fields_are_refused(served: Served, route: Any) -> None:
    huge = b'{"x": "' + b"y" * MAX_BODY + b'"}'
    response = served.send(route.method, route.url, huge)
    assert response.status_code == 413 and "Maximum request body size" in _error(response)
    response = served.send(route.method, route.url, b'{"zz_unknown": 1}')
    assert response.status_code == 400
    assert "zz_unknown: Extra inputs are not permitted" in _error(response)
    assert served.send("GET", "/v1/status").status_code == 200  # and it still serves


PATHS = ["/v1/sessions/{}", "/v1/jobs/{}/wait", "/v1/jobs/{}/cancel"]


@FUZZ
@given(
    template=st.sampled_from(PATHS),
    segment=st.text(min_size=1, max_size=40)
    | st.integers(min_value=-(2**80), max_value=2**80).map(str),
    query=st.dictionaries(st.text(max_size=8), st.text(max_size=12), max_size=3),
)
def test_any_path_segment_or_query_string_gets_a_clear_answer(
    served: Served, template: str, segment: str, query: dict[str, str]
) -> None:
    method = "POST" if template.endswith("cancel") else "GET"
    url = template.format(quote(segment, safe=""))
    response = served.http.request(method, BASE + url, params=query, timeout=30)
    assert response.status_code in (200, 400, 404), response.text
    if response.status_code != 200:
        _error(response)


@settings(max_examples=15, deadline=None, database=None, phases=[Phase.explicit, Phase.generate])
@given(topics=st.text(max_size=30))
def test_any_topic_list_opens_an_event_stream(served: Served, topics: str) -> None:
    with served.http.get(
        BASE + "/v1/events", params={"topics": topics}, stream=True, timeout=30
    ) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "text/event-stream"
        assert next(response.iter_lines()) == b": subscribed"


# regressions: what the fuzzing found --------------------------------------------------


@pytest.mark.parametrize("job_id", [2**63, 2**70, -(2**63) - 1])
def test_a_job_id_beyond_what_sqlite_holds_is_not_found(served: Served, job_id: int) -> None:
    for method, path in (
        ("GET", f"/v1/jobs/{job_id}/wait"),
        ("POST", f"/v1/jobs/{job_id}/cancel"),
        ("POST", f"/v1/jobs/{job_id}/pause"),
        ("POST", f"/v1/jobs/{job_id}/resume"),
    ):
        response = served.send(method, path)
        assert response.status_code == 404, response.text
        assert _error(response) == f"There is no job {job_id}"


def test_a_job_id_is_only_read_as_the_api_writes_it(served: Served) -> None:
    """`+1`, `01`, `1.0` or `1_0` once read as job 1: a negative fuzz case that came out
    as one of them paused a real job and was answered 200 (a rare failure, once)."""
    job = served.send("POST", "/v1/backups", b'{"session_ids": []}').json()
    try:
        for written in (f"+{job['id']}", f"0{job['id']}", f"{job['id']}.0", f" {job['id']}",
                        f"{job['id']}_0", f"{job['id']}\u0663"):  # fmt: skip
            for action in ("pause", "cancel", "resume"):
                response = served.send("POST", f"/v1/jobs/{written}/{action}")
                assert response.status_code == 400, (written, response.text)
                assert "job_id must be a whole number" in _error(response)
            waited = served.send("GET", f"/v1/jobs/{written}/wait")
            assert waited.status_code == 400, (written, waited.text)
        assert served.send("GET", f"/v1/jobs/{job['id']}/wait?timeout=0.01").json()["state"] == (
            "queued"
        )
    finally:
        served.settle_job(job["id"])


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("/v1/metrics/series?op=put&tier=folder&since=0", "since must be a date and time"),
        ("/v1/metrics/series?op=put&tier=folder&since=1.5e9", "since must be a date and time"),
        ("/v1/metrics/series?op=put&tier=folder&since=2026-11-27", "with its offset"),
        ("/v1/metrics/series?op=put&tier=folder&since=2026-11-27T10:00:00", "with its offset"),
        ("/v1/metrics/series?op=put&tier=folder&since=2026-02-30T10:00:00Z", "date and time"),
        ("/v1/jobs?active_only=yes", "active_only must be true or false"),
        ("/v1/jobs?active_only=1", "active_only must be true or false"),
    ],
)
def test_a_query_value_is_only_read_as_the_api_writes_it(
    served: Served, query: str, said: str
) -> None:
    """Found by the fuzzer: `since=0` was read as 1 January 1970 and answered 200."""
    response = served.send("GET", query)
    assert response.status_code == 400, response.text
    assert said in _error(response)


def test_a_moment_as_the_client_writes_it_is_read(served: Served) -> None:
    for since in ("2026-11-27T10:00:00%2B00:00", "2026-11-27T10:00:00.250Z"):
        response = served.send("GET", f"/v1/metrics/series?op=put&tier=folder&since={since}")
        assert response.status_code == 200, response.text


ODD_PATHS = {
    "with\0nul": (BadInputError, 400, "cannot contain a NUL character"),
    "~no-such-user-here/x": (NotFoundError, 404, "~no-such-user-here/x does not exist"),
    "a" * 5000: (BadInputError, 400, "File name too long"),
}


@pytest.mark.parametrize("path", list(ODD_PATHS), ids=["nul", "unknown-user", "too-long"])
async def test_an_import_of_an_odd_path_is_refused_the_same_on_both_transports(
    served: Served, tmp_path: Path, path: str
) -> None:
    kind, status, message = ODD_PATHS[path]
    response = served.send("POST", "/v1/imports", json.dumps({"paths": [path]}).encode())
    assert response.status_code == status and message in _error(response)
    svc = await Service.start(tmp_path / "ws", run_jobs=False, schedule=False)
    client = InProcessClient(svc)
    try:
        with pytest.raises(TierkeeperError) as raised:
            await client.start_import([path])
        assert type(raised.value) is kind and message in raised.value.message
    finally:
        await client.close()


@pytest.mark.parametrize("path", list(ODD_PATHS), ids=["nul", "unknown-user", "too-long"])
def test_settings_and_a_folder_target_refuse_an_odd_path_with_a_4xx(
    served: Served, path: str
) -> None:
    """The fuzzer's find: a source `~J…` (a user this computer does not know) in a
    settings patch was an internal error (500), and so was a folder target's path."""
    status = ODD_PATHS[path][1]
    response = served.send("PATCH", "/v1/config", json.dumps({"sources": [path]}).encode())
    assert 400 <= response.status_code < 500, response.text
    if path.startswith("~"):
        assert response.status_code == status and "no user" in _error(response)
    body = {"spec": {"kind": "folder", "name": "odd", "path": path}}
    response = served.send("POST", "/v1/targets", json.dumps(body).encode())
    assert 400 <= response.status_code < 500, response.text
    assert "spec" not in _error(response)  # refused for its path, not its shape
