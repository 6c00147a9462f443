"""ResNet50 transfer model: base + flatten/avg pooling, dense 512 + BN, dense 16 + BN, softmax."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from artflow.classify.cnn import EMBEDDING, PROBS
from artflow.config import Settings
from artflow.data.layout import Workdir
from artflow.errors import ConfigError, ModelError

BASE = "resnet50"
# keras.applications.resnet50.preprocess_input ("caffe" mode): RGB -> BGR, minus ImageNet means.
_BGR_MEANS = np.array([103.939, 116.779, 123.68], dtype="float32")


def _caffe_preprocess_layer() -> Any:
    """preprocess_input as a frozen 1x1 convolution (channel swap as the kernel, -mean as bias).

    A built-in layer, unlike a Lambda (which needs safe_mode=False to load) or a custom class
    (which every consumer would have to import), so the saved .keras loads anywhere.
    """
    from keras import layers

    swap = np.zeros((1, 1, 3, 3), dtype="float32")
    for out_ch, in_ch in enumerate((2, 1, 0)):
        swap[0, 0, in_ch, out_ch] = 1.0
    layer = layers.Conv2D(3, 1, name="resnet50_preprocess", dtype="float32", trainable=False)
    layer.build((None, None, None, 3))
    layer.set_weights([swap, -_BGR_MEANS])
    return layer


def _base(image_size: int, weights: str) -> Any:
    import keras

    shape = (image_size, image_size, 3)
    if weights in {"imagenet", "none"}:
        return keras.applications.ResNet50(
            include_top=False, weights=None if weights == "none" else "imagenet", input_shape=shape
        )
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ModelError(
            f"ResNet50 weights file {path} does not exist",
            "set resnet.weights to imagenet, none or an existing .h5/.weights.h5 file",
        )
    base = keras.applications.ResNet50(include_top=False, weights=None, input_shape=shape)
    try:
        base.load_weights(str(path))
    except (ValueError, OSError) as exc:
        raise ModelError(f"cannot load ResNet50 weights from {path}: {exc}") from None
    return base


def build_resnet50(
    n_classes: int, image_size: int, weights: str = "none", pooling: str = "flatten"
) -> Any:
    """The seed's transfer model (docs/conventions.md); the base is a nested model `resnet50`."""
    import keras
    from keras import layers

    inputs = keras.Input((image_size, image_size, 3), dtype="float32", name="pixels")
    x = _caffe_preprocess_layer()(inputs)
    base = _base(image_size, weights)
    base.name = BASE
    x = base(x)
    x = (
        layers.Flatten(name="flatten")(x)
        if pooling == "flatten"
        else layers.GlobalAveragePooling2D(name="avg_pool")(x)
    )
    x = layers.Dense(512, activation="relu", name="dense512")(x)
    x = layers.BatchNormalization(name="bn512")(x)
    x = layers.Dense(16, activation="relu", name="dense16")(x)
    x = layers.BatchNormalization(name=EMBEDDING)(x)
    x = layers.Dense(n_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name=PROBS)(x)
    return keras.Model(inputs, outputs, name="artflow_resnet50")


def _is_batch_norm(layer: Any) -> bool:
    return layer.__class__.__name__ == "BatchNormalization"


def set_phase(model: Any, phase: int, unfreeze_top_layers: int) -> dict[str, int]:
    """Make the layers of training phase 1 or 2 trainable; returns what is trainable now.

    Phase 1 (the study's first phase) trains the whole model; phase 2 trains the head and the
    top `unfreeze_top_layers` layers of the base (the study: 50). In both phases the base's
    BatchNormalization layers stay frozen, which in Keras 3 also runs them in inference mode:
    their ImageNet moving statistics would otherwise be overwritten by the statistics of
    small batches of paintings, and unfreezing them mid-way shifts every activation above them
    (see docs/classifier.md). The in-model preprocessing layer is never trainable.
    """
    if phase not in (1, 2):
        raise ValueError(f"ResNet50 training has phases 1 and 2, not {phase}")
    base = model.get_layer(BASE)
    base.trainable = True
    n = len(base.layers)
    for i, layer in enumerate(base.layers):
        selected = phase == 1 or i >= n - unfreeze_top_layers
        layer.trainable = selected and not _is_batch_norm(layer)
    with_weights = [layer for layer in base.layers if layer.weights]
    return {
        "trainable_base_layers": sum(layer.trainable for layer in with_weights),
        "frozen_base_layers": sum(not layer.trainable for layer in with_weights),
        "trainable_weights": len(model.trainable_weights),
    }


def freeze_base_except_top(model: Any, unfreeze_top_layers: int) -> int:
    """Phase 2: freeze the ResNet50 base except its top layers; returns how many are trainable."""
    set_phase(model, 2, unfreeze_top_layers)
    return sum(layer.trainable for layer in model.get_layer(BASE).layers)


def resnet_phases(model: Any, cfg: Any) -> Iterator[tuple[int, int, dict[str, int]]]:
    """Set up each ResNet50 phase that has epochs: trainable layers, then a fresh compile.

    Yields (phase, epochs, trainable counts) with `model` ready to fit; the caller fits it
    before asking for the next phase (a generator, so the set-up is testable without a fit).
    """
    from artflow.classify.cnn import compile_classifier

    phases = [
        (1, cfg.phase1_epochs, cfg.phase1_learning_rate),
        (2, cfg.phase2_epochs, cfg.phase2_learning_rate),
    ]
    for phase, epochs, lr in phases:
        if epochs == 0:
            continue
        counts = set_phase(model, phase, cfg.unfreeze_top_layers)
        compile_classifier(model, lr)  # trainability is read when the train step is built
        yield phase, epochs, counts


def fit_resnet(settings: Settings, wd: Workdir, data: dict[str, Any], n: int, verbose: int) -> Any:
    """Phase 1 trains the whole model; phase 2 the head and the base's top layers."""
    import mlflow

    from artflow.classify.train import callbacks

    cfg = settings.resnet
    model = build_resnet50(n, cfg.image_size, cfg.weights, cfg.pooling)
    histories, done = [], 0
    for phase, epochs, counts in resnet_phases(model, cfg):
        mlflow.log_params({f"phase{phase}_{k}": v for k, v in counts.items()})
        name, patience = f"resnet50_phase{phase}", cfg.early_stopping_patience
        cbs = callbacks(wd, name, patience, data["run_key"], epoch_offset=done)
        history = model.fit(
            data["train"].dataset,
            validation_data=data["val"].dataset,
            epochs=epochs,
            class_weight=data["class_weight"],
            shuffle=False,  # the tf.data pipeline shuffles (seeded)
            callbacks=cbs,
            verbose=verbose,
        )
        histories.append(history)
        done += len(history.history.get("loss", []))
    if not histories:
        raise ConfigError("resnet.phase1_epochs and resnet.phase2_epochs are both 0")
    return model, histories
