"""Multi-worker training (artflow.classify.distributed): two worker processes on 127.0.0.1,
each with its TF_CONFIG, train the smoke CNN under MultiWorkerMirroredStrategy with the custom
step; the chief alone tracks and registers; both end with the same weights; the result is
close to one worker's training with the same loop, seed and data."""

from __future__ import annotations

import json
import shutil

import pytest

# 32 px, two epochs: each worker process is its imports + ~30 s of work (the chief's
# evaluation and registration included).
# No augmentation and no dropout: both draw random numbers that differ between one worker
# and two (each replica draws its own dropout masks; augmentations are drawn in tf.data's
# parallel map, in no fixed order), and on 39 test images of a model this young they moved
# test accuracy by up to 0.31 between runs. Without them the two trainings differ only in
# the order of float sums. (Dropout under the strategy is run by every `--workers` training.)
STILL = {"rotation_deg": 0, "width_shift": 0, "height_shift": 0, "shear": 0, "zoom": 0}
TINY = {
    "images": {"size": 32},
    "cnn": {"epochs": 2, "dropout": 0.0},
    "augment": {**STILL, "horizontal_flip": False},
}


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


def one_worker(tmp_path, demo_workdir) -> tuple[dict, float]:
    """The same loop, seed and data on one worker in this process (default strategy, no MLflow
    run): its history and test accuracy."""
    from artflow import runtime
    from artflow.classify.distributed import fit
    from artflow.classify.evaluate import predict_split, score
    from artflow.classify.train import load_data
    from artflow.config import load_settings

    settings = load_settings(
        profile="smoke", overrides={**TINY, "training": {"distribute": "none"}}
    )
    strategy = runtime.configure(settings.training, settings.seed)
    wd = _workdir(tmp_path / "one", demo_workdir)
    data = load_data(settings, wd, 32, settings.cnn.batch_size)
    model, histories = fit(strategy, settings, data, "cnn", chief=False, wd=wd)
    probs, test, _ = predict_split(model, wd, "test", 32, len(data["labels"]))
    return histories[0].history, score(test.labels, probs, data["labels"])["accuracy"]


def test_two_workers_train_one_model_like_one_worker(tmp_path, demo_workdir, fresh_store) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from artflow.classify.distributed import out_dir, weights_digest
    from artflow.classify.evaluate import EXPERIMENT
    from artflow.classify.io import load_classifier
    from artflow.classify.train import train_classifier
    from artflow.config import load_settings
    from artflow.registry import tracking

    settings = load_settings(profile="smoke", overrides={**TINY, "training": {"workers": 2}})
    wd = _workdir(tmp_path / "two", demo_workdir)
    # The one-worker training runs here while the two workers run: this process only waits
    # for them, and the chief evaluates and registers on one core while the other is idle.
    with ThreadPoolExecutor(1) as pool:
        launched = pool.submit(train_classifier, settings, wd, "cnn")
        one, one_accuracy = one_worker(tmp_path, demo_workdir)
        result = launched.result()

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

    # One worker against two (TINY: the same data, seed and initial weights, nothing random
    # drawn) differ only in the order of float sums: the first epoch agreed to 1e-4. The
    # differences compound with every step: after epoch 2 the training loss was 0.004 apart,
    # val_loss 0.1 and test accuracy 0.08 (3 of 39 images) in a measured run. Hence 0.01 for
    # the first epoch, 0.05 for the last training loss and 0.2 of accuracy (8 images; chance
    # is 0.09, both models reached ~0.55).
    two = result["history"]
    for key in ("loss", "val_loss"):
        assert one[key][0] == pytest.approx(two[key][0], abs=0.01), key
    assert one["loss"][-1] == pytest.approx(two["loss"][-1], abs=0.05)
    assert one_accuracy == pytest.approx(result["metrics"]["test_accuracy"], abs=0.2)


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


def test_tf_config_names_the_task_and_must_match_the_settings(monkeypatch, tmp_path) -> None:
    from artflow import runtime
    from artflow.classify.distributed import tf_configs, train_multiworker
    from artflow.config import load_settings
    from artflow.errors import ConfigError

    configs = tf_configs(3)
    assert len({tuple(c["cluster"]["worker"]) for c in configs}) == 1  # one cluster, 3 ports
    assert len(set(configs[0]["cluster"]["worker"])) == 3
    monkeypatch.setenv("TF_CONFIG", json.dumps(configs[1]))
    assert runtime.task() == runtime.Task("worker", 1, 3) and not runtime.task().chief
    monkeypatch.setenv("TF_CONFIG", json.dumps(configs[0]))
    assert runtime.task().chief
    settings = load_settings(profile="smoke", overrides={"training": {"workers": 2}})
    with pytest.raises(ConfigError, match="TF_CONFIG names 3 workers"):
        train_multiworker(settings, None, "cnn")  # refused before TensorFlow starts
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ConfigError, match="TF_CONFIG is not JSON"):
        runtime.task()
