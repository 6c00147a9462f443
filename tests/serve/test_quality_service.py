"""Sampled quality scores and user ratings of served stylizations and Monet paintings, through
the session server (its params score every answer: serve.quality_sample 1.0, a queue of 4).

The answer carries its id; the scores arrive later in the serving store from the worker
process (nice 19) and in /metrics per model version; a rating to the id is stored once, and
every bad rating gets the error envelope."""

from __future__ import annotations

import os
import time

import pytest

from tests.serve import images
from tests.serve.conftest import server_store, wait_for_scoring_room, wait_scored

pytestmark = pytest.mark.slow

HEADER = "x-artflow-answer-id"


def test_answers_are_scored_off_the_request_path_by_a_niced_worker(client, server, admin_headers):
    wait_for_scoring_room(client, 2)
    files = {"content": ("c.png", images.png(1)), "style": ("s.png", images.png(2))}
    stylized = client.post("/stylize", files=files)
    painted = client.post("/monet", files={"photo": ("p.png", images.png(3))})
    assert stylized.status_code == painted.status_code == 200, (stylized.text, painted.text)
    ids = [stylized.headers[HEADER], painted.headers[HEADER]]
    rows = wait_scored(server, ids)
    stylize, monet = rows[ids[0]], rows[ids[1]]
    assert (stylize["endpoint"], stylize["method"]) == ("stylize", "fast")
    assert set(stylize["scores"]) == {"content_loss", "style_loss", "ssim"}
    assert (monet["endpoint"], monet["method"]) == ("monet", "cyclegan")
    # the tiny generator's version carries its Monet statistics (tests/serve/style_models.py)
    assert set(monet["scores"]) == {"content_loss", "ssim", "monet_distance"}
    assert monet["scores"]["monet_distance"] > 0
    quality = client.post("/admin/status", headers=admin_headers).json()["quality"]
    assert quality["share"] == 1.0 and quality["queued"] <= quality["queue_size"] == 4
    assert os.getpriority(os.PRIO_PROCESS, quality["worker_pid"]) == 19
    assert os.sched_getscheduler(quality["worker_pid"]) == os.SCHED_IDLE
    text = client.get("/metrics").text
    version = stylized.headers["x-artflow-model-version"]  # the served one (tests move it)
    assert (
        f'artflow_style_quality_count{{endpoint="stylize",measure="ssim",model_version="{version}"}}'
        in text
    )
    assert 'measure="monet_distance"' in text


def test_a_rating_is_stored_once_and_shown_per_version(client, server):
    files = {"content": ("c.png", images.png(4)), "style": ("s.png", images.png(5))}
    stylized = client.post("/stylize", files=files)
    answer, version = stylized.headers[HEADER], stylized.headers["x-artflow-model-version"]
    first = client.post("/ratings", json={"answer_id": answer, "rating": 2})
    assert first.status_code == 200, first.text
    assert first.json() == {
        "stored": True,
        "answer_id": answer,
        "rating": 2,
        "endpoint": "stylize",
        "model_version": version,
    }
    again = client.post("/ratings", json={"answer_id": answer, "rating": 5})
    assert again.status_code == 409 and again.json()["code"] == "conflict"
    wrong = client.post("/feedback", json={"prediction_id": answer, "correct": True})
    assert wrong.status_code == 409 and "/ratings" in wrong.json()["error"], wrong.text
    row = next(r for r in server_store(server).style_window(0) if r["answer_id"] == answer)
    assert row["rating"] == 2
    deadline, text = time.monotonic() + 30, ""
    while time.monotonic() < deadline:  # the sync loop exports the store's counts
        text = client.get("/metrics").text
        if f'model_version="{version}",stat="mean"' in text:
            break
        time.sleep(1)
    assert f'endpoint="stylize",model_version="{version}",stat="n"' in text


def test_bad_ratings_get_the_error_envelope(client):
    classified = client.post("/classify", files={"image": ("x.png", images.png(6))}).json()
    cases = {
        "unknown": ({"answer_id": "0" * 32, "rating": 3}, 404, "answer_id"),
        "malformed": ({"answer_id": "nope", "rating": 3}, 404, "answer_id"),
        "too high": ({"answer_id": "0" * 32, "rating": 6}, 422, "rating"),
        "too low": ({"answer_id": "0" * 32, "rating": 0}, 422, "rating"),
        "not a number": ({"answer_id": "0" * 32, "rating": "good"}, 422, "rating"),
        "missing": ({"answer_id": "0" * 32}, 422, "rating"),
        "a classification": ({"answer_id": classified["prediction_id"], "rating": 3}, 409, None),
    }
    for label, (body, status, field) in cases.items():
        r = client.post("/ratings", json=body)
        assert r.status_code == status, (label, r.text)
        error = r.json()
        assert error["error"] and error["code"], (label, error)
        if field:
            assert error.get("field") == field, (label, error)
    refused = client.post(
        "/ratings", json={"answer_id": classified["prediction_id"], "rating": 3}
    ).json()
    assert refused["code"] == "classification_id" and "/feedback" in refused["hint"]
    assert client.get("/livez").status_code == 200
