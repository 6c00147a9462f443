"""RequestGuard in front of an echo app: limits and refusals happen before the app runs."""

from __future__ import annotations

import asyncio
import json

import httpx

from artflow.serve.guard import RequestGuard

LIMIT = 1000
calls: list[bytes] = []


async def echo(scope, receive, send):
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    calls.append(body)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(len(body)).encode()})


APP = RequestGuard(
    echo, max_body_bytes=LIMIT, upload_fields={"/classify": ("image",)}, json_paths=["/admin"]
)


def post(path: str, **kwargs) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=APP)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post(path, **kwargs)

    calls.clear()
    return asyncio.run(go())


def refused(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    assert words in response.json()["error"]
    assert calls == []  # the application never saw the request


def test_a_valid_upload_reaches_the_app_unchanged():
    r = post("/classify", files={"image": ("a.png", b"x" * 100, "image/png")})
    assert r.status_code == 200
    assert len(calls) == 1 and b"x" * 100 in calls[0] and int(r.text) == len(calls[0])


def test_content_length_over_the_limit():
    refused(post("/classify", files={"image": ("a.png", b"x" * 2000)}), 413, "larger than")


def test_streamed_body_over_the_limit_without_content_length():
    async def chunks():
        for _ in range(20):
            yield b"y" * 100

    headers = {"content-type": "multipart/form-data; boundary=zzz"}
    refused(post("/classify", content=chunks(), headers=headers), 413, "larger than")


def test_upload_endpoints_want_multipart_file_fields():
    refused(post("/classify"), 400, "empty request body")
    refused(
        post("/classify", content=b"\x89PNG...", headers={"content-type": "image/png"}),
        415,
        "multipart/form-data",
    )
    refused(post("/classify", json={"image": "http://169.254.169.254/"}), 415, "not accepted")
    refused(post("/classify", data={"image": "http://example.com/a.png"}), 415, "not accepted")
    url_field = post("/classify", files={"image": (None, "http://example.com/a.png")})
    refused(url_field, 422, "must be an uploaded file")
    refused(post("/classify", files={"other": ("a.png", b"x")}), 422, "missing file field 'image'")
    broken = post(
        "/classify",
        content=b"--zzz\r\nnot a part",
        headers={"content-type": "multipart/form-data; boundary=zzz"},
    )
    assert broken.status_code in (400, 422) and calls == []


def test_admin_json_must_parse():
    refused(
        post(
            "/admin/weight", content=b"{weight: 0.3", headers={"content-type": "application/json"}
        ),
        400,
        "not valid JSON",
    )
    ok = post("/admin/weight", content=json.dumps({"weight": 0.3}))
    assert ok.status_code == 200 and calls


def test_other_posts_pass_through_within_the_limit():
    assert post("/internal/classify/champion", content=b"[]").status_code == 200
    refused(post("/anything", content=b"z" * (LIMIT + 1)), 413, "larger than")


async def _form_of(body: bytes, content_type: str) -> dict:
    """The multipart form the application received, parsed as BentoML parses it."""
    from starlette.requests import Request

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    headers = [(b"content-type", content_type.encode())]
    form = await Request({"type": "http", "headers": headers}, receive).form()
    return {k: (v if isinstance(v, str) else ("file", v.file.read())) for k, v in form.items()}


def test_a_raw_body_and_query_parameters_reach_the_api_as_its_form() -> None:
    seen: list = []

    async def app(scope, receive, send):
        message = await receive()
        headers = dict(scope["headers"])
        seen.append(await _form_of(message["body"], headers[b"content-type"].decode()))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    guard = RequestGuard(
        app, LIMIT, upload_fields={"/classify": ("image",)}, raw_fields={"/classify": "image"}
    )

    async def go(**kwargs) -> int:
        transport = httpx.ASGITransport(app=guard)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return (await client.post("/classify", **kwargs)).status_code

    raw = {"content": b"PNGDATA", "headers": {"content-type": "image/png"}}
    assert asyncio.run(go(params={"top_k": "2", "bad name": "x"}, **raw)) == 200
    assert seen[-1] == {"top_k": "2", "image": ("file", b"PNGDATA")}
    files = {"image": ("a.png", b"PNGDATA")}
    form = {"top_k": "3", "family": ""}  # a blank choice: not given; the form wins the query
    assert asyncio.run(go(files=files, data=form, params={"top_k": "9", "explain": "1"})) == 200
    assert seen[-1] == {"explain": "1", "top_k": "3", "image": ("file", b"PNGDATA")}
