"""A model family is declared once (artflow.families): a new one is trained by the pipeline's
training step, cached by its declared key, and registered, with nothing else to change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kfp.dsl import ClassificationMetrics, Dataset, Metrics, Model

from artflow import families
from artflow.registry import tracking


def fit_tiny(settings, wd, data, n_classes, verbose):
    """The dummy family's network: pooled colours -> softmax; one epoch."""
    import keras

    from artflow.classify.cnn import compile_classifier

    size = settings.images.size
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(n_classes, activation="softmax")(x))
    compile_classifier(model, 0.01)
    history = model.fit(data["train"].dataset, validation_data=data["val"].dataset, epochs=1)
    return model, [history]


@pytest.fixture
def dummy_family():
    family = families.register(
        families.Family(
            name="dummy",
            kind="classifier",
            registry_name=families.CLASSIFIER,
            section="cnn",  # borrows the CNN's batch size
            sections=("images", "cnn"),
            train="artflow.classify.train:train_classifier",
            fit=fit_tiny,
        )
    )
    yield family
    families.unregister("dummy")


def _artifacts(tmp_path: Path, run: int) -> dict:
    out = tmp_path / f"run{run}"
    return {
        "model": Model(name="model", uri=str(out / "model"), metadata={}),
        "metrics": Metrics(name="metrics", uri=str(out / "metrics"), metadata={}),
        "confusion": ClassificationMetrics(name="confusion", uri=str(out / "c"), metadata={}),
    }


def test_a_family_declared_once_is_trained_cached_and_registered(
    dummy_family, demo_workdir, tmp_path
):
    from components.train import train_op

    overlay = tmp_path / "tiny.yaml"
    overlay.write_text(json.dumps({"images": {"size": 32}, "cnn": {"batch_size": 64}}))
    data = Dataset(name="data", uri=str(demo_workdir.root), metadata={})
    splits = Dataset(name="splits", uri=str(demo_workdir.root), metadata={})
    common = dict(
        family="dummy",
        tune=False,
        enabled=True,
        profile=str(overlay),
        mlflow_uri="",
        cache_dir=str(tmp_path / "cache"),
        force=False,
        data=data,
        splits=splits,
    )
    first = _artifacts(tmp_path, 1)
    version = train_op.python_func(**common, **first)
    assert version
    registered = tracking.client().get_model_version(families.CLASSIFIER, version)
    assert registered.tags["family"] == "dummy"
    assert first["model"].metadata["uri"] == f"models:/{families.CLASSIFIER}/{version}"
    assert json.loads((Path(first["model"].path) / "model.json").read_text())["family"] == "dummy"
    assert "confusionMatrix" in first["confusion"].metadata
    assert (tmp_path / "cache" / "train_dummy").is_dir()  # its declared step name

    second = _artifacts(tmp_path, 2)
    assert train_op.python_func(**common, **second) == version  # cached: nothing retrained
    assert second["model"].metadata == first["model"].metadata
    versions = tracking.client().search_model_versions(f"name='{families.CLASSIFIER}'")
    assert [str(v.version) for v in versions if v.tags.get("family") == "dummy"] == [version]
