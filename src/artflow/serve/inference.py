"""Model calls of the service, kept apart from HTTP: array transport and classifier runs.

The classifier is fed through BentoML's adaptive batching (one batchable endpoint per A/B
variant). Requests reach it through the service's in-process client, which serialises
arguments as JSON, so each image travels as base64 of a `.npy` buffer (float32, already
resized to the model's input size): compact, exact, and `np.load(allow_pickle=False)`
cannot execute anything.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from artflow.serve.validation import ApiError

MAX_SIDE = 2048  # of an array handed to the batch endpoint (model inputs are far smaller)


def encode_array(arr: np.ndarray) -> str:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr, dtype=np.float32), allow_pickle=False)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def decode_array(text: str) -> np.ndarray:
    """A float32 HxWx3 array from `encode_array`; ApiError(422) for anything else."""
    try:
        arr = np.load(io.BytesIO(base64.b64decode(text, validate=True)), allow_pickle=False)
    except (ValueError, TypeError, OSError) as exc:
        raise ApiError(422, f"not an encoded image array: {exc}") from None
    if arr.dtype != np.float32 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ApiError(422, f"expected a float32 HxWx3 array, got {arr.dtype} {arr.shape}")
    if max(arr.shape[:2]) > MAX_SIDE or min(arr.shape[:2]) < 1:
        raise ApiError(422, f"array side out of range: {arr.shape}")
    if not np.isfinite(arr).all():
        raise ApiError(422, "array holds NaN or infinite values")
    return arr


@dataclass
class ClassifierRunner:
    """Probabilities and penultimate-layer embeddings of a LoadedClassifier in ONE forward pass.

    `loaded.predict` and `loaded.embed` would each run the network; drift monitoring wants
    the embedding of every served image, so a two-output view of the same Keras graph is
    built once per loaded version (no weights are copied).
    """

    loaded: Any  # artflow.models.classifier_io.LoadedClassifier
    with_embedding: bool = True

    def __post_init__(self) -> None:
        self._dual = None
        if self.with_embedding:
            try:
                import keras

                from artflow.models.cnn import EMBEDDING

                model = self.loaded.model
                layer = model.get_layer(EMBEDDING)
                self._dual = keras.Model(model.inputs[0], [model.output, layer.output])
            except (ImportError, ValueError, AttributeError):
                self._dual = None  # a model without an `embedding` layer: probabilities only

    @property
    def size(self) -> int:
        return int(self.loaded.image_size)

    def prepare(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 HxWx3 -> float32 SxSx3 with the training pipeline's resize."""
        from artflow.models.classifier_io import resize_batch

        return resize_batch([rgb], self.size)[0]

    def run(self, batch: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """Arrays (any size, float32 0..255) -> (N, classes) probabilities, (N, D) embeddings."""
        from artflow.models.classifier_io import resize_batch

        if all(a.shape == (self.size, self.size, 3) for a in batch):
            x = np.stack(batch).astype(np.float32)
        else:  # resized for another version (an alias moved meanwhile): resize again
            x = resize_batch([np.clip(a, 0, 255).astype(np.uint8) for a in batch], self.size)
        if self._dual is not None:
            probs, emb = self._dual(x, training=False)
            return np.asarray(probs, dtype=np.float32), np.asarray(emb, dtype=np.float32)
        return np.asarray(self.loaded.model(x, training=False), dtype=np.float32), None


def rank(probs: np.ndarray, labels: list[str], k: int) -> list[dict[str, float | str]]:
    order = np.argsort(-probs)[: max(1, min(k, len(labels)))]
    return [{"artist": labels[i], "probability": round(float(probs[i]), 6)} for i in order]
