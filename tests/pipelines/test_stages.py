"""The content-hash skip behind local pipeline re-runs."""

from __future__ import annotations

from artflow import stages
from artflow.data.layout import Workdir


def test_unchanged_inputs_skip_changed_inputs_rerun(tmp_path):
    wd = Workdir.at(tmp_path)
    data = tmp_path / "splits.csv"
    data.write_text("path,label\na.jpg,0\n")
    calls = []

    def work():
        calls.append(1)
        return {"version": str(len(calls)), "history": list(range(100))}

    def key():
        return stages.stage_key("train", stages.file_digest([data]), {"epochs": 3})

    first = stages.run_stage(wd, "train", key(), work)
    assert first == {"version": "1", "history": list(range(100)), "skipped": False}
    again = stages.run_stage(wd, "train", key(), work)
    assert again == {"version": "1", "skipped": True} and len(calls) == 1  # long lists dropped
    data.write_text("path,label\na.jpg,1\n")  # new data: the key changes
    assert stages.run_stage(wd, "train", key(), work)["version"] == "2"
    assert stages.run_stage(wd, "train", key(), work, force=True)["version"] == "3"
    assert stages.run_stage(wd, "train", key(), work)["skipped"] and len(calls) == 3


def test_publish_fills_kfp_like_artifacts(tmp_path):
    class Artifact:
        def __init__(self, path):
            self.path, self.metadata, self.logged = str(path), {}, {}

        def log_metric(self, key, value):
            self.logged[key] = value

    model, metrics = Artifact(tmp_path / "m" / "model"), Artifact(tmp_path / "metrics")
    result = {
        "model_name": "artflow-artist-classifier",
        "version": "4",
        "skipped": True,
        "metrics": {"val_accuracy": 0.5},
    }
    stages.publish(result, metrics=metrics, model=model)
    assert model.metadata["uri"] == "models:/artflow-artist-classifier/4"
    assert (tmp_path / "m" / "model").read_text().strip() == model.metadata["uri"]
    assert metrics.logged == {"val_accuracy": 0.5, "skipped": 1.0}


def test_stamps_of_models_missing_from_the_registry_are_pruned(tmp_path, monkeypatch):
    """A new MLflow store (e.g. after `make clean`) must not leave training skipped."""
    import json
    import sys

    from artflow.config import PROJECT_ROOT

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'empty.db'}")
    monkeypatch.syspath_prepend(str(PROJECT_ROOT))
    from pipelines.local_runner import prune_stale_stamps

    assert "pipelines" in sys.modules
    wd = Workdir.at(tmp_path / "wd")
    stamps = wd.root / "pipeline" / "stamps"
    stamps.mkdir(parents=True)
    record = {"key": "k", "result": {"model_name": "artflow-artist-classifier", "version": "3"}}
    (stamps / "train_cnn.json").write_text(json.dumps(record))
    (stamps / "sample.json").write_text(json.dumps({"key": "k", "result": {"n": 1}}))
    assert prune_stale_stamps(wd) == ["train_cnn"]
    assert [p.stem for p in stamps.glob("*.json")] == ["sample"]


def test_a_gate_decision_goes_stale_when_the_champion_moves(tmp_path):
    import json

    from artflow import tracking

    wd, name = Workdir.at(tmp_path), "artflow-test-moved-champion"
    client = tracking.client()
    client.create_registered_model(name)
    for _ in range(2):
        client.create_model_version(name, source=str(tmp_path), run_id=None)
    assert not stages.champion_moved(wd, name)  # no decision recorded yet

    stamp = wd.root / stages.STAMPS / f"gate_{name}.json"
    stamp.parent.mkdir(parents=True)
    decision = {"model": name, "candidate": "2", "champion": "1", "promoted": True}
    stamp.write_text(json.dumps({"key": "k", "result": decision}))
    assert stages.champion_moved(wd, name)  # promoted v2, but no champion alias is set
    tracking.set_alias(name, "champion", "2")
    assert not stages.champion_moved(wd, name)
    tracking.set_alias(name, "champion", "1")  # a rollback since the decision
    assert stages.champion_moved(wd, name)

    stamp.write_text(json.dumps({"key": "k", "result": {**decision, "promoted": False}}))
    assert not stages.champion_moved(wd, name)  # refused: v1 stayed champion, as recorded
