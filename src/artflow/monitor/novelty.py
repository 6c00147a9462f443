"""Novelty: "this does not look like a painting", per request, from the drift profile.

Drift monitoring already describes every image twice: cheap image statistics
(`artflow.monitor.features`) and the classifier's embedding reduced by the reference PCA
(`artflow.monitor.embedding`). The novelty score of an image is its mean Euclidean distance
to the k nearest training images in that space, each column standardised by the training
reference. The threshold is calibrated on the validation split (paintings the model never
trained on): the (1 - novelty.false_alarm_rate) quantile of their scores, so by
construction about that share of real paintings is flagged, and anything farther from the
training paintings than that - a photograph, a screenshot, a diagram - is.

Stored as one .npz of plain arrays (loaded with allow_pickle=False, so it runs no code)
with the model version's drift reference: `novelty/novelty.npz`, version tag
`artflow.novelty`.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from artflow.config import NoveltyCfg
from artflow.errors import DataError
from artflow.fallback import Resolved
from artflow.monitor.embedding import column_names
from artflow.monitor.features import FEATURE_NAMES

log = logging.getLogger(__name__)

ARTIFACT_DIR = "novelty"
FILE = "novelty.npz"
TAG = "artflow.novelty"
# The image's size says nothing about whether it is a painting (uploads come in any size).
IMAGE_COLUMNS = tuple(c for c in FEATURE_NAMES if c not in {"width", "height", "aspect_ratio"})


@dataclass(frozen=True)
class Novelty:
    columns: tuple[str, ...]
    mean: np.ndarray  # (d,)
    scale: np.ndarray  # (d,)
    reference: np.ndarray  # (N, d), standardised
    k: int
    threshold: float
    false_alarm_rate: float
    # Per reference row: its split path, artist and a JPEG thumbnail (b"" = none), the gallery
    # of nearest training paintings (artflow.classify.neighbours); empty in older files.
    paths: tuple[str, ...] = ()
    artists: tuple[str, ...] = ()
    thumbnails: tuple[bytes, ...] = ()

    def _standardise(self, frame: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise DataError(f"novelty needs columns {missing}", "profile images with features")
        values = frame[list(self.columns)].to_numpy(dtype=np.float64)
        return (values - self.mean) / self.scale

    def scores(self, frame: pd.DataFrame) -> np.ndarray:
        """Mean distance to the k nearest reference rows, per row of `frame`."""
        from sklearn.neighbors import NearestNeighbors

        k = min(self.k, len(self.reference))
        nn = NearestNeighbors(n_neighbors=k).fit(self.reference)
        dist, _ = nn.kneighbors(self._standardise(frame))
        return dist.mean(axis=1)

    def check(self, features: dict[str, float], projected: np.ndarray | None) -> dict[str, Any]:
        """One request: {"score", "threshold", "novel"}; `projected` = PCA-reduced embedding."""
        row = dict(features)
        if projected is not None:
            row.update(zip(column_names(len(projected)), map(float, projected), strict=True))
        score = float(self.scores(pd.DataFrame([row]))[0])
        return {
            "score": round(score, 4),
            "threshold": round(self.threshold, 4),
            "novel": score > self.threshold,
        }

    def save(self, path: Path) -> Path:
        meta = {
            "columns": list(self.columns),
            "k": self.k,
            "threshold": self.threshold,
            "false_alarm_rate": self.false_alarm_rate,
        }
        blob, offsets = _pack(self.thumbnails)
        np.savez_compressed(
            path,
            mean=self.mean,
            scale=self.scale,
            reference=self.reference,
            meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
            paths=np.array(self.paths, dtype=str),
            artists=np.array(self.artists, dtype=str),
            thumbnails=blob,
            thumbnail_offsets=offsets,
        )
        return path

    @classmethod
    def load(cls, path: Path) -> Novelty:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            rows = _rows(data)
            return cls(
                columns=tuple(meta["columns"]),
                mean=data["mean"],
                scale=data["scale"],
                reference=data["reference"],
                k=int(meta["k"]),
                threshold=float(meta["threshold"]),
                false_alarm_rate=float(meta["false_alarm_rate"]),
                **rows,
            )


def _pack(items: tuple[bytes, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Byte strings as one uint8 array + offsets (an .npz holds no lists of bytes unpickled)."""
    offsets = np.cumsum([0, *map(len, items)]).astype(np.int64)
    return np.frombuffer(b"".join(items), dtype=np.uint8), offsets


def _rows(data: Any) -> dict[str, tuple]:
    """The per-row identity and thumbnails of a saved model (none in files written before)."""
    if "paths" not in data.files:
        return {}
    blob, off = data["thumbnails"].tobytes(), data["thumbnail_offsets"]
    return {
        "paths": tuple(str(p) for p in data["paths"]),
        "artists": tuple(str(a) for a in data["artists"]),
        "thumbnails": tuple(blob[off[i] : off[i + 1]] for i in range(len(off) - 1)),
    }


