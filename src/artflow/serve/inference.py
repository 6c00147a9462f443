"""Classifier calls of the service, kept apart from HTTP: preparation, batch runs, top-k."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image


@dataclass
class ClassifierRunner:
    """Probabilities and penultimate-layer embeddings of a LoadedClassifier in ONE forward pass.

    `loaded.predict` and `loaded.embed` would each run the network; drift monitoring wants
    the embedding of every served image, so a two-output view of the same Keras graph is
    built once per loaded version (no weights are copied).
    """

    loaded: Any  # artflow.classify.io.LoadedClassifier
    with_embedding: bool = True

    def __post_init__(self) -> None:
        self._dual = None
        if self.with_embedding:
            try:
                import keras

                from artflow.classify.cnn import EMBEDDING

                model = self.loaded.model
                layer = model.get_layer(EMBEDDING)
                self._dual = keras.Model(model.inputs[0], [model.output, layer.output])
            except (ImportError, ValueError, AttributeError):
                self._dual = None  # a model without an `embedding` layer: probabilities only

    @property
    def size(self) -> int:
        return int(self.loaded.image_size)

    def prepare(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 HxWx3 -> float32 SxSx3: the training pipeline's resize, done by Pillow.

        Training resizes with `tf.image.resize(bilinear, antialias=True)` rounded to uint8
        (`artflow.data.tfdata.resize`); Pillow's BILINEAR downscale is the same triangle filter
        widened by the scale factor, on the same pixel centres, and differs only by rounding
        (at most 1 of 255, ~0.2 on average; tests/serve/test_inference.py). Per request it
        costs ~1 ms instead of ~3.4 ms of eager TensorFlow ops (docs/serving.md).
        """
        size = self.size
        if rgb.shape[:2] != (size, size):
            rgb = np.asarray(Image.fromarray(rgb).resize((size, size), Image.Resampling.BILINEAR))
        return rgb.astype(np.float32)

    def run(self, batch: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """Arrays (any size, float32 0..255) -> (N, classes) probabilities, (N, D) embeddings."""
        from artflow.classify.io import resize_batch

        if all(a.shape == (self.size, self.size, 3) for a in batch):
            x = np.stack(batch).astype(np.float32)
        else:  # resized for another version (an alias moved meanwhile): resize again
            x = resize_batch([np.clip(a, 0, 255).astype(np.uint8) for a in batch], self.size)
        if self._dual is not None:
            probs, emb = self._dual(x, training=False)
            return np.asarray(probs, dtype=np.float32), np.asarray(emb, dtype=np.float32)
        return np.asarray(self.loaded.model(x, training=False), dtype=np.float32), None


@dataclass
class Pending:
    """A prepared image waiting for the classifier; `dropped` once its request gave up."""

    array: np.ndarray
    dropped: bool = False


def run_live(
    runner: ClassifierRunner, items: list[Pending]
) -> list[tuple[np.ndarray, np.ndarray | None] | None]:
    """(probabilities, embedding) per item, in order, from ONE forward pass over the items
    whose request still waits; None for the dropped ones, which the model never sees."""
    live = [i for i, item in enumerate(items) if not item.dropped]
    out: list[tuple[np.ndarray, np.ndarray | None] | None] = [None] * len(items)
    if live:
        probs, emb = runner.run([items[i].array for i in live])
        for row, i in enumerate(live):
            out[i] = (probs[row], None if emb is None else emb[row])
    return out


def rank(probs: np.ndarray, labels: list[str], k: int) -> list[dict[str, float | str]]:
    order = np.argsort(-probs)[: max(1, min(k, len(labels)))]
    return [{"artist": labels[i], "probability": round(float(probs[i]), 6)} for i in order]


class Cancelled(Exception):
    """Raised inside a computation whose request timed out: the work stops there."""


def encode_image(result: np.ndarray, fmt: str) -> bytes:
    """PNG or JPEG bytes of an output (already at its working size), in a worker thread."""
    buf = io.BytesIO()
    img = Image.fromarray(np.asarray(result, dtype=np.uint8))
    img.save(buf, format="PNG" if fmt == "png" else "JPEG", quality=92)
    return buf.getvalue()
