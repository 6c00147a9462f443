"""The reference profile: what the serving model saw in training, stored with its version.

`build_reference` profiles a split (settings.drift.reference_split, by default the training
split) through a registered classifier: image features, the PCA-reduced embedding and the
predictions. It logs `drift/reference.parquet` and `drift/projection.json` to the model
version's MLflow run and tags the version `artflow.drift_reference` with their location, so
drift is always measured against the version that actually serves.

Training code calls it right after registering:
    build_reference(settings, wd, registered.uri)      # or a LoadedClassifier
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from artflow.config import Settings
from artflow.data.layout import Workdir
from artflow.errors import DataError
from artflow.monitor.embedding import Projection, project_frame
from artflow.monitor.features import FEATURE_NAMES, describe_image
from artflow.registry import tracking

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from artflow.classify.io import LoadedClassifier

ARTIFACT_DIR = "drift"
REFERENCE_FILE = "reference.parquet"
PROJECTION_FILE = "projection.json"
TAG = "artflow.drift_reference"
BATCH = 64


@dataclass
class Reference:
    frame: pd.DataFrame  # path, true_artist, artist, confidence, FEATURE_NAMES, emb_*
    projection: Projection
    model_name: str
    model_version: str
    location: str  # where it was read from (artifact URI or local folder)


def classifier_for(model_ref: str | LoadedClassifier) -> LoadedClassifier:
    if isinstance(model_ref, str):
        from artflow.classify.io import load_classifier

        return load_classifier(model_ref)
    return model_ref


def profile_images(
    classifier: LoadedClassifier, images: list[np.ndarray]
) -> tuple[pd.DataFrame, np.ndarray]:
    """Features + predictions per image (a DataFrame) and the raw embeddings (N, D)."""
    probs = classifier.predict(images)
    frame = pd.DataFrame([describe_image(img) for img in images], columns=list(FEATURE_NAMES))
    frame.insert(0, "artist", [classifier.labels[i] for i in probs.argmax(axis=1)])
    frame.insert(1, "confidence", probs.max(axis=1).astype(np.float64))
    return frame, classifier.embed(images)


def compute_reference(
    settings: Settings, wd: Workdir, classifier: LoadedClassifier
) -> tuple[pd.DataFrame, Projection]:
    """Profile a seeded sample of the reference split and fit the embedding projection."""
    from rich.progress import track

    from artflow.imageio import load_rgb

    cfg = settings.drift
    split = _split_rows(wd, cfg.reference_split, cfg.reference_max_images, settings.seed)
    frames, vectors = [], []
    starts = range(0, len(split), BATCH)
    for start in track(starts, description=f"profiling {len(split)} reference images"):
        rows = split.iloc[start : start + BATCH]
        images = [load_rgb(wd.abs(p)) for p in rows["path"]]
        frame, emb = profile_images(classifier, images)
        frame.insert(0, "path", rows["path"].to_numpy())
        frame.insert(1, "true_artist", rows["artist"].to_numpy())
        frames.append(frame)
        vectors.append(emb)
    embeddings = np.concatenate(vectors)
    projection = Projection.fit(
        embeddings,
        cfg.embedding_components,
        seed=settings.seed,
        model_name=classifier.name,
        model_version=classifier.version,
    )
    reference = pd.concat(frames, ignore_index=True)
    reference = reference.assign(**project_frame(embeddings, projection))
    return reference, projection


def _split_rows(wd: Workdir, split: str, limit: int, seed: int) -> pd.DataFrame:
    path = wd.split_csv(split)
    if not path.is_file():
        raise DataError(
            f"no {split} split at {path} to build the drift reference from",
            "run `artflow data sample` on this workdir first (or pass --workdir)",
        )
    rows = pd.read_csv(path)
    if len(rows) < 2:
        raise DataError(f"the {split} split {path} has {len(rows)} images; need at least 2")
    if len(rows) > limit:
        rows = rows.sample(n=limit, random_state=seed).sort_index()
    return rows.reset_index(drop=True)


def build_reference(
    settings: Settings, wd: Workdir, model_ref: str | LoadedClassifier, log: bool = True
) -> Path:
    """Compute the reference of a classifier version, save it locally and log it to MLflow.

    Returns the local reference.parquet (under wd.reports/drift/reference/<version>/).
    """
    classifier = classifier_for(model_ref)
    frame, projection = compute_reference(settings, wd, classifier)
    out = wd.reports / "drift" / "reference" / f"{classifier.name}-v{classifier.version}"
    out.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out / REFERENCE_FILE, index=False)
    projection.save(out / PROJECTION_FILE)
    (out / "summary.json").write_text(json.dumps(_summary(frame, projection, settings), indent=2))
    if log:
        try:
            _log(classifier, out)
        except Exception as exc:
            if not tracking.is_refusal(exc):
                raise
            # a read-only identity (the drift job's): the reference is used from here
            logger.warning(
                "%s may not log the drift reference of %s v%s to its run; using %s",
                tracking.identity(),
                classifier.name,
                classifier.version,
                out,
            )
    return out / REFERENCE_FILE


def _summary(frame: pd.DataFrame, projection: Projection, settings: Settings) -> dict[str, Any]:
    return {
        "model_name": projection.model_name,
        "model_version": projection.model_version,
        "split": settings.drift.reference_split,
        "images": len(frame),
        "embedding_dim": projection.dim,
        "embedding_components": projection.k,
        "explained_variance": float(projection.explained_variance_ratio.sum()),
    }


def _log(classifier: LoadedClassifier, folder: Path) -> None:
    """Attach the files to the version's run and point the version at them."""
    client = tracking.client()
    name, version = classifier.name, classifier.version
    run_id = classifier.run_id or getattr(tracking.model_version(name, version), "run_id", None)
    if not run_id:
        raise DataError(f"{name} v{version} has no MLflow run to log the drift reference to")
    for file in (REFERENCE_FILE, PROJECTION_FILE, "summary.json"):
        tracking._retry(lambda f=file: client.log_artifact(run_id, str(folder / f), ARTIFACT_DIR))
    uri = f"runs:/{run_id}/{ARTIFACT_DIR}"
    tracking._retry(lambda: client.set_model_version_tag(name, version, TAG, uri))


