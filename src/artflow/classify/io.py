"""Load and register artist classifiers: the contract serving, the gate and drift build on.

A registered version of `artflow-artist-classifier` carries tags `labels` (JSON list; index =
class), `image_size` and `family` (cnn | resnet50). Its Keras model takes float32 (N, S, S, 3)
raw 0..255 pixels and preprocesses inside the graph, so `LoadedClassifier.predict` only resizes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from artflow.classify.cnn import EMBEDDING
from artflow.errors import ModelError
from artflow.registry import tracking


def resize_batch(images: Sequence[np.ndarray] | np.ndarray, size: int) -> np.ndarray:
    """uint8 HxWx3 images of any size -> float32 (N, size, size, 3), 0..255.

    The same resize as the training input pipeline (`artflow.data.tfdata.resize`), so a model
    sees identical pixels in training and in serving.
    """
    from artflow.data.tfdata import resize

    out = np.empty((len(images), size, size, 3), dtype="float32")
    for i, image in enumerate(images):
        arr = np.asarray(image)
        if arr.ndim != 3 or arr.shape[-1] != 3:
            raise ModelError(f"image {i} has shape {arr.shape}; expected HxWx3 RGB")
        out[i] = resize(arr, size).numpy()
    return out


@dataclass
class LoadedClassifier:
    """A registered classifier version, ready to predict on raw RGB images."""

    model: Any
    labels: list[str]
    image_size: int
    name: str
    version: str
    family: str
    run_id: str | None = None
    size_mb: float = 0.0  # size of the saved .keras file
    _embedder: Any = field(default=None, repr=False)

    @property
    def uri(self) -> str:
        return tracking.model_uri(self.name, self.version)

    def _batches(self, images: Sequence[np.ndarray] | np.ndarray, batch_size: int):
        for start in range(0, len(images), batch_size):
            yield resize_batch(images[start : start + batch_size], self.image_size)

    def predict(
        self, images: Sequence[np.ndarray] | np.ndarray, batch_size: int = 32
    ) -> np.ndarray:
        """(N, n_classes) float32 probabilities for uint8 HxWx3 images of any size."""
        if len(images) == 0:
            return np.zeros((0, len(self.labels)), dtype="float32")
        # Calling the model directly avoids model.predict's per-call set-up (serving latency).
        parts = [
            np.asarray(self.model(x, training=False)) for x in self._batches(images, batch_size)
        ]
        return np.concatenate(parts).astype("float32")

    def predict_labels(self, images: Sequence[np.ndarray] | np.ndarray) -> list[str]:
        return [self.labels[i] for i in self.predict(images).argmax(axis=1)]

    def embed(self, images: Sequence[np.ndarray] | np.ndarray, batch_size: int = 32) -> np.ndarray:
        """(N, D) float32 penultimate-layer activations (the layer named `embedding`)."""
        if self._embedder is None:
            import keras

            layer = self.model.get_layer(EMBEDDING)
            self._embedder = keras.Model(self.model.input, layer.output)
        dim = int(self._embedder.output.shape[-1])
        if len(images) == 0:
            return np.zeros((0, dim), dtype="float32")
        parts = [
            np.asarray(self._embedder(x, training=False)) for x in self._batches(images, batch_size)
        ]
        return np.concatenate(parts).astype("float32")


def resolve_version(ref: str) -> Any:
    """The MLflow ModelVersion behind `models:/name@alias`, `models:/name/N`, an alias or N."""

    name, key = tracking.CLASSIFIER, ref.strip()
    if key.startswith("models:/"):
        body = key[len("models:/") :]
        if "@" in body:
            name, key = body.split("@", 1)
        elif "/" in body:
            name, key = body.rsplit("/", 1)
        else:
            name, key = body, "latest"
    if not key:
        raise ModelError(f"model reference {ref!r} names no version or alias")
    if key.isdigit():
        mv = tracking.model_version(name, key)
    elif key == "latest":
        mv = max(tracking.search_versions(name), key=lambda v: int(v.version), default=None)
    else:
        mv = tracking.alias_version(name, key)
    if mv is None:  # not set; an unreachable registry raised RegistryUnavailable instead
        raise ModelError(
            f"no classifier version for {ref!r} ({name})",
            "train one with `artflow train classifier`; list versions with `artflow models list`",
        )
    return mv


def load_classifier(ref: str = tracking.CHAMPION) -> LoadedClassifier:
    """Load a registered classifier version with its label map and input size."""
    mv = resolve_version(ref)
    tags = dict(mv.tags or {})
    missing = [t for t in ("labels", "image_size", "family") if t not in tags]
    if missing:
        raise ModelError(
            f"{mv.name} version {mv.version} lacks tags {missing} (not registered by artflow)",
            "register classifiers with artflow.classify.io.register_classifier",
        )
    model, size_mb = _load_model(tracking.model_uri(mv.name, str(mv.version)))
    return LoadedClassifier(
        model=model,
        labels=list(json.loads(tags["labels"])),
        image_size=int(tags["image_size"]),
        name=mv.name,
        version=str(mv.version),
        family=tags["family"],
        run_id=mv.run_id,
        size_mb=size_mb,
    )


def classifier_from_file(path: str | Path, meta: dict[str, Any]) -> LoadedClassifier:
    """A classifier from a `.keras` file and the registry facts recorded beside it (a Bento's
    model store: `name`, `version`, `run_id` and the version's `tags`)."""
    from artflow.registry.safe_load import load_keras_file

    tags = dict(meta.get("tags") or {})
    missing = [t for t in ("labels", "image_size", "family") if t not in tags]
    if missing:
        raise ModelError(f"{path}: metadata lacks tags {missing}", "rebuild the Bento")
    path = Path(path)
    return LoadedClassifier(
        model=load_keras_file(path, f"{meta.get('name')} v{meta.get('version')} ({path})"),
        labels=list(json.loads(tags["labels"])),
        image_size=int(tags["image_size"]),
        name=str(meta.get("name")),
        version=str(meta.get("version")),
        family=tags["family"],
        run_id=meta.get("run_id"),
        size_mb=path.stat().st_size / 1e6,
    )


def _load_model(uri: str) -> tuple[Any, float]:
    """Download the logged model, refuse pickles/code, load its .keras file in safe mode (MB)."""
    from artflow.registry.safe_load import load_registered

    model, path = load_registered(uri, tracking.tracking_uri())
    return model, path.stat().st_size / 1e6


@dataclass(frozen=True)
class Registered:
    name: str
    version: str
    run_id: str | None

    @property
    def uri(self) -> str:
        return tracking.model_uri(self.name, self.version)


def inference_copy(model: Any) -> Any:
    """The same architecture and weights without the optimizer state.

    A compiled model saves Adam's moments too (3x the weights): a ResNet50 would exceed the
    gate's size limit. Serving never needs them.
    """
    copy = model.__class__.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy


def register_classifier(
    model: Any,
    labels: Sequence[str],
    image_size: int,
    family: str,
    input_example: np.ndarray | None = None,
    name: str = tracking.CLASSIFIER,
    challenger: bool = True,
) -> Registered:
    """Log the model to the active MLflow run, register it, tag it and mark it `challenger`."""
    import mlflow

    from artflow import families

    if family not in families.names("classifier"):
        raise ModelError(
            f"unknown classifier family {family!r}",
            f"use one of {', '.join(families.names('classifier'))}",
        )
    if input_example is None:
        input_example = np.zeros((1, image_size, image_size, 3), dtype="float32")
    info = tracking.log_keras_model(
        inference_copy(model), name, input_example=input_example.astype("float32")
    )
    version = str(info.registered_model_version)
    client = tracking.client()
    tags = {"labels": json.dumps(list(labels)), "image_size": str(image_size), "family": family}
    for key, value in tags.items():
        tracking._retry(lambda k=key, v=value: client.set_model_version_tag(name, version, k, v))
    if challenger:
        tracking.mark_challenger(name, version)
    run = mlflow.active_run()
    return Registered(name, version, run.info.run_id if run else info.run_id)
