"""One error model for every answer of the service: `{"error": message, "code": machine-code}`.

The endpoints raise `ApiError` (artflow.serve.validation), whose body already has this shape.
What they do not write themselves passes through `ErrorEnvelope`, an ASGI middleware in front
of every route: BentoML's own refusals (its input validation answers 400 with a pydantic
`detail` list; an unknown route or method answers plain text) are rewritten here, so clients
read one shape, and BentoML's validation of a parameter's bounds becomes a 422 naming the
bound (`top_k: Input should be less than or equal to 100`) instead of a 400. Only error
answers are buffered; a 200 streams through untouched.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The machine-readable code of each status the service answers (the schema lists them).
CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
    504: "timeout",
}
# pydantic error types that mean the body could not be read at all (400), not a bad value (422)
_UNREADABLE = ("json_invalid", "json_type", "model_type", "model_attributes_type")


def code_for(status: int) -> str:
    return CODES.get(status, "error")


def error_body(status: int, message: str, code: str | None = None, **extra: Any) -> dict:
    return {"error": message, "code": code or code_for(status), **extra}


def normalise(status: int, payload: Any) -> tuple[int, dict[str, Any]]:
    """An error answer -> (status, body) in the shared model. BentoML's pydantic validation
    (400 with `detail`) becomes a 422 that names the field and the bound it broke."""
    if isinstance(payload, list) and len(payload) == 1:  # BentoML wraps some errors in a list
        payload = payload[0]
    if not isinstance(payload, dict):
        text = payload if isinstance(payload, str) and payload else f"HTTP {status}"
        return status, error_body(status, text)
    detail = payload.get("detail")
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        loc = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body",))
        kind = str(first.get("type", ""))
        status = 400 if kind in _UNREADABLE else 422
        message = f"{loc}: {first.get('msg', 'invalid value')}" if loc else first.get("msg", "")
        more = len(detail) - 1
        if more:
            message += f" (and {more} more problem{'s' if more > 1 else ''})"
        code = "bad_request" if status == 400 else "invalid_parameter"
        return status, error_body(status, message, code, **({"field": loc} if loc else {}))
    body = dict(payload)
    error = body.get("error")
    if not isinstance(error, str) or not error:
        body["error"] = str(error or body.get("message") or f"HTTP {status}")
    body.setdefault("code", code_for(status))
    return status, body


class ErrorEnvelope:
    """Rewrite every error answer (status >= 400) into the shared error model."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                if message["status"] < 400:
                    await send(message)
                    return
                start = message
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                await _send_normalised(send, start, b"".join(chunks))

        await self.app(scope, receive, capture)


async def _send_normalised(send: Send, start: Message, raw: bytes) -> None:
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
    kind = dict(headers).get(b"content-type", b"").decode("latin-1").lower()
    try:
        payload: Any = json.loads(raw) if "json" in kind else raw.decode("utf-8", "replace")
    except ValueError:
        payload = raw.decode("utf-8", "replace")
    status, body = normalise(start["status"], payload)
    out = json.dumps(body).encode()
    headers = [(k, v) for k, v in headers if k.lower() != b"content-type"]
    headers += [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]
    await send({**start, "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": out, "more_body": False})
