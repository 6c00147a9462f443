"""An ASGI middleware that refuses bad requests before BentoML parses them or a model runs.

BentoML sets no request body limit (docs/stack-notes.md), and its file inputs also accept a URL in
place of a file, which it then downloads: a server-side request forgery vector. So, in
front of the API:
  * every POST body is read here, counted against `max_body_bytes` (Content-Length is
    checked first, and the stream is counted too, since the header can lie or be absent);
  * the upload endpoints BentoML parses (`upload_fields`) accept only multipart/form-data
    whose image fields are real file parts (not text, hence not URLs), and an empty body is
    refused (`parse_upload`);
  * an upload endpoint with a raw field (`raw_fields`: /classify's `image`) also takes the image
    itself as the body (Content-Type image/* or application/octet-stream, parameters in the
    query string): the guard re-encodes such a request, and a multipart one with parameters
    in the query string, as the multipart form BentoML's API parses (form fields win over
    the query string), so one API serves every shape the schema documents; an empty text
    field of a form is left out (not given);
  * JSON endpoints (admin) must carry a JSON object of at most `max_json_bytes`, nested at
    most `max_json_depth` deep: checked here, before the admin token, so no body shape can
    reach a parser that recurses (Python's json raises RecursionError, pydantic worse).
The buffered body is then replayed to the application unchanged.
Every refusal is a 4xx JSON body {"error": ...}.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse

from artflow.serve.envelope import error_body

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


RAW_BINARY = "application/octet-stream"
BODY_KEY = "artflow.body"  # the (re-encoded) body, in the ASGI scope: relayed as it is to a peer
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class BodyTooLarge(Exception):
    pass


class RequestGuard:
    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        upload_fields: Mapping[str, Sequence[str]],
        json_paths: Sequence[str] = (),
        raw_fields: Mapping[str, str] | None = None,
        on_refuse: Callable[[str, int], None] | None = None,
        max_json_bytes: int = 64 * 1024,
        max_json_depth: int = 8,
    ) -> None:
        self.app = app
        self.on_refuse = on_refuse
        self.max_body_bytes = int(max_body_bytes)
        self.max_json_bytes = int(max_json_bytes)
        self.max_json_depth = int(max_json_depth)
        self.upload_fields = {p.rstrip("/"): tuple(f) for p, f in upload_fields.items()}
        self.json_paths = tuple(p.rstrip("/") for p in json_paths)
        self.raw_fields = {p.rstrip("/"): f for p, f in (raw_fields or {}).items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in {"POST", "PUT", "PATCH"}:
            await self.app(scope, receive, send)
            return
        path = scope["path"].rstrip("/")
        try:
            body = await self._read_body(scope, receive)
        except BodyTooLarge:
            limit_mb = self.max_body_bytes / 2**20
            await self._refuse(scope, send, 413, f"request body larger than {limit_mb:g} MB")
            return
        if path in self.raw_fields or path in self.upload_fields:
            try:
                scope, body = await self._as_form(scope, path, body)
            except UploadRefused as exc:
                await self._refuse(scope, send, exc.status, exc.message)
                return
        else:
            problem = await self._check(scope, path, body)
            if problem is not None:
                await self._refuse(scope, send, *problem)
                return
        await self.app(scope, _replay(body, then=receive), send)

    async def _as_form(self, scope: Scope, path: str, body: bytes) -> tuple[Scope, bytes]:
        """Check an upload (that may also be a raw body); -> (scope, body) as the multipart
        form BentoML parses. An empty text field means "not given", as an HTML form sends a
        blank choice (BentoML would validate "" against the field's type and refuse it)."""
        raw_field = self.raw_fields.get(path)
        fields = self.upload_fields.get(path, (raw_field,))
        upload = await parse_upload(scope, body, fields, raw_field=raw_field)
        kind = Request(scope).headers.get("content-type", "").split(";")[0].strip().lower()
        query = {}
        if raw_field is not None:  # only where the schema documents query parameters
            query = {
                k: v for k, v in Request(scope).query_params.items() if _PARAM_NAME.match(k) and v
            }
        given = {k: v for k, v in upload.params.items() if v != ""}
        multipart = kind == "multipart/form-data"
        if multipart and not (query.keys() - given.keys()) and len(given) == len(upload.params):
            scope[BODY_KEY] = body
            return scope, body
        params = {**query, **given} if multipart else query
        body, content_type = encode_multipart(upload.files, params)
        headers = [
            (k, v)
            for k, v in scope.get("headers", [])
            if k.lower() not in (b"content-type", b"content-length")
        ]
        headers += [
            (b"content-type", content_type.encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        scope = {**scope, "headers": headers, BODY_KEY: body}
        return scope, body

    async def _refuse(self, scope: Scope, send: Send, status: int, message: str) -> None:
        if self.on_refuse is not None:
            self.on_refuse(scope["path"], status)
        await _refuse(scope, send, status, message)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            raise BodyTooLarge
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _check(self, scope: Scope, path: str, body: bytes) -> tuple[int, str] | None:
        if path in self.upload_fields:
            return await _check_upload(scope, body, self.upload_fields[path])
        if any(path == p or path.startswith(p + "/") for p in self.json_paths) and body.strip():
            return self._check_json(scope, body)
        return None

    def _check_json(self, scope: Scope, body: bytes) -> tuple[int, str] | None:
        if len(body) > self.max_json_bytes:
            return 413, f"JSON body larger than {self.max_json_bytes} bytes"
        content_type = Request(scope).headers.get("content-type", "")
        kind = content_type.split(";")[0].strip().lower()
        if kind and kind != "application/json":
            return 415, f"content type {kind!r} is not accepted here: send application/json"
        depth = json_depth(body)
        if depth > self.max_json_depth:
            return 400, f"JSON nested {depth} levels deep, more than {self.max_json_depth}"
        try:
            value = json.loads(body, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            return 400, f"the request body is not valid JSON ({exc})"
        if not isinstance(value, dict):
            return 400, f"the JSON body must be an object, not {type(value).__name__}"
        return None


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def json_depth(body: bytes) -> int:
    """Deepest nesting of [ and { in a JSON text, strings skipped, without parsing it.

    Hand-written because the point is to measure before any recursive parser runs.
    """
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # closing quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


async def _check_upload(scope: Scope, body: bytes, fields: Sequence[str]) -> tuple[int, str] | None:
    try:
        upload = await parse_upload(scope, body, fields)
    except UploadRefused as exc:
        return exc.status, exc.message
    upload.files.clear()
    return None


class UploadRefused(Exception):
    """An upload request refused before any decode: `status` and a message naming the fix."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Upload:
    files: dict[str, bytes]  # file field -> its bytes
    params: dict[str, str]  # text fields (and, for a raw body, the query string)


async def parse_upload(
    scope: Scope, body: bytes, fields: Sequence[str], raw_field: str | None = None
) -> Upload:
    """The file fields of an upload body, parsed once; UploadRefused (4xx) for a bad shape.

    multipart/form-data must carry every field of `fields` as a real file part (a text value
    could be a URL, which BentoML would download). With `raw_field`, a body sent as the
    image itself (Content-Type image/* or application/octet-stream, as `curl --data-binary`
    with a content type sends it) is that field, and parameters come from the query string.
    """
    wanted = ", ".join(fields)
    if not body:
        raise UploadRefused(
            400, f"empty request body: send multipart/form-data with file field(s) {wanted}"
        )
    request = Request(scope, _replay(body))
    content_type = request.headers.get("content-type", "")
    kind = content_type.split(";")[0].strip().lower()
    if raw_field is not None and (kind.startswith("image/") or kind == RAW_BINARY):
        return Upload({raw_field: body}, dict(request.query_params))
    if kind != "multipart/form-data":
        also = f", or the image itself as image/* ({raw_field})" if raw_field else ""
        raise UploadRefused(
            415,
            f"content type {content_type or 'none'!r} is not accepted: send multipart/form-data "
            f"with file field(s) {wanted}{also}",
        )
    try:
        form = await request.form(max_files=8, max_fields=16)
    except Exception as exc:  # malformed multipart: starlette raises several types
        detail = getattr(exc, "detail", None) or getattr(exc, "message", None) or str(exc)
        raise UploadRefused(400, f"malformed multipart body: {detail}") from None
    try:
        files, params = {}, {}
        for name in fields:
            value = form.get(name)
            if value is None:
                raise UploadRefused(422, f"missing file field {name!r} (send field(s) {wanted})")
            if not isinstance(value, UploadFile):
                raise UploadRefused(
                    422, f"field {name!r} must be an uploaded file, not text or a URL"
                )
            files[name] = await value.read()
        for name, value in form.multi_items():
            if isinstance(value, str):
                params[name] = value
        return Upload(files, params)
    finally:
        await form.close()


def encode_multipart(files: Mapping[str, bytes], params: Mapping[str, str]) -> tuple[bytes, str]:
    """A multipart/form-data body of `files` and text `params`; -> (body, content type).
    Names are the endpoint's own fields or match _PARAM_NAME (nothing to escape); the
    boundary is random, so no value can end a part early."""
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in params.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        parts += [head.encode(), value.encode(), b"\r\n"]
    for name, data in files.items():
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{name}"\r\nContent-Type: {RAW_BINARY}\r\n\r\n'
        )
        parts += [head.encode(), data, b"\r\n"]
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _replay(body: bytes, then: Receive | None = None) -> Receive:
    """Hand out the buffered body once; afterwards wait on the real channel (`then`) so the
    application still notices a genuine client disconnect, and not a made-up one."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive


async def _refuse(scope: Scope, send: Send, status: int, message: str) -> None:
    async def no_body() -> Message:
        return {"type": "http.disconnect"}

    await JSONResponse(error_body(status, message), status_code=status)(scope, no_body, send)
