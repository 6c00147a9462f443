"""Evaluation by slice: where a classifier is worse than its overall accuracy says.

Two kinds of slice of an evaluation split:

* **conditions**: every image of the split, transformed the way paintings reach the service
  (a grayscale scan, a small image, a detail cropped out of the painting, a recompressed
  JPEG) and classified again;
* **groups**: the images whose artist has a given `genre` or `nationality` in artists.csv
  (an artist with "Impressionism,Symbolism" counts in both genres).

Each slice gets `n`, `accuracy` and `macro_f1`; per-artist precision/recall/F1 comes from the
plain evaluation (`score`). The gate (artflow.promote) reads `slices` for its floors and its
"not worse than the champion on any slice by more than X" rule.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

Condition = Callable[[np.ndarray, int], np.ndarray]

JPEG_QUALITY = 30  # a heavily recompressed web copy
CROP_SIDE = 0.6  # the central 60% x 60%: a detail, not the composition
LOW_RES_FACTOR = 4  # the longer side at a quarter of the model's input size
_UNSAFE = re.compile(r"[^\w.\- :/]")  # characters MLflow refuses in metric names


def grayscale(img: np.ndarray, size: int) -> np.ndarray:
    return np.repeat(np.asarray(Image.fromarray(img).convert("L"))[..., None], 3, axis=-1)


def low_resolution(img: np.ndarray, size: int) -> np.ndarray:
    side = max(8, size // LOW_RES_FACTOR)
    h, w = img.shape[:2]
    scale = side / max(h, w)
    small = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(img).resize(small, Image.Resampling.BILINEAR))


def crop(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    ch, cw = max(1, round(h * CROP_SIDE)), max(1, round(w * CROP_SIDE))
    y, x = (h - ch) // 2, (w - cw) // 2
    return img[y : y + ch, x : x + cw]


def jpeg(img: np.ndarray, size: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=JPEG_QUALITY)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


CONDITIONS: dict[str, Condition] = {
    "grayscale": grayscale,
    "low_resolution": low_resolution,
    "crop": crop,
    "jpeg": jpeg,
}
GROUP_COLUMNS = ("genre", "nationality")


def metrics(y_true: Sequence[int], y_pred: Sequence[int]) -> dict[str, Any]:
    from sklearn.metrics import f1_score

    y_true, y_pred = np.asarray(y_true, int), np.asarray(y_pred, int)
    if not len(y_true):
        return {"n": 0, "accuracy": float("nan"), "macro_f1": float("nan")}
    f1 = f1_score(y_true, y_pred, labels=sorted(set(y_true)), average="macro", zero_division=0)
    return {
        "n": int(len(y_true)),
        "accuracy": float(np.mean(y_true == y_pred)),
        "macro_f1": float(f1),
    }


def artist_groups(artists_csv: Path, labels: Sequence[str]) -> dict[str, set[int]]:
    """`genre:<g>` / `nationality:<n>` -> the label indices of the artists in that group;
    empty when artists.csv is missing or lacks the columns (other data sets)."""
    import pandas as pd

    from artflow.data.names import key

    if not Path(artists_csv).is_file():
        return {}
    table = pd.read_csv(artists_csv)
    if "name" not in table.columns:
        return {}
    by_key = {key(label): i for i, label in enumerate(labels)}
    groups: dict[str, set[int]] = {}
    for column in GROUP_COLUMNS:
        if column not in table.columns:
            continue
        for name, values in zip(table["name"], table[column], strict=True):
            label = by_key.get(key(str(name)))
            if label is None or not isinstance(values, str):
                continue
            for value in (v.strip() for v in values.split(",")):
                if value:
                    groups.setdefault(f"{column}:{value}", set()).add(label)
    return groups


def evaluate_slices(
    predict: Callable[[list[np.ndarray]], np.ndarray],
    images: Sequence[np.ndarray],
    y_true: Sequence[int],
    y_pred: Sequence[int],
    image_size: int,
    groups: dict[str, set[int]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Metrics per slice. `predict` maps uint8 images to (N, classes) probabilities;
    `y_pred` are the plain predictions (the group slices reuse them)."""
    y_true = np.asarray(y_true, int)
    out: dict[str, dict[str, Any]] = {}
    for name, condition in CONDITIONS.items():
        changed = [condition(np.asarray(img), image_size) for img in images]
        out[name] = metrics(y_true, predict(changed).argmax(axis=1))
    y_pred = np.asarray(y_pred, int)
    for name, members in sorted((groups or {}).items()):
        rows = np.isin(y_true, sorted(members))
        if rows.any():
            out[name] = {**metrics(y_true[rows], y_pred[rows]), "artists": len(members)}
    return out


def split_slices(loaded: Any, wd: Any, frame: Any, predicted: Sequence[str]) -> dict[str, dict]:
    """`evaluate_slices` for a LoadedClassifier on a split's frame (path, label) whose plain
    predictions (artist names) are `predicted`; the groups come from wd's artists.csv."""
    from artflow.imageio import load_rgb

    images = [load_rgb(wd.abs(p)) for p in frame["path"]]
    index = {name: i for i, name in enumerate(loaded.labels)}
    return evaluate_slices(
        loaded.predict,
        images,
        frame["label"].to_numpy(),
        [index[p] for p in predicted],
        loaded.image_size,
        artist_groups(wd.artists_csv, loaded.labels),
    )


def mlflow_metrics(split: str, slices: dict[str, dict], per_class: dict[str, dict]) -> dict:
    """Flat MLflow metrics: `<split>.slice.<name>.accuracy|macro_f1|n` and
    `<split>.artist.<name>.precision|recall|f1`."""
    out = {}
    for name, m in slices.items():
        for metric in ("accuracy", "macro_f1", "n"):
            out[f"{split}.{metric_key(name, metric)}"] = float(m[metric])
    for artist, m in per_class.items():
        for metric in ("precision", "recall", "f1"):
            out[f"{split}.artist.{_UNSAFE.sub('_', artist)}.{metric}"] = float(m[metric])
    return out


def safe_name(name: str) -> str:
    """`name` with the characters MLflow refuses in metric names replaced by `_`."""
    return _UNSAFE.sub("_", name)


def metric_key(slice_name: str, metric: str) -> str:
    """An MLflow-safe metric name: `slice.genre:Impressionism.accuracy`."""
    return f"slice.{_UNSAFE.sub('_', slice_name)}.{metric}"


def markdown(slices: dict[str, dict[str, Any]], per_class: dict[str, dict[str, Any]]) -> str:
    """The slice and per-artist tables (the KFP Markdown artifact, the MLflow text)."""
    lines = ["## Slices", "", "| slice | images | accuracy | macro-F1 |", "|---|---|---|---|"]
    for name, m in slices.items():
        lines.append(f"| {name} | {m['n']} | {m['accuracy']:.3f} | {m['macro_f1']:.3f} |")
    lines += ["", "## Per artist", "", "| artist | precision | recall | F1 | images |"]
    lines.append("|---|---|---|---|---|")
    for artist, m in per_class.items():
        lines.append(
            f"| {artist} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | "
            f"{m['support']} |"
        )
    return "\n".join(lines) + "\n"
