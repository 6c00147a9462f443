"""A served style model added through the model table only (tests/pipelines/test_families.py,
declared in tests/pipelines/dummy_families.py):
its network (with a custom layer, so safe loading must import this module), its training and
its two loaders, as a style family's own folder would hold them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras

from tests.pipelines.dummy_families import STYLE_MODEL

NAME = STYLE_MODEL  # declared in tests/pipelines/dummy_families.py


@keras.saving.register_keras_serializable(package="artflow_tests")
class Tint(keras.layers.Layer):
    """Scales each colour channel by a learned factor."""

    def build(self, input_shape: Any) -> None:
        self.scale = self.add_weight(shape=(3,), initializer="ones", name="scale")

    def call(self, x: Any) -> Any:
        return x * self.scale


def train_tiny_style(settings: Any, wd: Any) -> dict[str, Any]:
    """Register one version with the style metrics the gate compares (no fitting: the point
    is the wiring)."""
    import mlflow

    from artflow.registry import tracking

    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, Tint()(inputs))
    with tracking.start_run("artflow-tests-style", "tiny_style", settings):
        mlflow.log_metrics({"style_loss": 2.0, "content_loss": 1.0, "ssim": 0.5})
        info = tracking.log_keras_model(model, NAME)
    version = str(info.registered_model_version)
    tracking.mark_challenger(NAME, version)
    return {"model_name": NAME, "version": version, "metrics": {"style_loss": 2.0}}


def load(uri: str) -> Any:
    from artflow.registry import tracking

    return tracking.load_keras_model(uri)


def load_file(path: Path, meta: dict[str, Any]) -> Any:
    from artflow.registry.safe_load import load_keras_file

    return load_keras_file(path)
