"""The seed's custom CNN: three Conv2D blocks, flatten, dense 64 -> dense 64, dropout, softmax.

The seed: the notebooks artflow grew from (docs/conventions.md).
"""

from __future__ import annotations

from typing import Any

from artflow.config import Settings
from artflow.data.layout import Workdir

# Layer names other modules rely on: the penultimate layer (drift embeddings) and the output.
EMBEDDING = "embedding"
PROBS = "probs"


def build_cnn(
    n_classes: int,
    image_size: int,
    dense_units: int = 64,
    dropout: float = 0.5,
    learning_rate: float | None = None,
    dense_layers: int = 2,
) -> Any:
    """Build (and compile when `learning_rate` is given) the custom CNN.

    The head is `dense_layers` ReLU Dense layers of `dense_units` (the study: two of 64); the
    last one is the embedding that drift monitoring and the novelty score read.

    Input: float32 raw pixels 0..255; the Rescaling to [0, 1] lives inside the model.
    Under a mixed-precision policy the softmax still runs in float32 (numerically safe).
    """
    import keras
    from keras import layers

    inputs = keras.Input((image_size, image_size, 3), dtype="float32", name="pixels")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    for i, filters in enumerate((32, 64, 128), start=1):
        x = layers.Conv2D(filters, 3, activation="relu", padding="same", name=f"conv{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    for i in range(1, dense_layers):
        x = layers.Dense(dense_units, activation="relu", name=f"dense{i}")(x)
    x = layers.Dense(dense_units, activation="relu", name=EMBEDDING)(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(n_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name=PROBS)(x)
    model = keras.Model(inputs, outputs, name="artflow_cnn")
    if learning_rate is not None:
        compile_classifier(model, learning_rate)
    return model


def compile_classifier(model: Any, learning_rate: float) -> None:
    """Adam + categorical cross-entropy; metrics by keyword (Keras 3, docs/stack-notes.md)."""
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )


def fit_cnn(settings: Settings, wd: Workdir, data: dict[str, Any], n: int, verbose: int) -> Any:
    from artflow.classify.train import callbacks

    cfg = settings.cnn
    size = settings.images.size
    model = build_cnn(n, size, cfg.dense_units, cfg.dropout, cfg.learning_rate, cfg.dense_layers)
    history = model.fit(
        data["train"].dataset,
        validation_data=data["val"].dataset,
        epochs=cfg.epochs,
        class_weight=data["class_weight"],
        shuffle=False,  # the tf.data pipeline shuffles (seeded)
        callbacks=callbacks(wd, "cnn", cfg.early_stopping_patience, data["run_key"]),
        verbose=verbose,
    )
    return model, [history]
