"""A model family is declared once (artflow.families): a new one is trained by the pipeline's
training step, keyed by its declared settings and its own code, registered, evaluated, gated
and served, with nothing else to change; a new served style model likewise through its
`Model` entry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kfp.dsl import ClassificationMetrics, Dataset, Markdown, Metrics, Model

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


@pytest.fixture
def tiny_style():
    """A style family and its served model, declared as a new one would be (its module:
    tests/pipelines/tiny_style.py), borrowing the CycleGAN's settings section."""
    from tests.pipelines import tiny_style as module

    family = families.register(
        families.Family(
            name="tiny_style",
            kind="style",
            registry_name=module.NAME,
            section="cyclegan",
            sections=("cyclegan",),
            train="tests.pipelines.tiny_style:train_tiny_style",
            style_data=True,
        )
    )
    declared = families.declare(
        families.style_model(
            module.NAME,
            "tiny",
            "tests.pipelines.tiny_style:load",
            "tests.pipelines.tiny_style:load_file",
            layers=("tests.pipelines.tiny_style",),
            intended_use="Tint photos for the family-table test.",
            limitations=("Only a test.",),
        )
    )
    yield family, declared
    families.unregister("tiny_style")
    families.undeclare(module.NAME)


def _gate(tmp_path: Path, name: str, common: dict, candidate: Model) -> bool:
    from components.gate import gate_op

    out = tmp_path / f"gate-{name}"
    return gate_op.python_func(
        model_name=name,
        candidate=candidate,
        decision=Metrics(name="decision", uri=str(out / "decision"), metadata={}),
        report=Markdown(name="report", uri=str(out / "report"), metadata={}),
        **{k: v for k, v in common.items() if k not in ("family", "tune", "enabled")},
    )


def _step_args(family: str, overlay: Path, workdir: Any, tmp_path: Path) -> dict:
    """What the pipeline hands its training step (and, less the first three, its gate)."""
    return dict(
        family=family,
        tune=False,
        enabled=True,
        profile=str(overlay),
        mlflow_uri="",
        data=Dataset(name="data", uri=str(workdir.root), metadata={}),
        splits=Dataset(name="splits", uri=str(workdir.root), metadata={}),
    )


def _artifacts(tmp_path: Path, run: int) -> dict:
    out = tmp_path / f"run{run}"
    return {
        "model": Model(name="model", uri=str(out / "model"), metadata={}),
        "metrics": Metrics(name="metrics", uri=str(out / "metrics"), metadata={}),
        "confusion": ClassificationMetrics(name="confusion", uri=str(out / "c"), metadata={}),
    }


def test_a_family_declared_once_is_trained_cached_registered_gated_and_served(
    dummy_family, demo_workdir, tmp_path, fresh_store
):
    from components.train import train_op

    overlay = tmp_path / "tiny.yaml"
    gate = {"min_accuracy": 0.0, "min_macro_f1": 0.0}  # the wiring is tested, not the model
    overlay.write_text(
        json.dumps({"images": {"size": 32}, "cnn": {"batch_size": 64}, "gate": gate})
    )
    common = _step_args("dummy", overlay, demo_workdir, tmp_path)
    first = _artifacts(tmp_path, 1)
    version = train_op.python_func(**common, **first)  # what the evaluate step receives
    assert version
    registered = tracking.client().get_model_version(families.CLASSIFIER, version)
    assert registered.tags["family"] == "dummy"
    assert first["model"].metadata["uri"] == f"models:/{families.CLASSIFIER}/{version}"
    assert json.loads((Path(first["model"].path) / "model.json").read_text())["family"] == "dummy"
    assert "confusionMatrix" in first["confusion"].metadata
    assert Path(first["metrics"].path).is_file()  # what kfp's cache needs to restore it

    # its cache key: its declared sections (kfp's key covers the rest)
    from artflow import stages
    from artflow.config import load_settings

    base = load_settings(profile="smoke")
    other = load_settings(profile="smoke", overrides={"resnet": {"batch_size": 3}})
    assert stages.step_key("train_dummy", base) == stages.step_key("train_dummy", other)
    assert stages.step("train_dummy").sections == ("images", "cnn")

    # evaluated: the evaluation step's selection takes it as the challenger
    assert stages.select_candidate(stages.trained_versions([version, ""]))["version"] == version
    # gated by the pipeline's gate step: the first classifier in this store, and its
    # family's best (`best-dummy`), which is what `family=dummy` serves
    assert _gate(tmp_path, families.CLASSIFIER, common, first["model"])
    assert str(tracking.alias_version(families.CLASSIFIER, "best-dummy").version) == version

    import numpy as np

    from artflow.serve.family import FamilyModels
    from artflow.serve.models import _load_classifier
    from artflow.serve.web import page_html

    served = FamilyModels(_load_classifier)
    slot = served.get("dummy")
    assert slot.version == version and set(served.status()) >= {"cnn", "resnet50", "dummy"}
    probs, _ = slot.model.run([np.zeros((32, 32, 3), np.float32)])
    assert probs.shape[0] == 1 and abs(float(probs[0].sum()) - 1) < 1e-3
    assert '<option value="dummy">dummy</option>' in page_html()  # listed on the page


def test_a_served_style_model_declared_once_is_trained_gated_loaded_and_carded(
    tiny_style, demo_workdir, tmp_path, fresh_store
):
    from artflow.registry.views import is_style_model
    from artflow.serve import models as serving
    from components.train import train_op

    family, declared = tiny_style
    overlay = tmp_path / "tiny.yaml"
    overlay.write_text(json.dumps({"images": {"size": 32}}))
    common = _step_args("tiny_style", overlay, demo_workdir, tmp_path)
    trained = _artifacts(tmp_path, 1)
    version = train_op.python_func(**common, **trained)
    name = declared.name
    card = tracking.client().get_model_version(name, version).description
    assert "Tint photos for the family-table test." in card and "- Only a test." in card
    assert is_style_model(name)  # the gate compares its style metrics
    assert _gate(tmp_path, name, common, trained["model"])
    assert str(tracking.alias_version(name, "champion").version) == version

    # served: a slot named by its short name, loaded through its declared loader (safe
    # loading imports its custom layer's module, as the table says)
    assert "tests.pipelines.tiny_style" in families.layer_modules()
    from artflow.config import load_settings

    held = serving.ModelSet(load_settings(), bento={})
    held.refresh()
    slot = held.slot("tiny")
    assert slot.loaded and slot.version == version and slot.alias == "champion"
    assert serving.rollback_target("tiny") == (name, "tiny")
    assert serving.short_names()[name] == "tiny"  # the Bento's labels
    path = tmp_path / "tiny.keras"
    slot.model.save(path)
    from_bento = serving.bento_loaders()["tiny"](path, {"name": name, "version": version})
    assert [w.shape for w in from_bento.weights] == [(3,)]
