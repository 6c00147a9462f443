"""The smoke CNN: accuracy, registry round trip, MLflow record, evaluation (its behaviour:
tests/model)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from artflow.registry import tracking

pytestmark = pytest.mark.slow


def test_cnn_beats_three_times_chance(trained_cnn, loaded_cnn) -> None:
    chance = 1 / len(loaded_cnn.labels)
    assert trained_cnn["metrics"]["test_accuracy"] >= 3 * chance
    assert trained_cnn["metrics"]["val_accuracy"] >= 3 * chance


def test_registered_version_loads_back_and_predicts_the_same(
    trained_cnn, loaded_cnn, test_images, classify_workdir
) -> None:
    assert loaded_cnn.family == "cnn" and loaded_cnn.image_size == 64
    assert loaded_cnn.labels == json.loads(classify_workdir.labels.read_text())
    # Raw uint8 images through the serving path == the in-memory model before saving.
    predicted = loaded_cnn.predict_labels([img for _, _, img in test_images])
    assert predicted == trained_cnn["test_predicted"]
    assert trained_cnn["challenger_after_training"] == trained_cnn["version"]
    emb = loaded_cnn.embed([img for _, _, img in test_images[:3]])
    assert emb.shape == (3, 64)  # smoke dense_units: the penultimate layer


def test_run_has_params_metrics_artifacts_and_lineage(trained_cnn, classify_workdir) -> None:
    client = tracking.client()
    run = client.get_run(trained_cnn["run_id"])
    for key in ("val_accuracy", "val_macro_f1", "test_accuracy", "test_macro_f1"):
        assert 0.0 <= run.data.metrics[key] <= 1.0
    assert run.data.metrics["registry_roundtrip_agreement"] == 1.0
    assert run.data.params["family"] == "cnn" and run.data.params["cnn.dense_units"] == "64"
    assert run.data.tags["artflow.profile"] == "smoke"
    assert run.data.tags["artflow.data_hash"] != "none"
    assert run.data.tags["artflow.git_commit"]
    history = client.get_metric_history(run.info.run_id, "epoch_val_accuracy")
    assert len(history) == trained_cnn["epochs"]  # one value per epoch
    evaluation = {f.path for f in client.list_artifacts(run.info.run_id, "evaluation")}
    for name in ("confusion_test.png", "classification_report_test.txt", "samples_val.png"):
        assert f"evaluation/{name}" in evaluation
    top = {f.path for f in client.list_artifacts(run.info.run_id)}
    assert {"labels.json", "plots"} <= top
    metrics = json.loads((classify_workdir.metrics / "cnn.json").read_text())
    assert metrics["version"] == trained_cnn["version"]
    # the data of `dvc plots show` (dvc.yaml): one row per test image, one per epoch
    plots = classify_workdir.reports / "classifier" / "cnn"
    assert len((plots / "history.csv").read_text().splitlines()) == trained_cnn["epochs"] + 1
    test_rows = (plots / "predictions_test.csv").read_text().splitlines()
    assert test_rows[0] == "actual,predicted" and len(test_rows) > 1
    assert metrics["test_accuracy"] == round(trained_cnn["metrics"]["test_accuracy"], 4)


def test_evaluate_returns_per_image_correctness_latency_and_size(
    trained_cnn, smoke_settings, classify_workdir, test_images
) -> None:
    from artflow.classify.evaluate import evaluate

    result = evaluate(smoke_settings, classify_workdir, trained_cnn["model_uri"], split="test")
    assert len(result["correct"]) == len(test_images)
    assert result["paths"] == [str(p) for p, _, _ in test_images]
    assert result["accuracy"] == pytest.approx(trained_cnn["metrics"]["test_accuracy"])
    assert np.mean(result["correct"]) == pytest.approx(result["accuracy"])
    assert result["latency_ms_per_image"] > 0 and 0 < result["model_size_mb"] < 50
    cm = np.array(result["confusion_matrix"])
    assert cm.sum() == len(test_images) and np.trace(cm) == sum(result["correct"])
    out = classify_workdir.reports / "evaluate"
    assert list(out.rglob("confusion_test.png")) and list(out.rglob("samples_test.png"))