def load_reference(
    settings: Settings, wd: Workdir, model_ref: str | LoadedClassifier, build_missing: bool = True
) -> Reference:
    """The logged reference of a version; built (and logged) first when it has none."""
    from artflow.classify.io import resolve_version

    if isinstance(model_ref, str):
        mv = resolve_version(model_ref)
        name, version, tags = mv.name, str(mv.version), dict(mv.tags or {})
    else:
        name, version = model_ref.name, model_ref.version
        tags = _version_tags(name, version)
    uri = tags.get(TAG)
    if uri is None:
        if not build_missing:
            raise DataError(
                f"{name} v{version} has no drift reference",
                "build it with `artflow drift reference --model-uri ...`",
            )
        path = build_reference(settings, wd, model_ref)
        uri = _version_tags(name, version).get(TAG)
        if uri is None:  # built, but this identity may not log it (see build_reference)
            frame, projection = (
                pd.read_parquet(path),
                Projection.load(path.parent / PROJECTION_FILE),
            )
            return Reference(frame, projection, name, version, path.parent.as_uri())
    return _download(uri, name, version)


def _version_tags(name: str, version: str) -> dict[str, str]:
    mv = tracking.model_version(name, version)
    if mv is None:
        raise DataError(f"{name} has no version {version}", "see `artflow models list`")
    return dict(mv.tags or {})


def _download(uri: str, name: str, version: str) -> Reference:
    import mlflow

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a tiny download
    with tempfile.TemporaryDirectory(prefix="artflow-ref-") as tmp:
        folder = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=uri, dst_path=tmp, tracking_uri=tracking.tracking_uri()
            )
        )
        frame = pd.read_parquet(folder / REFERENCE_FILE)
        projection = Projection.load(folder / PROJECTION_FILE)
    return Reference(frame, projection, name, version, uri)
