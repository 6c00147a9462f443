"""keras-tuner search: trials as MLflow child runs, best values recorded, best model registered."""

from __future__ import annotations

import json

import pytest

from artflow.registry import tracking

pytestmark = pytest.mark.slow


def test_tune_runs_trials_as_child_runs_and_records_the_best(tiny_workdir) -> None:
    from artflow.classify.tune import tune_cnn
    from artflow.config import load_settings

    # One epoch at 32 px: the search's bookkeeping is checked here, not what it finds.
    overrides = {"tuner": {"epochs": 1}, "cnn": {"epochs": 1}, "images": {"size": 32}}
    settings = load_settings(profile="smoke", overrides=overrides)
    result = tune_cnn(settings, tiny_workdir, verbose=0)
    cfg = settings.tuner
    assert len(result["trials"]) >= 2
    units = range(cfg.units_min, cfg.units_max + 1, cfg.units_step)
    assert result["best"]["dense_units"] in units
    assert result["best"]["learning_rate"] in cfg.learning_rates

    client = tracking.client()
    parent = client.get_run(result["run_id"])
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{result['run_id']}'",
    )
    retrain = [c for c in children if c.data.tags["artflow.stage"] == "tune-retrain"]
    children = [c for c in children if c.data.tags["artflow.stage"] == "tune-trial"]
    assert len(children) == len(result["trials"])
    # The best configuration was retrained for cnn.epochs before it was registered.
    assert len(retrain) == 1 and retrain[0].data.params["epochs"] == str(settings.cnn.epochs)
    assert retrain[0].data.params["dense_units"] == str(result["best"]["dense_units"])
    for child in children:
        assert {"dense_units", "learning_rate"} <= set(child.data.params)
        assert 0.0 <= child.data.metrics["val_accuracy"] <= 1.0
        history = client.get_metric_history(child.info.run_id, "execution_1/val_accuracy")
        assert 1 <= len(history) <= cfg.epochs
    assert parent.data.params["best.dense_units"] == str(result["best"]["dense_units"])
    best_child = max(children, key=lambda r: r.data.metrics["val_accuracy"])
    assert parent.data.metrics["best_val_accuracy"] == pytest.approx(
        best_child.data.metrics["val_accuracy"], abs=1e-6
    )

    saved = json.loads((tiny_workdir.metrics / "tune_cnn.json").read_text())
    assert saved["best"] == result["best"] and saved["trials"] == len(result["trials"])
    version = tracking.client().get_model_version(tracking.CLASSIFIER, result["version"])
    assert version.tags["family"] == "cnn" and version.run_id == result["run_id"]
