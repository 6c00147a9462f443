"""Multi-worker training (artflow.classify.distributed): two worker processes on 127.0.0.1,
each with its TF_CONFIG, train the smoke CNN under MultiWorkerMirroredStrategy with the custom
step; the chief alone tracks and registers; both end with the same weights; the result is
close to one worker's training with the same loop, seed and data."""

from __future__ import annotations

import json
import shutil

import pytest

# 32 px, two epochs: the whole two-worker run is import + ~20 s of work per process.
TINY = {"images": {"size": 32}, "cnn": {"epochs": 2}}


def _workdir(tmp_path, demo_workdir):
    """The demo splits (absolute image paths into the shared, read-only demo data)."""
    import pandas as pd

    from artflow.data.layout import Workdir

    wd = Workdir.at(tmp_path)
    wd.splits.mkdir(parents=True)
    for split in ("train", "val", "test"):
        frame = pd.read_csv(demo_workdir.split_csv(split))
        frame["path"] = [str(demo_workdir.abs(p)) for p in frame["path"]]
        frame.to_csv(wd.split_csv(split), index=False)
    shutil.copy(demo_workdir.labels, wd.labels)
    shutil.copy(demo_workdir.class_weights, wd.class_weights)
    return wd


@pytest.fixture
def two_workers(tmp_path, demo_workdir, fresh_store):
    """train_classifier with training.workers: 2 (local processes), in an empty store."""
    from artflow.classify.train import train_classifier
    from artflow.config import load_settings

    settings = load_settings(profile="smoke", overrides={**TINY, "training": {"workers": 2}})
    wd = _workdir(tmp_path / "two", demo_workdir)
    return wd, train_classifier(settings, wd, "cnn")


def test_two_workers_train_one_model_like_one_worker(two_workers, tmp_path, demo_workdir) -> None:
    from artflow import runtime
    from artflow.classify.distributed import fit, out_dir, weights_digest
    from artflow.classify.evaluate import EXPERIMENT, predict_split, score
    from artflow.classify.io import load_classifier
    from artflow.classify.train import load_data
    from artflow.config import load_settings
    from artflow.registry import tracking

    wd, result = two_workers
    # Both workers ended bit-identical, and the registered model is exactly those weights.
    assert len(result["worker_weights_sha256"]) == 2
    assert len(set(result["worker_weights_sha256"])) == 1
    loaded = load_classifier(result["model_uri"])
    assert weights_digest(loaded.model) == result["weights_sha256"]
    assert result["worker_weights_sha256"][0] == result["weights_sha256"]
    # Only the chief tracked and registered: one run, one version, and it is the run's.
    runs = tracking.client().search_runs([tracking.experiment(EXPERIMENT)], max_results=10)
    assert [r.info.run_id for r in runs] == [result["run_id"]]
    assert runs[0].data.params["workers"] == "2"
    assert "epoch_val_loss" in runs[0].data.metrics
    versions = tracking.search_versions(tracking.CLASSIFIER)
    assert [(str(v.version), v.run_id) for v in versions] == [("1", result["run_id"])]
    assert (wd.models / "cnn" / "best.keras").is_file()  # the chief's checkpoint
    assert json.loads((wd.metrics / "cnn.json").read_text())["version"] == "1"
    reports = sorted(p.name for p in out_dir(wd, "cnn").glob("worker-*.json"))
    assert reports == ["worker-0.json", "worker-1.json"]

    # One worker, the same loop, seed and data, in this process (default strategy, no run).
    # The two trainings differ only in dropout masks (each replica draws its own) and in the
    # order of float sums: their first epochs agree closely (seen within 0.005), later ones
    # drift apart as the different masks compound (val_loss seen up to 0.12 apart after
    # epoch 2). Test accuracy is noisy on 39 images of a near-chance model: tiny logit
    # differences flip whole classes (seen 0.26 against 0.46), so 0.25, about 10 images.
    one_settings = load_settings(
        profile="smoke", overrides={**TINY, "training": {"distribute": "none"}}
    )
    strategy = runtime.configure(one_settings.training, one_settings.seed)
    one_wd = _workdir(tmp_path / "one", demo_workdir)
    data = load_data(one_settings, one_wd, 32, one_settings.cnn.batch_size)
    model, histories = fit(strategy, one_settings, data, "cnn", chief=False, wd=one_wd)
    one, two = histories[0].history, result["history"]
    for key in ("loss", "val_loss"):
        assert one[key][0] == pytest.approx(two[key][0], abs=0.05), key
    assert one["val_loss"][-1] == pytest.approx(two["val_loss"][-1], abs=0.25)
    probs, test, _ = predict_split(model, one_wd, "test", 32, len(data["labels"]))
    accuracy = score(test.labels, probs, data["labels"])["accuracy"]
    assert accuracy == pytest.approx(result["metrics"]["test_accuracy"], abs=0.25)


def test_a_failing_worker_stops_the_others_and_shows_its_log(tmp_path) -> None:
    """Worker 1 fails at once; worker 0 would wait for it forever (as in a collective): the
    launcher stops it and raises with the end of worker 1's log."""
    import sys
    import time

    from artflow.classify.distributed import launch_local
    from artflow.errors import ModelError

    script = (
        "import json, os, sys, time\n"
        "if json.loads(os.environ['TF_CONFIG'])['task']['index'] == 1:\n"
        "    sys.exit('worker 1: no such split')\n"
        "time.sleep(120)\n"
    )
    start = time.monotonic()
    with pytest.raises(ModelError, match="worker 1 exited with 1") as failed:
        launch_local([sys.executable, "-c", script], 2, tmp_path / "logs")
    assert "no such split" in str(failed.value)
    assert time.monotonic() - start < 30  # worker 0 was stopped, not waited for
