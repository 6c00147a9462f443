"""Registered models are loaded without trusting their pickles or code.

The hostile version carries a `custom_objects.cloudpickle` whose unpickling writes a marker
file: MLflow's own loader runs it (shown at the end, so the test can fail), artflow's loader
refuses the artifact before anything is unpickled, in the running service and in the gate.
"""

from __future__ import annotations

import json
import pathlib
from pathlib import Path

import numpy as np
import pytest

from tests.serve.conftest import IMAGE_SIZE, LABELS


class WritesMarker:
    """Unpickling this object calls Path.write_text(marker, ...): code run at load time."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.write_text, (pathlib.Path(self.marker), "unpickled"))


def register_hostile_classifier(marker: Path) -> str:
    """A classifier version with artflow's tags and a custom_objects pickle that writes `marker`."""
    import keras
    import mlflow
    import mlflow.tensorflow

    from artflow.classify.cnn import build_cnn
    from artflow.registry import tracking

    keras.utils.set_random_seed(7)
    model = build_cnn(len(LABELS), IMAGE_SIZE, dense_units=8)
    tracking.experiment("artflow-serve-tests")
    with mlflow.start_run(run_name="hostile"):
        info = mlflow.tensorflow.log_model(
            model,
            name="model",
            registered_model_name=tracking.CLASSIFIER,
            custom_objects={"payload": WritesMarker(marker)},
            pip_requirements=tracking.PIP_REQUIREMENTS,
        )
    version = str(info.registered_model_version)
    client = tracking.client()
    tags = {"labels": json.dumps(LABELS), "image_size": str(IMAGE_SIZE), "family": "cnn"}
    for key, value in tags.items():
        client.set_model_version_tag(tracking.CLASSIFIER, version, key, value)
    return version


@pytest.mark.slow
def test_a_pickled_payload_is_refused_and_the_service_keeps_its_models(
    server, client, admin_headers, tmp_path
):
    from artflow.classify.io import load_classifier
    from artflow.registry import tracking
    from artflow.registry.safe_load import UnsafeModelError

    marker = tmp_path / "payload-ran"
    hostile = register_hostile_classifier(marker)
    before = client.post("/admin/status", headers=admin_headers).json()["models"]
    challenger = before["classifier:challenger"]["version"]
    tracking.set_alias(tracking.CLASSIFIER, tracking.CHALLENGER, hostile)
    try:
        reload = client.post("/admin/reload", headers=admin_headers, timeout=120)
        assert reload.status_code == 200, reload.text
        body = reload.json()
        error = body["changes"]["classifier:challenger"]["error"]
        assert "custom_objects.cloudpickle" in error and "refused" in error
        slot = body["models"]["classifier:challenger"]
        assert slot["loaded"] and slot["version"] == challenger  # the old one still serves
        assert body["models"]["classifier:champion"]["version"] == server.versions["v2"]
        assert client.get("/readyz").status_code == 200
        assert not marker.exists(), "the service unpickled the artifact"
        # The gate's loader refuses it too (same code path, in this process).
        with pytest.raises(UnsafeModelError, match="pickled objects or code"):
            load_classifier(hostile)
        assert not marker.exists()
    finally:
        tracking.set_alias(tracking.CLASSIFIER, tracking.CHALLENGER, challenger)
        restored = client.post("/admin/reload", headers=admin_headers, timeout=120).json()
        assert restored["models"]["classifier:challenger"]["error"] is None
    # Control: MLflow's own loader does run the payload, so the assertions above could fail.
    import mlflow.tensorflow

    mlflow.tensorflow.load_model(tracking.model_uri(tracking.CLASSIFIER, hostile))
    assert marker.read_text() == "unpickled"


def test_safe_loader_refuses_code_and_lambda_layers_and_loads_plain_models(tmp_path):
    import keras

    from artflow.registry.safe_load import (
        UnsafeModelError,
        checked_keras_file,
        load_keras_file,
    )

    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
    folder = tmp_path / "artifact"
    (folder / "data").mkdir(parents=True)
    plain.save(folder / "data" / "model.keras")
    (folder / "MLmodel").write_text("flavors:\n  tensorflow:\n    code: null\n")
    loaded = load_keras_file(checked_keras_file(folder, "plain"))
    x = np.ones((1, 3), np.float32)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(plain(x)), rtol=1e-6)

    (folder / "code").mkdir()
    (folder / "code" / "layers.py").write_text("import os\n")
    with pytest.raises(UnsafeModelError, match="code/"):
        checked_keras_file(folder, "with code")

    lam = keras.Sequential([keras.Input((3,)), keras.layers.Lambda(lambda t: t * 2)])
    lam.save(tmp_path / "lambda.keras")
    with pytest.raises(UnsafeModelError, match="Lambda"):
        load_keras_file(tmp_path / "lambda.keras")
