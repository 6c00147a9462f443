"""Fixtures for the gate: a tiny frozen test split of coloured images and hand-built models.

The models are real Keras classifiers registered in the real (session) MLflow store, with
weights set by hand instead of trained: "red", "green" and "blue" images are told apart by
their mean colour, so a model's accuracy on the split is known exactly. `swap` lists class
pairs whose outputs are exchanged, which makes a model wrong on exactly those classes.
"""

from __future__ import annotations

import csv
import hashlib
import json
import uuid

import numpy as np
import pytest

LABELS = ["Red_Painter", "Green_Painter", "Blue_Painter"]
PER_CLASS = 8
SIZE = 32


@pytest.fixture(scope="session")
def color_workdir(tmp_path_factory: pytest.TempPathFactory):
    from artflow.data.layout import Workdir
    from artflow.imageio import save_rgb

    wd = Workdir.at(tmp_path_factory.mktemp("gate_wd"))
    rng = np.random.default_rng(0)
    rows = []
    for label, artist in enumerate(LABELS):
        for i in range(PER_CLASS):
            img = rng.integers(0, 60, (SIZE, SIZE, 3), dtype=np.uint8)
            img[..., label] = rng.integers(150, 255, (SIZE, SIZE), dtype=np.uint8)
            path = wd.raw_artworks / "images" / artist / f"{artist}_{i + 1}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            save_rgb(img, path)
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
            rows.append({"path": wd.rel(path), "artist": artist, "label": label, "sha256": sha})
    wd.splits.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val", "test"):
        with wd.split_csv(split).open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["path", "artist", "label", "sha256"])
            writer.writeheader()
            writer.writerows(rows)
    wd.labels.write_text(json.dumps(LABELS))
    return wd


def color_model(swap: tuple[tuple[int, int], ...] = ()):
    """Mean colour -> class; classes in each `swap` pair are exchanged (wrong on purpose)."""
    import keras
    from keras import layers

    n = len(LABELS)
    perm = list(range(n))
    for a, b in swap:
        perm[a], perm[b] = perm[b], perm[a]
    weights = np.zeros((3, n), dtype="float32")
    for channel in range(3):
        weights[channel, perm[channel]] = 20.0
    inputs = keras.Input((SIZE, SIZE, 3), dtype="float32", name="pixels")
    x = layers.Rescaling(1.0 / 255)(inputs)
    x = layers.GlobalAveragePooling2D(name="embedding")(x)
    dense = layers.Dense(n, name="logits")
    x = dense(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probs")(x)
    dense.set_weights([weights, np.full((n,), -10.0, dtype="float32")])
    return keras.Model(inputs, outputs)


def register_color_model(settings, name: str, swap=(), family: str = "cnn") -> str:
    """Register a colour model as a new version of `name` (marked challenger); its version."""
    from artflow.classify.io import register_classifier
    from artflow.registry import tracking

    accuracy = 1.0 - 2 * len(swap) / len(LABELS)
    with tracking.start_run("artflow-gate-tests", f"{name}-{family}", settings):
        import mlflow

        mlflow.log_metrics(
            {
                "test_accuracy": accuracy,
                "test_macro_f1": accuracy,
                "val_accuracy": accuracy,
                "val_macro_f1": accuracy,
            }
        )
        reg = register_classifier(color_model(swap), LABELS, SIZE, family, name=name)
    return reg.version


@pytest.fixture
def model_name() -> str:
    """A fresh registered-model name per test, so tests share the store but not state."""
    return f"gate-test-{uuid.uuid4().hex[:8]}"
