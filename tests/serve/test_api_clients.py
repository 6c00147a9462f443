"""Every endpoint through BentoML's own client and through a client built from /docs.json,
against the session's real `artflow serve` (tests/serve/conftest.py)."""

from __future__ import annotations

import pytest
from PIL import Image

from tests.serve import images
from tests.serve.conftest import ADMIN_TOKEN
from tests.serve.openapi_client import SchemaClient

pytestmark = pytest.mark.slow

APIS = {
    "classify",
    "stylize",
    "monet",
    "feedback",
    "admin_weight",
    "admin_reload",
    "admin_rollback",
    "admin_status",
    "gatys_job",
}


def test_bentomls_client_calls_every_api(server, tmp_path) -> None:
    import bentoml
    from bentoml.exceptions import BentoMLException

    picture = tmp_path / "painting.png"
    picture.write_bytes(images.png(5, w=64, h=48))
    with bentoml.SyncHTTPClient(server.url, token=ADMIN_TOKEN, timeout=120) as client:
        assert set(client.endpoints) >= APIS
        answer = client.classify(image=picture, top_k=2, family=None)
        assert len(answer["top"]) == 2 and answer["artist"] == answer["top"][0]["artist"]
        stored = client.feedback(prediction_id=answer["prediction_id"], correct=True)
        assert stored["stored"] is True
        styled = client.stylize(content=picture, style=picture, strength=0.5)
        assert isinstance(styled, Image.Image) and styled.size == (64, 48)
        assert isinstance(client.monet(photo=picture), Image.Image)
        job = client.gatys_job(content=picture, style=picture, steps=1, size=32)
        assert job["state"] == "queued" and job["steps"] == 1
        assert client.request("GET", job["progress"]).json()["job"] == job["job"]
        status = client.admin_status()
        assert status["models"]["classifier:champion"]["loaded"]
        weight = status["challenger_weight"]
        assert client.admin_weight(weight=weight)["weight"] == weight
        assert "every_pod" in client.admin_reload()
        with pytest.raises(BentoMLException) as refused:  # no earlier stylizer to restore
            client.admin_rollback(model="stylizer")
        assert refused.value.error_code == 409
        # the routes of the mounted page app: GETs, reachable through the same client
        assert client.request("GET", "/status").json()["ready"] is True
        assert client.request("GET", "/gallery").status_code == 200


def test_a_client_built_from_the_schema_classifies(client) -> None:
    doc = client.get("/docs.json").json()
    schema_client = SchemaClient(client, doc)
    op = schema_client.op("post", "/classify")
    r = schema_client.request(op, {"image": images.png(3), "top_k": 2})
    assert r.status_code == 200, r.text
    assert len(r.json()["top"]) == 2
    admin = schema_client.op("post", "/admin/status")
    denied = schema_client.request(admin, {})
    assert denied.status_code == 401 and denied.json()["code"] == "unauthorized"
    ok = schema_client.request(admin, {}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert ok.status_code == 200 and "challenger_weight" in ok.json()
