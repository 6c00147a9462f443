"""Which training paintings an upload resembles: k nearest in the classifier's embedding.

One index, not two: the novelty model (artflow.monitor.novelty) already holds the training
split's embeddings (PCA-projected, standardised: the `emb_*` columns of its reference). Its
rows also carry their path and artist, and a small JPEG thumbnail each, stored in the same
`novelty.npz` logged with the model version: the service shows the gallery from the model's
own artifacts and never reads the data folder of the machine it runs on. Only rows of the
training split get a thumbnail (`attach_gallery` checks each against the split CSV), and only
rows with one are ever returned.
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from artflow.errors import DataError

if TYPE_CHECKING:
    from artflow.data.layout import Workdir

log = logging.getLogger(__name__)

THUMB_SIDE = 96  # the longer side of a stored thumbnail
THUMB_QUALITY = 80
GALLERY_SPLIT = "train"


def thumbnail(img: np.ndarray) -> bytes:
    """A small JPEG of an RGB image (the longer side THUMB_SIDE)."""
    pic = Image.fromarray(np.asarray(img, dtype=np.uint8))
    pic.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    pic.save(buf, "JPEG", quality=THUMB_QUALITY)
    return buf.getvalue()


def attach_gallery(model: Any, wd: Workdir) -> Any:
    """`model` with a thumbnail for each of its reference rows that is in the training split
    (the others keep an empty one and are never returned)."""
    from dataclasses import replace

    import pandas as pd

    from artflow.imageio import load_rgb

    if not model.paths:
        raise DataError(
            "the novelty model has no row paths", "rebuild it: artflow novelty calibrate"
        )
    train = set(pd.read_csv(wd.split_csv(GALLERY_SPLIT))["path"].astype(str))
    thumbs = [thumbnail(load_rgb(wd.abs(p))) if p in train else b"" for p in model.paths]
    skipped = sum(1 for t in thumbs if not t)
    if skipped:
        log.warning(
            "artflow: %d reference rows are not in the %s split: no thumbnail",
            skipped,
            GALLERY_SPLIT,
        )
    return replace(model, thumbnails=tuple(thumbs))


def embedding_columns(model: Any) -> np.ndarray:
    return np.array([i for i, c in enumerate(model.columns) if c.startswith("emb_")], dtype=int)


def nearest(model: Any, projected: np.ndarray, k: int) -> list[dict[str, Any]]:
    """The k training paintings nearest to one PCA-projected embedding: artist, distance and
    the thumbnail as a data URL; [] when the model carries no gallery."""
    rows = np.array([i for i, t in enumerate(model.thumbnails) if t], dtype=int)
    if not len(rows) or k < 1:
        return []
    cols = embedding_columns(model)
    emb_names = [model.columns[i] for i in cols]
    index = {c: i for i, c in enumerate(model.columns)}
    query = (np.asarray(projected, np.float64) - model.mean[cols]) / model.scale[cols]
    if query.shape != (len(emb_names),):
        raise DataError(
            f"embedding of shape {query.shape}; the gallery has {len(emb_names)} columns"
        )
    space = model.reference[np.ix_(rows, [index[c] for c in emb_names])]
    # Distance in the PCA space itself, not the standardised one the novelty score uses: the
    # emb_* columns share one unit, and standardising would give the weakest components
    # (mostly noise) as much weight as the main ones.
    dist = np.sqrt((((space - query) * model.scale[cols]) ** 2).sum(axis=1))
    order = np.argsort(dist, kind="stable")[: min(k, len(rows))]
    return [
        {
            "artist": model.artists[rows[i]],
            "distance": round(float(dist[i]), 4),
            "thumbnail": "data:image/jpeg;base64,"
            + base64.b64encode(model.thumbnails[rows[i]]).decode(),
        }
        for i in order
    ]


def nearest_artists(model: Any, projected: Sequence[np.ndarray], k: int = 1) -> list[list[str]]:
    """The artists of the k nearest gallery rows, per query (for evaluations and tests)."""
    return [[n["artist"] for n in nearest(model, p, k)] for p in projected]
