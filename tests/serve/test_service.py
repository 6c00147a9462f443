"""The real service over HTTP: one `bentoml serve` subprocess per session (conftest).

Tests that move shared state (A/B weight, champion alias) put it back before they end.
"""

from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from PIL import Image

from artflow.serve.router import CHALLENGER, CHAMPION, Router
from tests.serve import images
from tests.serve.conftest import ADMIN_TOKEN, set_champion

pytestmark = pytest.mark.slow


def classify(client: httpx.Client, data: bytes, key: str | None = None, **form) -> httpx.Response:
    headers = {"X-Client-Key": key} if key else {}
    files = {"image": ("upload.bin", data, "application/octet-stream")}
    return client.post("/classify", files=files, data=form, headers=headers)


def status(client: httpx.Client) -> dict:
    """The full status (the admin view)."""
    return client.get("/status", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()


def wait_loaded(client: httpx.Client, key: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = status(client)
        if body["models"][key]["loaded"] or body["state"] in ("ready", "failed"):
            return body
        time.sleep(1)
    return status(client)


def keys_for(variant: str, weight: float, n: int) -> list[str]:
    router = Router(weight)
    return [k for i in range(10_000) if router.assign(k := f"key-{i}") == variant][:n]


def set_weight(client: httpx.Client, admin_headers: dict, weight: float) -> None:
    r = client.post("/admin/weight", json={"weight": weight}, headers=admin_headers)
    assert r.status_code == 200, r.text


def metric(client: httpx.Client, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


# --------------------------------------------------------------------------- health


def test_ready_once_the_champion_is_loaded(client, server):
    assert client.get("/readyz", timeout=5).status_code == 200
    assert client.get("/livez", timeout=5).status_code == 200
    assert client.get("/healthz", timeout=5).status_code == 200
    models = status(client)["models"]
    assert models["classifier:champion"]["version"] == server.versions["v2"]
    assert models["classifier:challenger"]["version"] == server.versions["v3"]


# --------------------------------------------------------------------------- endpoints


@pytest.mark.parametrize("name", sorted(images.GOOD))
def test_classify_answers_every_accepted_format(client, server, name):
    r = classify(client, images.GOOD[name], key=f"fmt-{name}")
    assert r.status_code == 200, r.text
    body = r.json()
    probs = [row["probability"] for row in body["top"]]
    assert len(probs) == 3 and probs == sorted(probs, reverse=True) and sum(probs) <= 1.0001
    assert body["artist"] == body["top"][0]["artist"]
    expected = {CHAMPION: server.versions["v2"], CHALLENGER: server.versions["v3"]}
    assert body["model"]["version"] == expected[body["variant"]]
    assert body["latency_ms"] > 0
    assert r.headers["X-Artflow-Variant"] == body["variant"]


def test_classify_top_k_is_bounded_by_the_labels(client):
    body = classify(client, images.png(), top_k="10").json()
    assert len(body["top"]) == 4  # the tiny models know four artists
    refused = classify(client, images.png(), top_k="0")  # out of range: 422 naming the bound
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "invalid_parameter" and refused.json()["field"] == "top_k"
    assert "greater than or equal to 1" in refused.json()["error"]


def test_stylize_fast_returns_an_image_of_the_content_size(client):
    assert wait_loaded(client, "stylizer")["models"]["stylizer"]["loaded"]
    files = {
        "content": ("c.png", images.png(1, w=64, h=48), "image/png"),
        "style": ("s.jpg", images.jpeg(2), "image/jpeg"),
    }
    r = client.post("/stylize", files=files, data={"strength": "0.5"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(r.content)).size == (64, 48)
    jpg = client.post("/stylize", files=files, data={"format": "jpeg"})
    assert jpg.status_code == 200 and jpg.content[:2] == b"\xff\xd8"
    bad = client.post("/stylize", files=files, data={"strength": "1.5"})
    assert bad.status_code == 422 and "less than or equal to 1" in bad.json()["error"]


def test_stylize_gatys_is_bounded_and_works(client):
    files = {
        "content": ("c.png", images.png(3, w=40, h=40), "image/png"),
        "style": ("s.png", images.png(4), "image/png"),
    }
    r = client.post("/stylize", files=files, data={"method": "gatys", "steps": "2", "size": "32"})
    assert r.status_code == 200, r.text
    assert Image.open(io.BytesIO(r.content)).size == (32, 32)  # the working size
    assert "vgg19" in r.headers["X-Artflow-Model-Version"]


def test_monet_translates_a_photo(client):
    assert wait_loaded(client, "monet")["models"]["monet"]["loaded"]
    files = {"photo": ("p.jpg", images.jpeg(5), "image/jpeg")}
    r = client.post("/monet", files=files)
    assert r.status_code == 200, r.text
    # The working size: the generator's training size (32 px in the tests) on the shorter side.
    assert Image.open(io.BytesIO(r.content)).size == (38, 32)
    assert r.headers["X-Artflow-Model-Version"]


# --------------------------------------------------------------------------- A/B


def test_ab_assignment_follows_the_weight_and_is_sticky(client, admin_headers):
    set_weight(client, admin_headers, 0.3)
    try:
        keys = [f"user-{i}" for i in range(40)]

        def variant(key: str) -> str:
            r = classify(client, images.png(7), key=key)
            assert r.status_code == 200, r.text
            return r.json()["variant"]

        with ThreadPoolExecutor(8) as pool:
            first = list(pool.map(variant, keys))
            second = list(pool.map(variant, keys))
        assert first == second  # sticky
        router = Router(0.3)
        assert first == [router.assign(k) for k in keys]  # the documented hash split
        assert {CHAMPION, CHALLENGER} == set(first)
    finally:
        set_weight(client, admin_headers, 0.1)


def test_metrics_count_per_variant(client, admin_headers):
    set_weight(client, admin_headers, 0.5)
    try:
        plan = {CHAMPION: keys_for(CHAMPION, 0.5, 3), CHALLENGER: keys_for(CHALLENGER, 0.5, 2)}
        before = {
            v: metric(
                client, "artflow_requests_total", endpoint="classify", variant=v, status="200"
            )
            for v in plan
        }
        hist_before = metric(
            client, "artflow_request_latency_seconds_count", endpoint="classify", variant=CHALLENGER
        )
        for variant, keys in plan.items():
            for key in keys:
                assert classify(client, images.png(8), key=key).json()["variant"] == variant
        for variant, keys in plan.items():
            after = metric(
                client, "artflow_requests_total", endpoint="classify", variant=variant, status="200"
            )
            assert after - before[variant] == len(keys)
        hist_after = metric(
            client, "artflow_request_latency_seconds_count", endpoint="classify", variant=CHALLENGER
        )
        assert hist_after - hist_before == 2
        assert metric(client, "artflow_predictions_total", variant=CHALLENGER) >= 2
    finally:
        set_weight(client, admin_headers, 0.1)


def test_outputs_are_capped_at_the_working_size(client):
    big = images.png(13, w=1600, h=1200)
    files = {"content": ("c.png", big, "image/png"), "style": ("s.png", images.png(2), "image/png")}
    r = client.post("/stylize", files=files, data={"size": "96"})
    assert r.status_code == 200, r.text
    assert Image.open(io.BytesIO(r.content)).size == (96, 72)
    r = client.post("/monet", files={"photo": ("p.png", big, "image/png")}, data={"size": "64"})
    assert r.status_code == 200, r.text
    assert Image.open(io.BytesIO(r.content)).size == (64, 48)


# --------------------------------------------------------------------------- admin


def test_public_status_shows_only_health(client):
    public = client.get("/status").json()
    assert set(public) == {"state", "ready", "model_source", "models"}
    assert public["model_source"] == "registry"  # `artflow serve`; a built Bento says "bento"
    text = client.get("/status").text
    for secret in ("tracking_uri", "sqlite", "prediction_log", "error", "predictions.jsonl"):
        assert secret not in text, secret
    full = status(client)
    assert {"tracking_uri", "prediction_log", "challenger_weight", "gatys"} <= set(full)
    wrong = client.get("/status", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403 and "tracking_uri" not in wrong.text


def test_rollback_to_a_version_that_does_not_load_moves_nothing(client, server, admin_headers):
    v1, v2 = server.versions["v1"], server.versions["v2"]
    set_champion(v2, history=["999", v2])  # the previous champion was deleted since
    try:
        r = client.post("/admin/rollback", json={}, headers=admin_headers)
        assert r.status_code == 409, r.text
        assert "999" in r.json()["error"] and "nothing was changed" in r.json()["hint"]
        from artflow.registry import tracking

        assert str(tracking.alias_version(tracking.CLASSIFIER, tracking.CHAMPION).version) == v2
        assert status(client)["models"]["classifier:champion"]["version"] == v2
        assert client.get("/readyz", timeout=5).status_code == 200
    finally:
        set_champion(v2, history=[v1, v2])


def test_admin_requires_the_token(client, admin_headers):
    assert client.post("/admin/weight", json={"weight": 0.9}).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert client.post("/admin/weight", json={"weight": 0.9}, headers=wrong).status_code == 403
    assert client.post("/admin/reload", headers=wrong).status_code == 403
    assert status(client)["challenger_weight"] == 0.1  # nothing changed
    r = client.post("/admin/weight", json={"weight": 1.5}, headers=admin_headers)
    assert r.status_code == 422 and r.json()["field"] == "weight"
    set_weight(client, admin_headers, 0.25)
    assert status(client)["challenger_weight"] == 0.25
    set_weight(client, admin_headers, 0.1)


def test_rollback_switches_the_champion_and_readyz_tells_the_truth(client, server, admin_headers):
    v1, v2 = server.versions["v1"], server.versions["v2"]
    champion_key = keys_for(CHAMPION, 0.1, 1)[0]
    try:
        r = client.post("/admin/rollback", json={}, headers=admin_headers)
        assert r.status_code == 200, r.text
        assert (r.json()["demoted"], r.json()["champion"]) == (v2, v1)
        assert status(client)["models"]["classifier:champion"]["version"] == v1
        answer = classify(client, images.png(9), key=champion_key).json()
        assert (answer["variant"], answer["model"]["version"]) == (CHAMPION, v1)

        # No champion at all: not ready, and /classify says why instead of failing.
        from artflow.registry import tracking

        tracking.client().delete_registered_model_alias(tracking.CLASSIFIER, tracking.CHAMPION)
        assert client.post("/admin/reload", headers=admin_headers).status_code == 200
        assert client.get("/readyz", timeout=5).status_code == 503
        down = classify(client, images.png(9), key=champion_key)
        assert down.status_code == 503 and "not loaded" in down.json()["error"]
    finally:
        set_champion(v2, history=[v1, v2])
        client.post("/admin/reload", headers=admin_headers)
    assert client.get("/readyz", timeout=5).status_code == 200
    assert status(client)["models"]["classifier:champion"]["version"] == v2


# --------------------------------------------------------------------------- bad input


def bad_requests(client: httpx.Client) -> dict[str, httpx.Response]:
    out = {name: classify(client, data) for name, (data, _) in images.BAD.items()}
    out["no_body"] = client.post("/classify")
    out["json_body"] = client.post("/classify", json={"image": "http://127.0.0.1:1/x.png"})
    out["raw_not_an_image"] = client.post(
        "/classify", content=b"not an image", headers={"content-type": "image/jpeg"}
    )
    out["raw_truncated"] = client.post(
        "/classify",
        content=images.png()[:60],
        headers={"content-type": "application/octet-stream"},
    )
    out["raw_bad_top_k"] = client.post(
        "/classify?top_k=0", content=images.png(), headers={"content-type": "image/png"}
    )
    out["text_plain"] = client.post(
        "/classify", content=b"hi", headers={"content-type": "text/plain"}
    )
    out["url_in_file_field"] = client.post(
        "/classify", files={"image": (None, "http://127.0.0.1:1/x.png")}
    )
    out["wrong_field"] = client.post("/classify", files={"picture": ("a.png", images.png())})
    out["broken_multipart"] = client.post(
        "/classify",
        content=b'--b\r\nContent-Disposition: form-data; name="image"\r\n\r\nxx',
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    out["too_large"] = classify(client, b"\0" * (11 * 2**20))
    out["bad_top_k"] = classify(client, images.png(), top_k="many")
    out["stylize_one_file"] = client.post("/stylize", files={"content": ("c.png", images.png())})
    out["stylize_bad_method"] = client.post(
        "/stylize",
        data={"method": "magic"},
        files={"content": ("c.png", images.png()), "style": ("s.png", images.png())},
    )
    out["monet_not_image"] = client.post("/monet", files={"photo": ("p.jpg", b"GIF89a...")})
    tiny = images.png(w=16, h=16)  # decodes, but is smaller than the networks accept
    out["monet_tiny"] = client.post("/monet", files={"photo": ("p.png", tiny)})
    out["stylize_tiny"] = client.post(
        "/stylize", files={"content": ("c.png", tiny), "style": ("s.png", images.png())}
    )
    out["admin_bad_json"] = client.post(
        "/admin/weight", content=b"{oops", headers={"content-type": "application/json"}
    )
    return out


def test_a_raw_image_body_is_classified_like_the_multipart_upload(client):
    """`curl --data-binary @photo.jpg -H 'content-type: image/jpeg'`: the body is the image,
    parameters go in the query string; the answer equals the multipart one."""
    data = images.jpeg(5)
    raw = client.post(
        "/classify?top_k=4",
        content=data,
        headers={"content-type": "image/jpeg", "X-Client-Key": "raw-1"},
    )
    form = classify(client, data, key="raw-1", top_k="4")
    assert raw.status_code == 200 and form.status_code == 200, raw.text
    assert raw.json()["top"] == form.json()["top"] and len(raw.json()["top"]) == 4
    assert raw.headers["X-Artflow-Variant"] == raw.json()["variant"]


def test_malformed_input_gets_4xx_json_and_the_service_lives_on(client):
    responses = bad_requests(client)
    for name, r in responses.items():
        assert 400 <= r.status_code < 500, f"{name}: {r.status_code} {r.text[:200]}"
        assert r.headers["content-type"].startswith("application/json"), name
        error = r.json().get("error")
        assert error, f"{name}: no error message in {r.text[:200]}"
        assert r.json().get("code"), f"{name}: no error code in {r.text[:200]}"
    for name, (_, expected) in images.BAD.items():
        assert responses[name].status_code == expected, name
    assert responses["too_large"].status_code == 413
    assert responses["raw_not_an_image"].status_code == 422
    assert responses["raw_truncated"].status_code == 422
    assert responses["raw_bad_top_k"].status_code == 422
    assert responses["text_plain"].status_code == 415
    for code in ("413", "415", "422"):  # refusals by the guard and by the endpoint are counted
        assert metric(client, "artflow_rejected_inputs_total", endpoint="classify", status=code)
    assert client.get("/livez", timeout=5).status_code == 200
    assert classify(client, images.png()).status_code == 200


def test_routes_that_do_not_exist_or_wrong_methods(client):
    assert client.get("/classify").status_code == 405
    assert client.post("/nope", content=b"x").status_code == 404


# --------------------------------------------------------------------------- log and page


def test_prediction_log_has_what_drift_needs_and_no_image(client, server):
    import json

    from artflow.monitor.features import FEATURE_NAMES
    from artflow.monitor.records import SCHEMA_VERSION, segment_files

    def lines() -> list[str]:
        return [line for f in segment_files(server.prediction_log) for line in f.open()]

    def classify_records() -> list[dict]:
        return [r for r in map(json.loads, lines()) if r["endpoint"] == "classify"]

    before = len(classify_records()) if server.prediction_log.exists() else 0
    classify(client, images.jpeg(12), key="log-check")
    deadline = time.monotonic() + 10  # written by the service's log thread, after the answer
    while len(records := classify_records()) <= before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(records) > before
    last = records[-1]
    for key in (
        "schema_version",
        "prediction_id",
        "timestamp",
        "variant",
        "model_name",
        "model_version",
        "artist",
        "confidence",
        "latency_ms",
    ):
        assert key in last, key
    assert last["schema_version"] == SCHEMA_VERSION
    assert set(last["features"]) == set(FEATURE_NAMES)
    assert len(last["embedding"]) == 8  # the tiny CNN's dense_units
    assert max(len(line) for line in lines()) < 5000
    # The drift monitor's own reader takes every classify record, with its embedding.
    from artflow.monitor.records import read_log as drift_read_log

    parsed = drift_read_log(server.prediction_log)
    assert len(parsed.frame) == len(records)
    chosen = {"family:cnn", "family:resnet50"}  # /classify family=... (test_study_service.py)
    assert set(parsed.frame["variant"]) <= {CHAMPION, CHALLENGER} | chosen
    # every record has its embedding; the tiny CNNs' are 8 long (test_explain_service.py also
    # serves a trained CNN and a ResNet50-family version, with embeddings of their own size)
    tiny = {server.versions[k] for k in ("v1", "v2", "v3")}  # the classifier's (not monet's)
    for version, e in zip(parsed.frame["model_version"], parsed.embeddings, strict=True):
        assert e is not None and (len(e) == 8 or version not in tiny), (version, len(e or []))


def test_web_page_is_served_without_external_resources(client):
    page = client.get("/ui")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assets = [client.get(f"/ui/assets/{name}") for name in ("app.js", "style.css")]
    assert all(a.status_code == 200 for a in assets)
    for text in [page.text, *(a.text for a in assets)]:
        assert "http://" not in text.replace('"http://www.w3.org/2000/svg"', "")
        assert "https://" not in text
    for tool in ("classify-tool", "stylize-tool", "monet-tool"):
        assert f'id="{tool}"' in page.text
