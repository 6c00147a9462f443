"""A low-dimensional embedding of images: the classifier's penultimate layer, PCA-reduced.

The PCA is fitted once on the reference images and stored with the model version as JSON
(mean + components), not as a pickle: it is plain linear algebra, readable by anything, and
loading it executes no code. Column names of the projected embedding: emb_0 .. emb_{k-1}.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from artflow.errors import DataError, ModelError

PREFIX = "emb_"


def column_names(k: int) -> list[str]:
    return [f"{PREFIX}{i}" for i in range(k)]


@dataclass(frozen=True)
class Projection:
    """x -> (x - mean) @ components.T, as fitted by sklearn's PCA."""

    mean: np.ndarray  # (D,)
    components: np.ndarray  # (k, D)
    explained_variance_ratio: np.ndarray  # (k,)
    model_name: str = ""
    model_version: str = ""

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    @property
    def k(self) -> int:
        return int(self.components.shape[0])

    @property
    def columns(self) -> list[str]:
        return column_names(self.k)

    @classmethod
    def fit(cls, vectors: np.ndarray, k: int, seed: int = 0, **meta: str) -> Projection:
        """Fit PCA with at most `k` components (fewer when the reference is smaller)."""
        from sklearn.decomposition import PCA

        vectors = np.asarray(vectors, dtype=np.float64)
        if vectors.ndim != 2 or len(vectors) < 2:
            raise DataError(f"need at least 2 reference embeddings to fit PCA, got {len(vectors)}")
        k = max(1, min(k, vectors.shape[0] - 1, vectors.shape[1]))
        pca = PCA(n_components=k, random_state=seed).fit(vectors)
        return cls(pca.mean_, pca.components_, pca.explained_variance_ratio_, **meta)

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.asarray(vectors, dtype=np.float64)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise DataError(
                f"embeddings have shape {vectors.shape}, the projection expects (N, {self.dim})",
                "the log was written by a different model version than the reference",
            )
        return (vectors - self.mean) @ self.components.T

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "model_version": self.model_version,
            "dim": self.dim,
            "k": self.k,
            "mean": self.mean.tolist(),
            "components": self.components.tolist(),
            "explained_variance_ratio": self.explained_variance_ratio.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Projection:
        try:
            mean = np.asarray(data["mean"], dtype=np.float64)
            components = np.asarray(data["components"], dtype=np.float64)
            ratio = np.asarray(data.get("explained_variance_ratio", []), dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"the stored embedding projection is malformed: {exc}") from None
        if components.ndim != 2 or components.shape[1] != mean.shape[0]:
            raise ModelError(
                f"projection components {components.shape} do not match mean {mean.shape}"
            )
        return cls(
            mean,
            components,
            ratio,
            str(data.get("model_name", "")),
            str(data.get("model_version", "")),
        )

    def save(self, path: Path) -> Path:
        path.write_text(json.dumps(self.to_dict()))
        return path

    @classmethod
    def load(cls, path: Path) -> Projection:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelError(f"cannot read the embedding projection {path}: {exc}") from None


def project_frame(vectors: np.ndarray, projection: Projection) -> dict[str, np.ndarray]:
    """emb_i -> column of projected values, ready to join a features DataFrame."""
    projected = projection.transform(vectors)
    return {name: projected[:, i] for i, name in enumerate(projection.columns)}
