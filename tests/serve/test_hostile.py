"""Each class of bad input (tests/serve/hostile.py) once over HTTP, on every endpoint it can
reach: never a 5xx, every refusal a 4xx JSON body with an error, and the service ready after
each case. The decoder's generated inputs run in-process in test_decode_fuzz.py."""

from __future__ import annotations

import httpx
import pytest

from tests.serve import hostile, images

pytestmark = pytest.mark.slow

UPLOADS = {
    "/classify": lambda data: {"image": ("x.bin", data, "application/octet-stream")},
    "/stylize": lambda data: {"content": ("c.bin", data), "style": ("s.png", images.png(1))},
    "/monet": lambda data: {"photo": ("p.bin", data)},
}
ADMIN_POSTS = ("/admin/weight", "/admin/reload", "/admin/rollback", "/admin/status")


def assert_handled(r: httpx.Response, what: str) -> None:
    assert r.status_code < 500, f"{what}: {r.status_code} {r.text[:300]}"
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith("application/json"), what
        assert r.json().get("error"), f"{what}: no error in {r.text[:200]}"


def assert_ready(client: httpx.Client, what: str) -> None:
    assert client.get("/readyz", timeout=10).status_code == 200, f"not ready after {what}"


@pytest.mark.parametrize("cls", sorted(hostile.IMAGE_CLASSES))
def test_image_classes_on_every_upload_endpoint(client, cls):
    for name, data in hostile.IMAGE_CLASSES[cls]().items():
        for path, files in UPLOADS.items():
            what = f"{cls}/{name} -> {path}"
            assert_handled(client.post(path, files=files(data), timeout=120), what)
        assert_ready(client, f"{cls}/{name}")


def test_new_photo_formats_are_classified(client):
    enc, box = hostile.encoding(), hostile.container()
    for name, data in {
        "heif": enc["format_heif"],
        "avif": enc["format_avif"],
        "webp": enc["format_webp"],
        "mpo": box["mpo_two_frames"],
        "exif_not_tiff": hostile.metadata()["exif_not_tiff"],
    }.items():
        r = client.post("/classify", files=UPLOADS["/classify"](data))
        assert r.status_code == 200, f"{name}: {r.text}"
    r = client.post("/monet", files=UPLOADS["/monet"](hostile.geometry()["wide_4000x40"]))
    assert r.status_code == 422 and "aspect ratio" in r.json()["error"]


def test_body_shapes_on_admin_endpoints_before_the_token(client, admin_headers):
    """Refused by shape before the token is looked at (no token sent: still not a 401), and
    with the token the same bodies are still 4xx, never a 5xx."""
    for name, (body, content_type) in hostile.body_shapes().items():
        headers = {"content-type": content_type} if content_type else {}
        for path in ADMIN_POSTS:
            r = client.post(path, content=body, headers=headers)
            assert_handled(r, f"{name} -> {path}")
            assert 400 <= r.status_code < 500, f"{name} -> {path}: {r.status_code}"
        r = client.post("/admin/weight", content=body, headers={**headers, **admin_headers})
        assert_handled(r, f"{name} -> /admin/weight with the token")
        assert 400 <= r.status_code < 500, f"{name}: {r.status_code} {r.text[:200]}"
        if name.startswith(("deeply", "oversized")):
            no_token = client.post("/admin/weight", content=body, headers=headers)
            assert no_token.status_code in (400, 413), f"{name}: token checked first"
    assert_ready(client, "admin body shapes")
