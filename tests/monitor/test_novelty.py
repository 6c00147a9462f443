"""Novelty ("this does not look like a painting"): calibrated on validation paintings, it
flags few held-out paintings and the demo's generated landscape photographs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def novelty(drift_wd, drift_classifier, drift_reference, tmp_path_factory):
    """Calibrated by the training pipeline's novelty step (its component, in this process),
    as every version a pipeline registers is; read back from the registry as serving does."""
    import json

    from kfp.dsl import Dataset, Metrics, Model

    from artflow.monitor.novelty import NoveltyCache
    from components.novelty import novelty_op

    out = tmp_path_factory.mktemp("novelty_step")
    (out / "model").mkdir()
    meta = {"model_name": drift_classifier.name, "version": str(drift_classifier.version)}
    (out / "model" / "model.json").write_text(json.dumps(meta))
    summary = Metrics(name="summary", uri=str(out / "summary"), metadata={})
    novelty_op.python_func(
        profile="smoke",
        mlflow_uri="",
        data=Dataset(name="data", uri=str(drift_wd.root), metadata={}),
        splits=Dataset(name="splits", uri=str(drift_wd.root), metadata={}),
        model=Model(name="model", uri=str(out / "model"), metadata=meta),
        summary=summary,
    )
    assert summary.metadata["calibrated"] == 1.0
    found = NoveltyCache().get(drift_classifier.name, drift_classifier.version)
    assert found is not None
    return found[0], summary.metadata


def _frame(classifier, projection, images) -> pd.DataFrame:
    from artflow.monitor.embedding import project_frame
    from artflow.monitor.reference import profile_images

    frame, emb = profile_images(classifier, images)
    return frame.assign(**project_frame(emb, projection))


def test_paintings_pass_and_photographs_are_flagged(
    novelty, drift_wd, drift_classifier, drift_reference, demo_source, smoke_settings
) -> None:
    from artflow.imageio import load_rgb

    model, summary = novelty
    assert summary["validation_flagged"] <= smoke_settings.novelty.false_alarm_rate
    assert model.threshold > 0 and len(model.reference) == len(drift_reference.frame)

    test = pd.read_csv(drift_wd.split_csv("test"))  # never used to fit or calibrate
    paintings = [load_rgb(drift_wd.abs(p)) for p in test["path"]]
    scores = model.scores(_frame(drift_classifier, drift_reference.projection, paintings))
    assert np.mean(scores > model.threshold) <= 0.15  # a small held-out set: some slack

    photos = [load_rgb(p) for p in sorted((demo_source / "monet" / "photo_jpg").glob("*.jpg"))]
    photo_scores = model.scores(_frame(drift_classifier, drift_reference.projection, photos))
    assert np.mean(photo_scores > model.threshold) >= 0.9
    assert np.median(photo_scores) > np.median(scores)


def test_novelty_model_round_trips_through_the_registry(novelty, drift_classifier) -> None:
    from artflow.monitor.features import describe_image
    from artflow.monitor.novelty import NoveltyCache

    model, _ = novelty
    found = NoveltyCache().get(drift_classifier.name, drift_classifier.version)
    assert found is not None
    loaded, projection = found
    assert loaded.threshold == model.threshold and np.array_equal(loaded.reference, model.reference)
    grey = np.full((64, 64, 3), 128, np.uint8)  # a flat grey square is nobody's painting
    emb = drift_classifier.embed([grey])
    verdict = loaded.check(describe_image(grey), projection.transform(emb)[0])
    assert verdict["novel"] and verdict["score"] > verdict["threshold"]
