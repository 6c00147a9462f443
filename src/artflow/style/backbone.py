"""Feature extractors for Gatys NST and the style metrics: VGG19 / ResNet50 layer taps.

The extractor takes float32 RGB pixels in 0..255 (N, H, W, 3), applies the backbone's own
caffe-style preprocessing and returns the content feature map and the style feature maps
(shallow -> deep). Weights are `imagenet`, `none` (seeded He-normal init, so numbers are
reproducible and comparable between runs) or a path to a weights file.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from artflow.errors import ModelError

# The seed's layer choice (docs/conventions.md): one mid-level content layer, five style
# layers shallow -> deep.
LAYERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "vgg19": (
        "block3_conv4",
        ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"),
    ),
    "resnet50": (
        "conv3_block4_out",
        (
            "conv1_relu",
            "conv2_block3_out",
            "conv3_block4_out",
            "conv4_block6_out",
            "conv5_block3_out",
        ),
    ),
}
# Smallest image side each backbone can take (5 stride-2 stages; VGG's last pool needs 2 px).
MIN_SIDE = {"vgg19": 32, "resnet50": 32}
# ImageNet BGR channel means used by both backbones' caffe preprocessing.
_BGR_MEAN = np.array([103.939, 116.779, 123.68], dtype=np.float32)


@dataclass(frozen=True)
class Extractor:
    """A backbone cut at the content and style layers; call it on 0..255 RGB batches."""

    backbone: str
    model: Any  # keras.Model: preprocessed input -> [content, *style]
    n_style: int

    def __call__(self, pixels: Any) -> tuple[Any, list[Any]]:
        outs = self.model(preprocess(pixels))
        return outs[0], list(outs[1:])


def preprocess(pixels: Any) -> Any:
    """RGB 0..255 -> BGR minus the ImageNet mean (keras caffe mode), differentiable."""
    import tensorflow as tf

    return tf.reverse(pixels, axis=[-1]) - _BGR_MEAN


def build_backbone(backbone: str, weights: str, seed: int = 0) -> Any:
    """The Keras application without its top, with `weights` loaded as documented above."""
    import keras

    factory = {"vgg19": keras.applications.VGG19, "resnet50": keras.applications.ResNet50}[backbone]
    if weights == "imagenet":
        try:
            return factory(include_top=False, weights="imagenet", input_shape=(None, None, 3))
        except Exception as exc:  # noqa: BLE001 - offline download failures come in many types
            raise ModelError(
                f"cannot load ImageNet weights for {backbone}: {exc}",
                "connect once so Keras caches them, or use weights none or a weights file path",
            ) from None
    model = factory(include_top=False, weights=None, input_shape=(None, None, 3))
    if weights == "none":
        seeded_init(model, seed)
        return model
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ModelError(f"weights file not found: {path}", "pass imagenet, none or a file path")
    try:
        model.load_weights(str(path))
    except Exception as exc:  # noqa: BLE001 - h5py/keras raise several types for a bad file
        raise ModelError(f"cannot load weights from {path}: {exc}", "use a matching file") from None
    return model


def seeded_init(model: Any, seed: int) -> None:
    """Deterministic He-normal kernels, zero biases, identity batch norms.

    Keras initializers depend on global RNG state; this depends only on `seed`, so a
    weights-none extractor gives the same numbers in every process (comparable metrics).
    """
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        new = []
        for w in layer.weights:
            shape, name = tuple(w.shape), w.path.split("/")[-1]
            if name == "kernel":
                fan_in = int(np.prod(shape[:-1]))
                new.append(rng.normal(0.0, np.sqrt(2.0 / fan_in), shape).astype(np.float32))
            elif name in {"gamma", "moving_variance"}:
                new.append(np.ones(shape, np.float32))
            else:
                new.append(np.zeros(shape, np.float32))
        if new:
            layer.set_weights(new)


@lru_cache(maxsize=4)
def build_extractor(backbone: str = "vgg19", weights: str = "none", seed: int = 0) -> Extractor:
    """Cached per process: building VGG19 costs seconds and the graph is shape-agnostic."""
    import keras

    if backbone not in LAYERS:
        raise ModelError(f"unknown backbone {backbone!r}", "use vgg19 or resnet50")
    base = build_backbone(backbone, weights, seed)
    base.trainable = False
    content, style = LAYERS[backbone]
    outputs = [base.get_layer(name).output for name in (content, *style)]
    model = keras.Model(base.input, outputs, name=f"{backbone}_nst_features")
    return Extractor(backbone=backbone, model=model, n_style=len(style))
