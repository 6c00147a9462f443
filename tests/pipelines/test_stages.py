"""The steps' content-key cache, the declared keys, and the gate's champion check."""

from __future__ import annotations

import json
from pathlib import Path

from kfp.dsl import Dataset, Metrics

from artflow import families, stages
from artflow.config import load_settings


def _outputs(root, n):
    folder = Dataset(name="splits", uri=str(root / f"run{n}" / "splits"), metadata={})
    metrics = Metrics(name="metrics", uri=str(root / f"run{n}" / "metrics"), metadata={})
    return {"splits": folder, "metrics": metrics}


def test_a_cached_step_restores_its_outputs_and_result(tmp_path):
    cache, calls = str(tmp_path / "cache"), []

    def work(outputs):
        def fill():
            calls.append(1)
            folder = Path(outputs["splits"].path)
            folder.mkdir(parents=True)
            (folder / "train.csv").write_text(f"path,label\na.jpg,{len(calls)}\n")
            outputs["splits"].metadata["rows"] = 1
            outputs["metrics"].log_metric("accuracy", 0.5)
            return {"version": str(len(calls)), "history": list(range(100))}

        return fill

    first_out = _outputs(tmp_path, 1)
    first = stages.cached("train_cnn", "k1", cache, first_out, work(first_out))
    assert first["version"] == "1" and not first["skipped"]

    again_out = _outputs(tmp_path, 2)
    again = stages.cached("train_cnn", "k1", cache, again_out, work(again_out))
    assert again == {"version": "1", "skipped": True} and len(calls) == 1  # long lists dropped
    restored = (tmp_path / "run2" / "splits" / "train.csv").read_text()
    assert restored == "path,label\na.jpg,1\n"
    assert again_out["splits"].metadata == {"rows": 1}
    assert again_out["metrics"].metadata == {"accuracy": 0.5}

    changed = _outputs(tmp_path, 3)
    assert stages.cached("train_cnn", "k2", cache, changed, work(changed))["version"] == "2"
    forced = _outputs(tmp_path, 4)
    assert (
        stages.cached("train_cnn", "k2", cache, forced, work(forced), force=True)["skipped"]
        is False
    )
    no_cache = _outputs(tmp_path, 5)
    assert stages.cached("train_cnn", "k2", "", no_cache, work(no_cache))["version"] == "4"


def test_each_steps_key_covers_exactly_its_declared_settings(tmp_path):
    base = load_settings(profile="smoke")
    splits = Dataset(name="splits", uri=str(tmp_path / "splits"), metadata={})
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "train.csv").write_text("path,label\n")

    def key(settings, name="train_cnn", tune=False):
        return stages.cache_key(name, settings, {"splits": splits}, {"tune": tune}, tune=tune)

    assert families.get("cnn").sections == ("images", "augment", "training", "cnn")
    cnn_changed = load_settings(profile="smoke", overrides={"cnn": {"epochs": 7}})
    tuner_changed = load_settings(profile="smoke", overrides={"tuner": {"max_trials": 9}})
    assert key(cnn_changed) != key(base)
    assert key(tuner_changed) == key(base)  # the search's settings matter only when tuning
    assert key(tuner_changed, tune=True) != key(base, tune=True)
    assert key(cnn_changed, "train_resnet50") == key(base, "train_resnet50")
    assert key(cnn_changed, "validate") == key(base, "validate")
    (tmp_path / "splits" / "train.csv").write_text("path,label\na.jpg,0\n")  # new data
    assert key(base) != stages.cache_key("train_cnn", base, {}, {"tune": False})


def test_cached_models_missing_from_the_registry_are_pruned(tmp_path, monkeypatch, fresh_store):
    """A new MLflow store (e.g. after `make clean`) must not leave training skipped."""
    from artflow.config import PROJECT_ROOT

    monkeypatch.syspath_prepend(str(PROJECT_ROOT))
    from pipelines.local_runner import prune_stale_cache

    cache = tmp_path / "cache"
    for step, result in (
        ("train_cnn", {"model_name": "artflow-artist-classifier", "version": "3"}),
        ("sample", {"n": 1}),
    ):
        (cache / step / "k").mkdir(parents=True)
        (cache / step / "k" / "result.json").write_text(json.dumps({"result": result}))
    assert prune_stale_cache(cache) == ["train_cnn"]
    assert [p.parent.name for p in cache.glob("*/k")] == ["sample"]


def test_a_gate_decision_goes_stale_when_the_champion_moves(tmp_path):
    from artflow.registry import tracking

    name = "artflow-test-moved-champion"
    client = tracking.client()
    client.create_registered_model(name)
    for _ in range(2):
        client.create_model_version(name, source=str(tmp_path), run_id=None)
    unmoved = stages.champion_unmoved(name)

    decision = {"model": name, "candidate": "2", "champion": "1", "promoted": True}
    assert not unmoved(decision)  # promoted v2, but no champion alias is set
    tracking.set_alias(name, "champion", "2")
    assert unmoved(decision)
    tracking.set_alias(name, "champion", "1")  # a rollback since the decision
    assert not unmoved(decision)
    assert unmoved({**decision, "promoted": False})  # refused: v1 stayed champion, as recorded
