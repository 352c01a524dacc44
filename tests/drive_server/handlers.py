"""The HTTP face of the fake Drive: routing, auth, faults, and the v3 endpoints.

Routing is done by hand in one catch-all handler so every request passes the same gate —
count it, apply injected faults, check the bearer token — before an endpoint sees it.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import socket
import struct
from base64 import b64decode, urlsafe_b64decode, urlsafe_b64encode
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode

from aiohttp import web

from tests.drive_server import discovery, errors
from tests.drive_server.auth import PKCE_METHODS, TokenBook
from tests.drive_server.control import Control
from tests.drive_server.faults import Delay, Drop, FaultInjector, Respond, SlowAnswer
from tests.drive_server.query import (
    FieldTree,
    parse_fields,
    parse_order_by,
    parse_q,
    select,
    validate_fields,
)
from tests.drive_server.store import DriveFile, DriveStore, UploadSession
from tests.drive_server.traffic import RequestRecord, Traffic
from tests.drive_server.uploads import (
    RANGE_DATA,
    RANGE_QUERY,
    check_chunk,
    parse_json_body,
    query_total,
    split_multipart,
)

_FILE_DEFAULT: FieldTree = {"kind": None, "id": None, "name": None, "mimeType": None}
_LIST_DEFAULT: FieldTree = {
    "kind": None,
    "incompleteSearch": None,
    "nextPageToken": None,
    "files": _FILE_DEFAULT,
}
_FILES = re.compile(r"^/drive/v3/files(?:/(?P<id>[^/]+))?$")
_UPLOAD = re.compile(r"^/upload/drive/v3/files(?:/(?P<id>[^/]+))?$")
_JSON = "application/json; charset=UTF-8"
# The session URI itself is the credential for chunk PUTs, as on Google; the OAuth endpoints
# authenticate the client by its id and secret instead.
_NO_BEARER = frozenset({"token", "auth", "upload.chunk", "upload.status"})


def _fields_tree(request: web.Request, schema: str, default: FieldTree | None) -> FieldTree:
    text = request.query.get("fields")
    if text is None:
        if default is None:
            raise errors.required_parameter("fields")
        return default
    tree = parse_fields(text)
    known = discovery.schemas()
    validate_fields(tree, known[schema], known)
    return tree


def _listed_fields(tree: FieldTree) -> Collection[str] | None:
    """The file fields a files.list asks for (None: all of them)."""
    if "*" in tree:
        return None
    files = tree.get("files")
    return None if files is None else files.keys()


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        text=json.dumps(data), status=status, headers={"Content-Type": _JSON, **(headers or {})}
    )


def _error_response(err: errors.DriveError) -> web.Response:
    return _json(err.body(), err.status, err.headers)


def _id_list(text: str | None) -> list[str]:
    return [p for p in (text or "").split(",") if p]


@dataclass
class _Routed:
    endpoint: str
    file_id: str | None = None


@dataclass
class _Call:
    """What an endpoint handler gets: the request, the id in its path, its whole body."""

    request: web.Request
    file_id: str | None
    body: bytes


class DriveApp:
    def __init__(
        self,
        store: DriveStore,
        tokens: TokenBook,
        faults: FaultInjector,
        traffic: Traffic,
        *,
        user_name: str,
        user_email: str,
        body_timeout: float,
        control: Control | None = None,
    ) -> None:
        self.control = control
        self.store = store
        self.tokens = tokens
        self.faults = faults
        self.traffic = traffic
        self.user_name = user_name
        self.user_email = user_email
        self.body_timeout = body_timeout

    def build(self) -> web.Application:
        app = web.Application(client_max_size=1024**3)
        if self.control is not None:
            self.control.add_routes(app)
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app

    # --- routing and the common gate --------------------------------------------------

    def _route(self, request: web.Request) -> _Routed:
        path, method, query = request.path, request.method, request.query
        if path == "/token" and method == "POST":
            return _Routed("token")
        if path == "/auth" and method == "GET":
            return _Routed("auth")
        if path == "/drive/v3/about" and method == "GET":
            return _Routed("about.get")
        m = _FILES.match(path)
        if m:
            file_id = m.group("id")
            if file_id is None:
                table = {"GET": "files.list", "POST": "files.create"}
            else:
                media = query.get("alt") == "media"
                table = {
                    "GET": "files.get_media" if media else "files.get",
                    "PATCH": "files.update",
                    "DELETE": "files.delete",
                }
            if method in table:
                return _Routed(table[method], file_id)
        m = _UPLOAD.match(path)
        if m:
            file_id = m.group("id")
            if method == "PUT" and "upload_id" in query:
                query_only = RANGE_QUERY.match(request.headers.get("Content-Range", ""))
                return _Routed("upload.status" if query_only else "upload.chunk", file_id)
            if (method == "POST" and file_id is None) or (method == "PATCH" and file_id):
                kind = query.get("uploadType")
                if kind in ("multipart", "media"):
                    return _Routed(f"upload.{kind}", file_id)
                if kind == "resumable":
                    return _Routed("upload.start", file_id)
                raise errors.invalid_parameter("uploadType")
        raise errors.DriveError(404, "notFound", f"No such endpoint: {method} {path}")

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        try:
            routed = self._route(request)
        except errors.DriveError as err:
            self._record(request, "unknown").status = err.status
            await self._drain(request)
            return _error_response(err)
        record = self._record(request, routed.endpoint)
        try:
            response = await self._gate(request, routed)
        except _IncompleteBody as err:
            response = _error_response(err)
            response.force_close()
        except errors.DriveError as err:
            await self._drain(request)
            response = _error_response(err)
        except _Dropped:
            return web.Response(status=499)  # never written: the transport is gone
        record.status = response.status
        return response

    def _record(self, request: web.Request, endpoint: str) -> RequestRecord:
        return self.traffic.record(
            RequestRecord(
                endpoint=endpoint,
                method=request.method,
                path=request.path,
                query=dict(request.query),
                content_range=request.headers.get("Content-Range"),
            )
        )

    async def _gate(self, request: web.Request, routed: _Routed) -> web.StreamResponse:
        """Faults first (they stand for Google misbehaving), then auth, then the endpoint."""
        hold = 0.0
        for action in self.faults.take(request.method, request.path, routed.endpoint):
            if isinstance(action, SlowAnswer):
                hold += action.seconds
            elif isinstance(action, Delay):
                await asyncio.sleep(action.seconds)
            elif isinstance(action, Respond):
                raise action.error
            elif isinstance(action, Drop):
                await self._drop(request, routed, action)
        if routed.endpoint not in _NO_BEARER:
            self._check_bearer(request)
        call = _Call(request, routed.file_id, await self._read_body(request))
        handler = getattr(self, "_" + routed.endpoint.replace(".", "_"))
        response: web.StreamResponse = await handler(call)
        if hold:
            await asyncio.sleep(hold)  # done, but the client may have stopped waiting
        return response

    def _check_bearer(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise errors.DriveError(
                401,
                "required",
                "Login Required.",
                location="Authorization",
                location_type="header",
            )
        if not self.tokens.is_valid(token.strip()):
            raise errors.auth_error()

    async def _read_body(self, request: web.Request) -> bytes:
        """Read the whole body, but never wait forever for bytes a client will not send.

        A client that resends a consumed stream declares Content-Length N and sends nothing;
        real Google times such a request out, and so does this server (400), so the test
        fails instead of hanging.
        """
        try:
            return await asyncio.wait_for(request.read(), self.body_timeout)
        except TimeoutError as exc:
            raise _IncompleteBody() from exc

    async def _drain(self, request: web.Request) -> None:
        """Consume what is left of the body so the error reaches the client intact."""
        if request.content.at_eof():
            return
        try:
            await asyncio.wait_for(request.read(), self.body_timeout)
        except (TimeoutError, web.HTTPException):
            pass

    async def _drop(self, request: web.Request, routed: _Routed, action: Drop) -> None:
        wanted = min(action.after_bytes, request.content_length or 0)
        data = b""
        if wanted:
            try:
                data = await asyncio.wait_for(
                    request.content.readexactly(wanted), self.body_timeout
                )
            except (TimeoutError, asyncio.IncompleteReadError):
                pass
        if action.keep_received and routed.endpoint == "upload.chunk" and data:
            self._keep_partial(request, data)
        transport = request.transport
        if transport is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                # Linger 0 turns close into a reset, so the client sees ECONNRESET rather
                # than a clean EOF (which httplib2 would silently retry with a spent body).
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        raise _Dropped()

    def _keep_partial(self, request: web.Request, data: bytes) -> None:
        m = RANGE_DATA.match(request.headers.get("Content-Range", ""))
        session = self.store.session(request.query["upload_id"])
        if m and int(m.group(1)) == len(session.received) and session.result_id is None:
            session.received.extend(data)

    # --- OAuth ------------------------------------------------------------------------

    async def _token(self, call: _Call) -> web.Response:
        request, body = call.request, call.body
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = request.headers.get("Authorization", "")
        if basic.lower().startswith("basic "):
            decoded = b64decode(basic[6:]).decode()
            client_id, _, client_secret = decoded.partition(":")
        if not self.tokens.client_ok(client_id, client_secret):
            return web.json_response(
                {"error": "invalid_client", "error_description": "The OAuth client was not found."},
                status=401,
            )
        grant_type = form.get("grant_type")
        refresh_token: str | None = None
        if grant_type == "refresh_token":
            grant = self.tokens.grant_for(form.get("refresh_token", ""))
            scope = grant.scope if grant else None
        elif grant_type == "authorization_code":
            scope = self.tokens.redeem_code(
                form.get("code", ""), form.get("redirect_uri"), form.get("code_verifier")
            )
            if scope is not None and not self.tokens.take_withholding():
                refresh_token = self.tokens.issue_refresh_token(scope)
        else:
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if scope is None:
            return web.json_response(
                {
                    "error": "invalid_grant",
                    "error_description": "Token has been expired or revoked.",
                },
                status=400,
            )
        payload: dict[str, Any] = {
            "access_token": self.tokens.issue_access_token(scope),
            "expires_in": 3600,
            "token_type": "Bearer",
            "scope": scope,
        }
        if refresh_token is not None:
            payload["refresh_token"] = refresh_token
        return web.json_response(payload)

    async def _auth(self, call: _Call) -> web.Response:
        """Consent screen that says yes at once (or no, when a test asked for that).

        A `code_challenge` is remembered with the code, so `/token` demands the matching
        `code_verifier` as Google does."""
        query = call.request.query
        redirect_uri = query.get("redirect_uri")
        if query.get("client_id") != self.tokens.client_id or not redirect_uri:
            return web.Response(status=400, text="invalid_client or missing redirect_uri")
        challenge = query.get("code_challenge")
        method = query.get("code_challenge_method")
        if method is not None and (challenge is None or method not in PKCE_METHODS):
            return web.Response(status=400, text="invalid code_challenge_method")
        scope = query.get("scope", "")
        if self.tokens.take_denial():
            params = {"error": "access_denied"}
        else:
            code = self.tokens.issue_code(
                scope, redirect_uri, code_challenge=challenge, code_challenge_method=method
            )
            params = {"code": code, "scope": scope}
        if "state" in query:
            params["state"] = query["state"]
        sep = "&" if "?" in redirect_uri else "?"
        return web.Response(
            status=302, headers={"Location": redirect_uri + sep + urlencode(params)}
        )

    # --- metadata endpoints -----------------------------------------------------------

    def _file_response(self, request: web.Request, found: DriveFile) -> web.Response:
        tree = _fields_tree(request, "File", _FILE_DEFAULT)
        return _json(select(found.resource(tree), tree))

    async def _about_get(self, call: _Call) -> web.Response:
        request = call.request
        tree = _fields_tree(request, "About", None)
        quota: dict[str, str] = {
            "usage": str(self.store.usage()),
            "usageInDrive": str(self.store.usage()),
            "usageInDriveTrash": str(self.store.trashed_usage()),
        }
        if self.store.quota_limit is not None:
            quota["limit"] = str(self.store.quota_limit)
        about = {
            "kind": "drive#about",
            "user": {
                "kind": "drive#user",
                "displayName": self.user_name,
                "emailAddress": self.user_email,
                "me": True,
                "permissionId": "00000000000000000001",
            },
            "storageQuota": quota,
            "maxUploadSize": "5242880000000",
            "appInstalled": True,
        }
        return _json(select(about, tree))

    async def _files_list(self, call: _Call) -> web.Response:
        request = call.request
        query = request.query
        tree = _fields_tree(request, "FileList", _LIST_DEFAULT)
        try:
            page_size = int(query.get("pageSize", "100"))
        except ValueError as exc:
            raise errors.invalid_parameter("pageSize") from exc
        if not 1 <= page_size <= 1000:
            raise errors.invalid_parameter("pageSize", "Invalid value for pageSize (1-1000).")
        q, order_by = query.get("q"), query.get("orderBy")
        signature = f"{q}|{order_by}"
        offset = 0
        if "pageToken" in query:
            try:
                raw = urlsafe_b64decode(query["pageToken"].encode()).decode()
                offset_text, _, token_sig = raw.partition("|")
                offset = int(offset_text)
            except ValueError as exc:
                raise errors.invalid_parameter("pageToken") from exc
            if token_sig != signature or offset < 0:
                raise errors.invalid_parameter("pageToken", "Invalid pageToken for this query.")
        matched = self.store.query(parse_q(q, self.store.root_id), parse_order_by(order_by))
        page = matched[offset : offset + page_size]
        result: dict[str, Any] = {
            "kind": "drive#fileList",
            "incompleteSearch": False,
            "files": [f.resource(_listed_fields(tree)) for f in page],
        }
        if offset + page_size < len(matched):
            token = f"{offset + page_size}|{signature}"
            result["nextPageToken"] = urlsafe_b64encode(token.encode()).decode()
        return _json(select(result, tree))

    async def _files_create(self, call: _Call) -> web.Response:
        request, body = call.request, call.body
        made = self.store.create(parse_json_body(body), None)
        return self._file_response(request, made)

    async def _files_get(self, call: _Call) -> web.Response:
        request = call.request
        return self._file_response(request, self.store.get(call.file_id or ""))

    async def _files_update(self, call: _Call) -> web.Response:
        request, body = call.request, call.body
        updated = self.store.update(
            call.file_id or "",
            parse_json_body(body),
            None,
            add_parents=_id_list(request.query.get("addParents")),
            remove_parents=_id_list(request.query.get("removeParents")),
        )
        return self._file_response(request, updated)

    async def _files_delete(self, call: _Call) -> web.Response:
        self.store.delete(call.file_id or "")
        return web.Response(status=204)

    async def _files_get_media(self, call: _Call) -> web.Response:
        request = call.request
        found = self.store.get(call.file_id or "")
        if found.is_folder or found.content is None:
            raise errors.DriveError(
                403,
                "fileNotDownloadable",
                "Only files with binary content can be downloaded.",
                location="alt",
                location_type="parameter",
            )
        content = found.content
        total = len(content)
        header = request.headers.get("Range")
        base = {"Content-Type": found.mime_type, "Accept-Ranges": "bytes"}
        if header is None:
            return web.Response(body=content, headers=base)
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
        if m is None or m.group(1) == m.group(2) == "":
            raise errors.bad_request(f"Malformed Range header {header!r}")
        if m.group(1) == "":
            start, end = max(0, total - int(m.group(2))), total - 1
        else:
            start = int(m.group(1))
            end = min(int(m.group(2)), total - 1) if m.group(2) else total - 1
        if start >= total or start > end:
            return web.Response(
                status=416,
                headers={**base, "Content-Range": f"bytes */{total}"},
                text="Requested range not satisfiable",
            )
        return web.Response(
            status=206,
            body=content[start : end + 1],
            headers={**base, "Content-Range": f"bytes {start}-{end}/{total}"},
        )

    # --- uploads ----------------------------------------------------------------------

    async def _upload_media(self, call: _Call) -> web.Response:
        request, body = call.request, call.body
        mime = request.headers.get("Content-Type", "application/octet-stream")
        if call.file_id:
            made = self.store.update(call.file_id, {}, body)
        else:
            made = self.store.create({"mimeType": mime}, body)
        return self._file_response(request, made)

    async def _upload_multipart(self, call: _Call) -> web.Response:
        request, body = call.request, call.body
        metadata, media, media_type = split_multipart(request.headers.get("Content-Type", ""), body)
        if call.file_id:
            made = self.store.update(
                call.file_id,
                metadata,
                media,
                add_parents=_id_list(request.query.get("addParents")),
                remove_parents=_id_list(request.query.get("removeParents")),
            )
        else:
            if "mimeType" not in metadata and media_type:
                metadata["mimeType"] = media_type
            made = self.store.create(metadata, media)
        return self._file_response(request, made)

    async def _upload_start(self, call: _Call) -> web.Response:
        request, body = call.request, call.body
        declared = request.headers.get("X-Upload-Content-Length")
        if declared is not None and not declared.isdigit():
            raise errors.bad_request("X-Upload-Content-Length must be a byte count.")
        fields = request.query.get("fields")
        if fields is not None:
            known = discovery.schemas()
            validate_fields(parse_fields(fields), known["File"], known)
        session = self.store.open_session(
            UploadSession(
                id=secrets.token_urlsafe(32),
                file_id=call.file_id,
                metadata=parse_json_body(body),
                fields=fields,
                mime_type=request.headers.get("X-Upload-Content-Type"),
                declared_length=int(declared) if declared is not None else None,
                add_parents=_id_list(request.query.get("addParents")),
                remove_parents=_id_list(request.query.get("removeParents")),
            )
        )
        location = f"http://{request.host}{request.path}?" + urlencode(
            {"uploadType": "resumable", "upload_id": session.id}
        )
        return web.Response(
            status=200, headers={"Location": location, "X-GUploader-UploadID": session.id}
        )

    def _session_result(self, session: UploadSession) -> web.Response:
        found = self.store.get(session.result_id or "")
        tree = parse_fields(session.fields) if session.fields else _FILE_DEFAULT
        return _json(select(found.resource(tree), tree))

    @staticmethod
    def _incomplete(session: UploadSession) -> web.Response:
        headers = {"X-GUploader-UploadID": session.id}
        if session.received:
            headers["Range"] = f"bytes=0-{len(session.received) - 1}"
        return web.Response(status=308, headers=headers)

    async def _upload_status(self, call: _Call) -> web.Response:
        request = call.request
        session = self.store.session(request.query["upload_id"])
        if session.result_id is not None:
            return self._session_result(session)
        total = query_total(session, request.headers.get("Content-Range", ""))
        if total is not None and total == len(session.received):
            self.store.finish_session(session)
            return self._session_result(session)
        return self._incomplete(session)

    async def _upload_chunk(self, call: _Call) -> web.Response:
        request, body = call.request, call.body
        session = self.store.session(request.query["upload_id"])
        if session.result_id is not None:
            return self._session_result(session)
        have = len(session.received)
        last = check_chunk(session, request.headers.get("Content-Range"), body)
        session.received.extend(body)
        if not last:
            return self._incomplete(session)
        try:
            self.store.finish_session(session)
        except errors.DriveError:
            del session.received[have:]
            raise
        return self._session_result(session)


class _Dropped(Exception):
    """The connection was reset on purpose; nothing may be written."""


class _IncompleteBody(errors.DriveError):
    def __init__(self) -> None:
        super().__init__(
            400,
            "badRequest",
            "Request body shorter than its Content-Length (did the client resend a spent stream?)",
        )
