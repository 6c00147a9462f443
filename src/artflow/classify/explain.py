"""Where the classifier looked: Grad-CAM for the predicted artist, as a heatmap overlay.

Grad-CAM (Selvaraju et al. 2017): the gradient of the artist's score with respect to the last
convolutional feature map, averaged over space, weights that map's channels; the ReLU of the
weighted sum is the heatmap. Hand-written with `tf.GradientTape` rather than taken from a
library (tf-keras-vis, Keras' Grad-CAM example) because those build a sub-model up to a named
inner layer, which Keras 3 cannot do through a nested base model (the ResNet50 family's
`resnet50` layer): both families' top-level graphs are a chain of layers, so running that
chain under the tape and keeping the last spatial activation works for both in a few lines.
"""

from __future__ import annotations

import base64
import io
import threading
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from artflow.errors import ModelError

OVERLAY_MAX_SIDE = 512  # the overlay PNG's longer side (the page scales it over the upload)
_POOLING = ("Pooling", "Flatten", "Dropout")


@dataclass(frozen=True)
class Explanation:
    heatmap: np.ndarray  # (h, w) float32 in [0, 1] on the feature map's grid
    layer: str  # the layer whose activations were weighted
    class_index: int
    probabilities: np.ndarray  # the forward pass's output (n_classes,)

    def upsampled(self, width: int, height: int) -> np.ndarray:
        """The heatmap at (height, width), bilinear, in [0, 1]."""
        img = Image.fromarray((self.heatmap * 255).astype(np.uint8))
        up = img.resize((width, height), Image.Resampling.BILINEAR)
        return np.asarray(up, dtype=np.float32) / 255.0

    def mass_in(self, box: tuple[float, float, float, float]) -> float:
        """Share of the heatmap's mass inside `box` = (x0, y0, x1, y1) as fractions of the image."""
        side = 64
        heat = self.upsampled(side, side)
        x0, y0, x1, y1 = (round(v * side) for v in box)
        total = float(heat.sum())
        return float(heat[y0:y1, x0:x1].sum()) / total if total > 0 else 0.0


def feature_layer(model: Any) -> int:
    """Index in `model.layers` of the last layer with a spatial (4-D) output that is not a
    pooling/flatten step: the CNN's last Conv2D, the ResNet50 family's nested base."""
    chosen = None
    for i, layer in enumerate(model.layers):
        shape = getattr(layer, "output", None)
        shape = getattr(shape, "shape", None)
        kind = layer.__class__.__name__
        if shape is not None and len(shape) == 4 and not any(p in kind for p in _POOLING):
            chosen = i
    if chosen is None:
        raise ModelError(f"{model.name} has no spatial layer to explain")
    return chosen


def _check_chain(model: Any) -> None:
    """Grad-CAM below runs model.layers one after another: refuse a graph that branches."""
    for prev, layer in zip(model.layers, model.layers[1:], strict=False):
        inbound = [n for n in getattr(layer, "_inbound_nodes", [])]
        parents = {id(t._keras_history[0]) for n in inbound for t in n.input_tensors}
        if parents and parents != {id(prev)}:
            raise ModelError(f"{model.name}: layer {layer.name} does not follow {prev.name}")


_FUNCTIONS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_FUNCTIONS_LOCK = threading.Lock()


def _cam_function(model: Any) -> Any:
    """The traced Grad-CAM step of `model` (traced once per model, ~10x faster than eager
    for the ResNet50 family): (1, S, S, 3) pixels, class index (-1: predicted) ->
    (feature-map CAM, probabilities, class index)."""
    import tensorflow as tf

    _check_chain(model)
    target = feature_layer(model)
    layers = model.layers[1:]  # layers[0] is the InputLayer

    @tf.function(reduce_retracing=True)
    def step(x: Any, class_index: Any) -> Any:
        with tf.GradientTape() as tape:
            out, features = x, x
            for i, layer in enumerate(layers, start=1):
                out = layer(out, training=False)
                if i == target:
                    features = out
                    tape.watch(features)
            probs = out[0]
            index = tf.where(class_index < 0, tf.argmax(probs, output_type=tf.int32), class_index)
            # The log-probability's gradient: a softmax near 1.0 would flatten the plain score's.
            score = tf.math.log(tf.gather(probs, index) + 1e-9)
        grads = tape.gradient(score, features)[0]
        weights = tf.reduce_mean(grads, axis=(0, 1))
        cam = tf.nn.relu(tf.reduce_sum(features[0] * weights, axis=-1))
        return cam, probs, index

    return step, model.layers[target].name


def grad_cam(model: Any, x: np.ndarray, class_index: int | None = None) -> Explanation:
    """Grad-CAM of one prepared image `x` (S, S, 3 float32, 0..255) for `class_index`
    (default: the predicted class)."""
    import tensorflow as tf

    with _FUNCTIONS_LOCK:
        if model not in _FUNCTIONS:
            _FUNCTIONS[model] = _cam_function(model)
        step, layer = _FUNCTIONS[model]
    index = -1 if class_index is None else int(class_index)
    cam, probs, chosen = step(tf.constant(x[None], tf.float32), tf.constant(index, tf.int32))
    cam = cam.numpy().astype(np.float32)
    peak = float(cam.max())
    heat = cam / peak if peak > 0 else np.zeros_like(cam)
    return Explanation(heat, layer, int(chosen), probs.numpy())


def colormap(heat: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1] -> (H, W, 4) uint8 RGBA: blue-to-red 'jet', transparent where cold."""
    h = np.clip(heat, 0, 1)[..., None]
    rgb = np.clip(np.concatenate([4 * h - 1.5, 1.5 - np.abs(4 * h - 2), 2.5 - 4 * h], -1), 0, 1)
    alpha = np.clip(h * 1.4, 0, 0.75)
    return (np.concatenate([rgb, alpha], -1) * 255).astype(np.uint8)


def overlay_png(explanation: Explanation, width: int, height: int) -> tuple[bytes, int, int]:
    """A transparent RGBA PNG to lay over the (width x height) upload; -> (png, w, h)."""
    scale = min(1.0, OVERLAY_MAX_SIDE / max(width, height))
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    buf = io.BytesIO()
    Image.fromarray(colormap(explanation.upsampled(w, h)), "RGBA").save(buf, "PNG")
    return buf.getvalue(), w, h


def answer(explanation: Explanation, labels: list[str], width: int, height: int) -> dict[str, Any]:
    """The `explanation` part of a /classify answer: the overlay as a data URL and where it
    goes (the whole upload: the classifier resizes the full image, it never crops)."""
    png, w, h = overlay_png(explanation, width, height)
    return {
        "method": "grad-cam",
        "artist": labels[explanation.class_index],
        "layer": explanation.layer,
        "overlay_png": "data:image/png;base64," + base64.b64encode(png).decode(),
        "overlay_size": [w, h],
        "bounds": {"x": 0, "y": 0, "width": int(width), "height": int(height)},
        "grid": list(explanation.heatmap.shape),
    }
