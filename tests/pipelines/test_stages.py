"""What a step's cache key covers besides kfp's own (its code and declared settings), the
output files kfp's cache needs, and what the local runner checks on top of kfp's key."""

from __future__ import annotations

import json
from pathlib import Path

from kfp.dsl import ClassificationMetrics, Markdown, Metrics, Model

from artflow import families, stages
from artflow.config import load_settings
from artflow.stages import keys


def test_each_steps_key_covers_exactly_its_declared_settings():
    base = load_settings(profile="smoke")

    def key(settings, name="train_cnn"):
        return stages.step_key(name, settings)

    assert families.get("cnn").sections == ("images", "augment", "training", "cnn")
    cnn_changed = load_settings(profile="smoke", overrides={"cnn": {"epochs": 7}})
    assert key(cnn_changed) != key(base)
    assert key(cnn_changed, "train_resnet50") == key(base, "train_resnet50")
    assert key(cnn_changed, "validate") == key(base, "validate")
    tuner_changed = load_settings(profile="smoke", overrides={"tuner": {"max_trials": 9}})
    assert key(tuner_changed) != key(base)  # whether it tunes is a run parameter
    assert key(tuner_changed, "train_resnet50") == key(base, "train_resnet50")
    gate_changed = load_settings(profile="smoke", overrides={"gate": {"min_accuracy": 0.9}})
    assert key(gate_changed, "gate") != key(base, "gate")
    assert key(gate_changed, "train_cnn") == key(base)


def _edited(monkeypatch, module: str, function: str | None = None) -> None:
    """As if `module` (or only `function` in it) had been edited: its AST gains a statement."""
    import ast

    trees = list(keys._modules())
    for i, (name, tree) in enumerate(trees):
        if name != module:
            continue
        tree = ast.parse(ast.unparse(tree))
        target = (
            tree
            if function is None
            else next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
        )
        target.body.append(ast.parse("_edited = 1").body[0])
        trees[i] = (name, tree)
    monkeypatch.setattr(keys, "_modules", lambda: tuple(trees))
    keys._shared_digest.cache_clear()


def test_a_code_edit_changes_exactly_the_keys_of_the_steps_that_run_it(monkeypatch):
    steps = ["ingest", "validate", "sample", "evaluate", "gate", "novelty", "gatys_search"]
    steps += [f"train_{f}" for f in families.names()]
    before = {s: stages.code_digest(s) for s in steps}

    def changed() -> set[str]:
        return {s for s in steps if stages.code_digest(s) != before[s]}

    try:
        _edited(monkeypatch, "artflow.classify.cnn", "fit_cnn")  # one family's fit
        assert changed() == {"train_cnn"}
        _edited(monkeypatch, "artflow.style.cyclegan.train")  # one family's own folder
        assert changed() == {"train_cnn", "train_cyclegan"}
        _edited(monkeypatch, "artflow.style.adain.networks")  # shared by the two stylizers
        assert changed() == {"train_cnn", "train_cyclegan", "train_stylizer", "train_fast_stylizer"}
        _edited(monkeypatch, "artflow.classify.train", "train_classifier")  # shared code
        assert changed() == set(steps)
    finally:
        keys._shared_digest.cache_clear()


def test_comments_and_formatting_are_not_code():
    import ast

    source = "def f(x):\n    return x + 1\n"
    noisy = "def f(x):  # a comment\n\n    return (x +\n            1)\n"
    assert ast.dump(ast.parse(source)) == ast.dump(ast.parse(noisy))


def test_every_output_is_a_file_kfps_cache_can_find(tmp_path):
    """kfp's local cache treats an output whose path does not exist as a miss: a Metrics
    artifact (metadata only) must be written out, or an unchanged re-run restores nothing."""
    metrics = Metrics(name="m", uri=str(tmp_path / "t" / "metrics"), metadata={})
    confusion = ClassificationMetrics(name="c", uri=str(tmp_path / "t" / "c"), metadata={})
    model = Model(name="model", uri=str(tmp_path / "t" / "model"), metadata={})
    report = Markdown(name="r", uri=str(tmp_path / "t" / "report"), metadata={})
    stages.log_metrics({"accuracy": 0.5, "passed": True, "name": "x"}, metrics)
    stages.log_confusion({"labels": ["a", "b"], "confusion": {"val": [[1, 0], [0, 1]]}}, confusion)
    outputs = {"metrics": metrics, "confusion": confusion, "model": model, "report": report}
    stages.seal(outputs)
    assert json.loads(Path(metrics.path).read_text()) == {"accuracy": 0.5, "passed": 1.0}
    assert "confusionMatrix" in json.loads(Path(confusion.path).read_text())
    assert Path(model.path).is_dir() and Path(report.path).is_file()


def _entry(root: Path, name: str, outputs: dict) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    arts = {
        k: {"__kfp_artifact__": True, "schema_title": "system.Model", "uri": "/x", "metadata": m}
        for k, m in outputs.items()
    }
    path = root / f"{name}.json"
    path.write_text(json.dumps({"Output": "1", **arts}))
    return path


def test_cached_models_missing_from_the_registry_are_forgotten(tmp_path, fresh_store):
    """A new MLflow store (e.g. after `make clean`) must not leave training restored."""
    from pipelines.cache import prune

    root = tmp_path / "cache"
    gone = _entry(root, "a", {"model": {"model_name": "artflow-artist-classifier", "version": "3"}})
    kept = _entry(root, "b", {"splits": {"rows": 1}})
    assert prune(root) == ["artflow-artist-classifier v3 is not in the registry"]
    assert not gone.exists() and kept.exists()


def test_a_gate_decision_is_forgotten_when_the_champion_moves(tmp_path):
    from artflow.registry import tracking
    from pipelines.cache import prune

    name = "artflow-test-moved-champion"
    client = tracking.client()
    client.create_registered_model(name)
    for _ in range(2):
        client.create_model_version(name, source=str(tmp_path), run_id=None)
    decision = {"model": name, "candidate": "2", "champion": "1", "passed": True}

    def pruned(meta: dict) -> bool:
        _entry(tmp_path / "c", "gate", {"report": meta})
        return bool(prune(tmp_path / "c"))

    assert pruned({**decision, "promoted": True})  # promoted v2, but no champion alias is set
    tracking.set_alias(name, "champion", "2")
    assert not pruned({**decision, "promoted": True})
    tracking.set_alias(name, "champion", "1")  # a rollback since the decision
    assert pruned({**decision, "promoted": True})
    assert not pruned({**decision, "promoted": False})  # refused: v1 stayed, as recorded
