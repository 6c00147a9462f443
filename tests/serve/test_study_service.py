"""The study's features in the real service: model choice by family, feedback and online
accuracy, Gatys with the registered best settings (progress, cancel), the novelty warning and
the style gallery. Shared state (aliases) is put back where other tests expect it."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import numpy as np
import pytest
from PIL import Image

from artflow.registry import tracking
from tests.serve import images
from tests.serve.conftest import server_store
from tests.serve.test_service import classify, keys_for, metric

pytestmark = pytest.mark.slow


def champion_key() -> str:
    """A client key whose bucket is >= 0.9: the champion answers it at any weight <= 0.9."""
    return keys_for("champion", 0.9, 1)[0]


def _reload(client: httpx.Client, admin_headers: dict) -> None:
    r = client.post("/admin/reload", headers=admin_headers, timeout=240)
    assert r.status_code == 200, r.text


def test_family_choice_answers_with_the_familys_best_gated_version(
    client, server, admin_headers
) -> None:
    v1 = server.versions["v1"]
    tracking.set_alias(tracking.CLASSIFIER, "best-cnn", v1)  # as the gate records it
    try:
        _reload(client, admin_headers)
        r = classify(client, images.png(31), family="cnn")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["family"] == "cnn" and body["variant"] == "family:cnn"
        assert body["model"] == {"name": tracking.CLASSIFIER, "version": v1, "alias": "best-cnn"}
        missing = classify(client, images.png(31), family="resnet50")
        assert missing.status_code == 404 and "passed the gate" in missing.json()["error"]
        assert classify(client, images.png(31), family="vit").status_code in (400, 422)
        auto = classify(client, images.png(31), key=champion_key())
        assert auto.json()["variant"] == "champion" and "family" not in auto.json()
    finally:
        tracking.client().delete_registered_model_alias(tracking.CLASSIFIER, "best-cnn")


def test_feedback_is_stored_with_the_prediction_and_feeds_online_accuracy(
    client, server, admin_headers
) -> None:
    answers = [classify(client, images.png(40 + i), key=champion_key()).json() for i in range(3)]
    variant = "champion"
    assert all(a["variant"] == variant for a in answers)
    ids = [a["prediction_id"] for a in answers]
    assert len(set(ids)) == 3
    before = metric(client, "artflow_feedback_total", variant=variant, outcome="correct")
    assert (
        client.post("/feedback", json={"prediction_id": ids[0], "correct": True}).status_code == 200
    )
    wrong = "Rembrandt" if answers[1]["artist"] != "Rembrandt" else "Pablo_Picasso"
    r = client.post("/feedback", json={"prediction_id": ids[1], "artist": wrong})
    assert r.status_code == 200 and r.json()["correct"] is False
    again = client.post("/feedback", json={"prediction_id": ids[0], "correct": True})
    assert again.status_code == 409
    assert client.post("/feedback", json={"prediction_id": "nope"}).status_code in (404, 422)
    unknown = client.post("/feedback", json={"prediction_id": "nope", "correct": True})
    assert unknown.status_code == 404 and "unknown prediction_id" in unknown.json()["error"]
    assert client.post("/feedback", json={"prediction_id": ids[2]}).status_code == 422
    assert client.post("/feedback", content=b"{not json").status_code == 400
    assert client.get("/livez").status_code == 200  # bad feedback never takes the service down

    stored = server_store(server).feedback_rows()  # the serving store, not the pod's memory
    mine = [s for s in stored if s["prediction_id"] in ids]
    assert [s["correct"] for s in mine] == [True, False]
    assert mine[1]["true_artist"] == wrong and mine[1]["artist"] == answers[1]["artist"]
    assert not any("image" in k for s in mine for k in s)  # the outcome, never the image
    after = metric(client, "artflow_feedback_total", variant=variant, outcome="correct")
    assert after == before + 1
    n = metric(client, "artflow_online_accuracy", variant=variant, bound="n")
    est = metric(client, "artflow_online_accuracy", variant=variant, bound="estimate")
    low = metric(client, "artflow_online_accuracy", variant=variant, bound="lower")
    assert n >= 2 and 0.0 <= low <= est <= 1.0
    online = client.get("/status", headers=admin_headers).json()["online_accuracy"][variant]
    assert online["n"] == n and online["accuracy"] == pytest.approx(est)
    from artflow.monitor.records import read_records

    logged = read_records(server.prediction_log)  # the log folder (one sub-folder per pod)
    assert {a["prediction_id"] for a in answers} <= {r.prediction_id for r in logged}


def _stylize(client: httpx.Client, job: str, steps: int, out: dict) -> None:
    files = {
        "content": ("c.png", images.png(50), "image/png"),
        "style": ("s.jpg", images.jpeg(51), "image/jpeg"),
    }
    form = {"method": "gatys", "backbone": "vgg19", "steps": str(steps), "size": "48", "job": job}
    out["response"] = client.post("/stylize", files=files, data=form, timeout=120)


def test_gatys_uses_the_registered_best_settings_shows_progress_and_cancels(
    client, admin_headers
) -> None:
    from artflow.config import load_settings
    from artflow.style.gatys import settings as nst_settings

    nst = load_settings(profile="smoke").nst
    preset = nst.for_backbone("vgg19")
    with tracking.start_run("artflow-serve-tests", "gatys-settings", load_settings()) as run:
        pass
    newer = preset.model_copy(update={"learning_rate": round(preset.learning_rate * 0.8, 6)})
    version = nst_settings.register_best(newer, run.info.run_id, 1.0)
    _reload(client, admin_headers)

    job, out = uuid.uuid4().hex, {}
    _stylize(client, job, 2, out)
    r = out["response"]
    assert r.status_code == 200, r.text
    assert r.headers["X-Artflow-Model-Version"] == f"gatys-vgg19-v{version}"
    progress = client.get("/gatys/progress", params={"job": job}).json()
    assert progress["state"] == "done" and progress["step"] == progress["steps"] == 2
    assert progress["loss"] is not None and np.isfinite(progress["loss"])

    job, out = uuid.uuid4().hex, {}
    worker = threading.Thread(target=_stylize, args=(client, job, 50, out))
    worker.start()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        p = client.get("/gatys/progress", params={"job": job})
        if p.status_code == 200 and p.json()["step"] >= 1:
            break
        time.sleep(0.2)
    assert client.post("/gatys/cancel", params={"job": job}).status_code == 200
    worker.join(120)
    assert out["response"].status_code == 409 and "cancelled" in out["response"].text
    final = client.get("/gatys/progress", params={"job": job}).json()
    assert final["state"] == "cancelled" and 1 <= final["step"] < 50
    assert client.get("/gatys/progress", params={"job": "unknown-job"}).status_code == 404


def test_a_grey_square_gets_the_not_a_painting_warning(
    client, server, admin_headers, demo_workdir, tmp_path_factory
) -> None:
    """The champion gets a novelty model calibrated on the demo's validation paintings."""
    import shutil

    import pandas as pd

    from artflow.classify.io import load_classifier
    from artflow.config import load_settings
    from artflow.data.layout import Workdir
    from artflow.monitor.novelty import build_novelty, profile_split

    wd = Workdir.at(tmp_path_factory.mktemp("novelty") / "wd")
    shutil.copytree(demo_workdir.root, wd.root)
    champion = load_classifier(tracking.model_uri(tracking.CLASSIFIER, server.versions["v2"]))
    settings = load_settings(profile="smoke")
    model, _ = build_novelty(settings, wd, champion)
    _reload(client, admin_headers)
    key = champion_key()

    before = metric(client, "artflow_novelty_checks_total", novel="true")
    grey = images.encode(Image.fromarray(np.full((40, 48, 3), 128, np.uint8)), "PNG")
    body = classify(client, grey, key=key).json()
    assert body["model"]["version"] == server.versions["v2"]  # the champion answered
    assert body["novelty"]["novel"] and "does not look like a painting" in body["warning"]
    assert metric(client, "artflow_novelty_checks_total", novel="true") == before + 1
    from artflow.monitor.reference import load_reference

    ref = load_reference(settings, wd, champion, build_missing=False)
    val = profile_split(wd, "val", champion, ref.projection, 1000, settings.seed)
    frame = pd.read_csv(wd.split_csv("val"))
    typical = frame["path"].iloc[int(np.argmin(model.scores(val)))]
    body = classify(client, wd.abs(typical).read_bytes(), key=key).json()
    assert body["novelty"]["novel"] is False and "warning" not in body
    assert body["novelty"]["score"] < body["novelty"]["threshold"]


def test_gallery_lists_one_style_image_per_artist(client, server, demo_workdir) -> None:
    from artflow.serve.gallery import build_gallery

    folder = server.prediction_log.parent / "gallery"
    written = build_gallery(demo_workdir, folder, size=64)
    listed = client.get("/gallery").json()
    artists = sorted(pd_artists(demo_workdir))
    assert [item["artist"] for item in listed] == [a.replace(" ", "_") for a in artists]
    assert len(written) == len(artists)
    img = client.get(listed[0]["url"])
    assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg"
    assert client.get("/gallery/..%2Fpredictions.jsonl").status_code == 404


def pd_artists(wd) -> list[str]:
    import pandas as pd

    return list(pd.read_csv(wd.split_csv("train"))["artist"].unique())
