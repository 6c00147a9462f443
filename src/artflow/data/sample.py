"""Choose the classes and split the usable images into train / val / a frozen test set.

The test subset is chosen by content hash, not by a random draw: an image is in test iff
its sha256 falls below `test_share` of the hash space. Adding or removing other images (a new
data version) never moves an image into or out of test, so promotions are gated on the same
paintings over time. The rest is split per class, seeded, so each class is within one image
of train_share (sklearn's stratified splitter only guarantees that for the total).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from artflow.config import Settings
from artflow.data.ingest import read_manifest
from artflow.data.layout import Workdir
from artflow.errors import DataError

SPLIT_COLUMNS = ["path", "artist", "label", "sha256"]
STYLE_COLUMNS = ["path", "domain"]
HASH_SPACE = 16**8


def hash_fraction(sha256: str) -> float:
    """Position of a content hash in [0, 1): the same for the same bytes, forever."""
    return int(sha256[:8], 16) / HASH_SPACE


def in_frozen_test(sha: pd.Series, share: float) -> pd.Series:
    return sha.map(hash_fraction) < share


def sample(wd: Workdir, settings: Settings) -> dict:
    """Write splits/{train,val,test}.csv, labels.json, class_weights.json, style CSVs, metrics."""
    cfg = settings.sample
    if not wd.manifest.is_file() and wd.monet_manifest.is_file():
        raise DataError(
            f"{wd.root} holds no artworks (only the Monet layout was ingested)",
            "ingest a source with artists.csv + images/ as well",
        )
    images = _usable(wd, wd.manifest)
    counts = images.groupby("artist").size()
    labels = sorted(counts[counts >= cfg.min_paintings].index)
    if len(labels) < 2:
        raise DataError(
            f"{len(labels)} artist(s) have >= sample.min_paintings = {cfg.min_paintings} usable "
            "images; a classifier needs at least 2",
            "lower sample.min_paintings, or use --profile smoke with the demo data",
        )
    chosen = images[images["artist"].isin(labels)].copy()
    chosen["label"] = chosen["artist"].map({a: i for i, a in enumerate(labels)})
    test = _frozen_test(chosen, "artist", cfg.test_share, minimum=1)
    train, val = _stratified(
        chosen[~chosen["path"].isin(test["path"])], cfg.train_share, settings.seed
    )
    weights = _class_weights(train["label"].to_numpy(), len(labels))
    style_train, style_test = _style_split(wd, cfg.test_share)

    wd.splits.mkdir(parents=True, exist_ok=True)
    for name, df in (("train", train), ("val", val), ("test", test)):
        df[SPLIT_COLUMNS].sort_values("path").to_csv(wd.split_csv(name), index=False)
    style_train.to_csv(wd.style_csv("style_train"), index=False)
    style_test.to_csv(wd.style_csv("style_test"), index=False)
    wd.labels.write_text(json.dumps(labels, indent=2, ensure_ascii=False) + "\n")
    wd.class_weights.write_text(json.dumps(weights, indent=2) + "\n")
    metrics = _metrics(labels, train, val, test, style_train, style_test)
    per_class = _per_class(labels, train, val, test)
    (wd.splits / "counts.json").write_text(json.dumps(per_class, indent=2, ensure_ascii=False))
    wd.metrics.mkdir(parents=True, exist_ok=True)
    text = json.dumps(metrics, indent=2, ensure_ascii=False)
    (wd.metrics / "sample.json").write_text(text + "\n")
    return metrics


def _usable(wd: Workdir, manifest_path) -> pd.DataFrame:
    """Manifest rows minus what validation quarantined (validation must have run)."""
    if not wd.quarantine.is_file():
        raise DataError(f"{wd.quarantine} not found", "run `artflow data validate` first")
    df = read_manifest(manifest_path)
    quarantined = set(pd.read_csv(wd.quarantine, keep_default_na=False)["path"])
    return df[~df["path"].isin(quarantined) & (df["mode"] != "")].reset_index(drop=True)


def _frozen_test(df: pd.DataFrame, by: str, share: float, minimum: int) -> pd.DataFrame:
    """Rows whose hash is in the test region; a class with none gives its lowest hash."""
    if share <= 0:
        return df.iloc[0:0]
    picked = df[in_frozen_test(df["sha256"], share)]
    extra = []
    for _, group in df.groupby(by):
        have = picked[by].eq(group[by].iloc[0]).sum()
        if have < minimum and len(group) > minimum:
            extra.append(group.sort_values("sha256").head(minimum - have))
    return pd.concat([picked, *extra]).drop_duplicates("path")


def _stratified(
    df: pd.DataFrame, train_share: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-class seeded shuffle; round(n * train_share) of each class go to train."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for _, group in df.sort_values("sha256").groupby("label", sort=True):
        order = rng.permutation(len(group))
        n_train = int(round(len(group) * train_share))
        train.append(group.iloc[order[:n_train]])
        val.append(group.iloc[order[n_train:]])
    return pd.concat(train), pd.concat(val)


def _class_weights(y: np.ndarray, n_classes: int) -> dict[str, float]:
    from sklearn.utils.class_weight import compute_class_weight

    classes = np.arange(n_classes)
    weights = compute_class_weight("balanced", classes=classes, y=y)
    return {str(c): round(float(w), 6) for c, w in zip(classes, weights, strict=True)}


def _style_split(wd: Workdir, share: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All Monet paintings train the stylizers; photos in the hash region are held out."""
    empty = pd.DataFrame(columns=STYLE_COLUMNS)
    if not wd.monet_manifest.is_file():
        return empty, empty
    df = _usable(wd, wd.monet_manifest)
    photos = df[df["domain"] == "photo"]
    held = _frozen_test(photos, "domain", share, minimum=1) if len(photos) > 1 else photos.iloc[:0]
    train = df[~df["path"].isin(held["path"])]
    return (train[STYLE_COLUMNS].sort_values("path"), held[STYLE_COLUMNS].sort_values("path"))


def _per_class(
    labels: list[str], train: pd.DataFrame, val: pd.DataFrame, test: pd.DataFrame
) -> dict[str, dict[str, int]]:
    return {
        artist: {
            name: int((df["artist"] == artist).sum())
            for name, df in (("train", train), ("val", val), ("test", test))
        }
        for artist in labels
    }


def _metrics(
    labels: list[str],
    train: pd.DataFrame,
    val: pd.DataFrame,
    test: pd.DataFrame,
    style_train: pd.DataFrame,
    style_test: pd.DataFrame,
) -> dict:
    """Small totals for `dvc metrics show` (per-class counts go to splits/counts.json)."""
    return {
        "classes": len(labels),
        "train": len(train),
        "val": len(val),
        "test": len(test),
        "style_train": len(style_train),
        "style_test": len(style_test),
        "style_train_monet": int((style_train["domain"] == "monet").sum()),
        "style_train_photo": int((style_train["domain"] == "photo").sum()),
    }