def fit(
    reference: pd.DataFrame, validation: pd.DataFrame, cfg: NoveltyCfg, seed: int = 0
) -> Novelty:
    """Standardise on the training reference, calibrate the threshold on the validation rows.

    Both frames hold IMAGE_COLUMNS and the projected embedding columns (emb_*), as the
    drift reference does.
    """
    emb = [c for c in reference.columns if c.startswith("emb_")]
    columns = (*IMAGE_COLUMNS, *emb)
    values = reference[list(columns)].to_numpy(dtype=np.float64)
    rows = np.arange(len(values))
    if len(values) > cfg.max_reference:
        rows = np.sort(
            np.random.default_rng(seed).choice(len(values), cfg.max_reference, replace=False)
        )
        values = values[rows]
    # which painting each row is, when the reference says (the gallery of neighbours)
    identity = {}
    if {"path", "true_artist"} <= set(reference.columns):
        identity = {
            "paths": tuple(reference["path"].astype(str).to_numpy()[rows]),
            "artists": tuple(reference["true_artist"].astype(str).to_numpy()[rows]),
        }
    mean, scale = values.mean(axis=0), values.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)  # a constant column carries no distance
    model = Novelty(
        columns, mean, scale, (values - mean) / scale, cfg.k, 0.0, cfg.false_alarm_rate, **identity
    )
    if len(validation) < 2:
        raise DataError(
            f"need at least 2 validation images to calibrate novelty, got {len(validation)}"
        )
    val = model.scores(validation)
    threshold = float(np.quantile(val, 1.0 - cfg.false_alarm_rate, method="higher"))
    return replace(model, threshold=threshold)


def profile_split(
    wd: Any, split: str, classifier: Any, projection: Any, limit: int, seed: int
) -> pd.DataFrame:
    """Features + projected embeddings of a split's images (as the drift reference has)."""
    from artflow.imageio import load_rgb
    from artflow.monitor.embedding import project_frame
    from artflow.monitor.reference import BATCH, _split_rows, profile_images

    rows = _split_rows(wd, split, limit, seed)
    frames = []
    for start in range(0, len(rows), BATCH):
        images = [load_rgb(wd.abs(p)) for p in rows["path"].iloc[start : start + BATCH]]
        frame, emb = profile_images(classifier, images)
        frames.append(frame.assign(**project_frame(emb, projection)))
    return pd.concat(frames, ignore_index=True)


def build_novelty(
    settings: Any, wd: Any, model_ref: Any, log_to_run: bool = True
) -> tuple[Novelty, dict[str, Any]]:
    """Fit the novelty model of a classifier version from its drift reference and the
    validation split; log it to the version's run and tag the version. -> (model, summary)."""
    from artflow.monitor.reference import classifier_for, load_reference
    from artflow.registry import tracking

    classifier = classifier_for(model_ref)
    ref = load_reference(settings, wd, classifier)
    val = profile_split(
        wd, "val", classifier, ref.projection, settings.drift.reference_max_images, settings.seed
    )
    model = fit(ref.frame, val, settings.novelty, settings.seed)
    if model.paths:
        from artflow.classify.neighbours import attach_gallery

        model = attach_gallery(model, wd)
    flagged = float(np.mean(model.scores(val) > model.threshold))
    summary = {
        "model_name": classifier.name,
        "model_version": classifier.version,
        "threshold": model.threshold,
        "k": model.k,
        "reference": len(model.reference),
        "validation": len(val),
        "validation_flagged": flagged,
        "gallery": sum(1 for t in model.thumbnails if t),
    }
    if log_to_run:
        client = tracking.client()
        run_id = (
            classifier.run_id
            or client.get_model_version(classifier.name, classifier.version).run_id
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = model.save(Path(tmp) / FILE)
            (Path(tmp) / "summary.json").write_text(json.dumps(summary, indent=2))
            for f in (path, Path(tmp) / "summary.json"):
                tracking._retry(lambda f=f: client.log_artifact(run_id, str(f), ARTIFACT_DIR))
        uri = f"runs:/{run_id}/{ARTIFACT_DIR}/{FILE}"
        tracking._retry(
            lambda: client.set_model_version_tag(classifier.name, classifier.version, TAG, uri)
        )
    return model, summary


class NoveltyCache:
    """The service's view: per classifier version, its novelty model and drift projection
    (or None when the version has none: then requests carry no novelty verdict). A version
    whose model could not be loaded (registry down, broken file) gets no verdict for now and
    is asked again after `retry_s`, never remembered as "has none"."""

    def __init__(self, retry_s: float = 60.0) -> None:
        self._resolved: Resolved[tuple[str, str], tuple[Novelty, Any] | None] = Resolved(
            "the novelty model", retry_s
        )

    def get(self, name: str, version: str) -> tuple[Novelty, Any] | None:
        key = (name, str(version))
        return self._resolved.get(key, lambda: _load(*key), None, "no novelty verdict")

    def has_none(self, name: str, version: str) -> bool:
        """True only when the version was asked and has no novelty model."""
        found, value = self._resolved.known((name, str(version)))
        return found and value is None

    def unresolved(self) -> dict[str, str]:
        return self._resolved.unresolved()

    def clear(self) -> None:
        self._resolved.clear()


def _load(name: str, version: str) -> tuple[Novelty, Any] | None:
    import mlflow

    from artflow.monitor.embedding import Projection
    from artflow.monitor.reference import PROJECTION_FILE
    from artflow.monitor.reference import TAG as REF_TAG
    from artflow.registry import tracking

    mv = tracking.model_version(name, version)  # RegistryUnavailable when it cannot be asked
    tags = dict(mv.tags or {}) if mv is not None else {}
    if TAG not in tags or REF_TAG not in tags:
        return None
    uri = tracking.tracking_uri()
    with tempfile.TemporaryDirectory() as tmp:
        model = Novelty.load(
            Path(mlflow.artifacts.download_artifacts(tags[TAG], dst_path=tmp, tracking_uri=uri))
        )
        proj = mlflow.artifacts.download_artifacts(
            f"{tags[REF_TAG]}/{PROJECTION_FILE}", dst_path=tmp, tracking_uri=uri
        )
        return model, Projection.load(Path(proj))
