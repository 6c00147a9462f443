"""Image lists and tf.data input for the style models (stylizer and CycleGAN).

Paths come from the sampled splits (relative to the workdir): style_train/style_test.csv
(path, domain in {monet, photo}) and the classifier's train/test.csv (artworks).
Augmentation follows the CycleGAN paper: resize a little larger, random crop, random flip.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from artflow.data.layout import Workdir
from artflow.errors import DataError


def _read(csv_path: Path) -> list[dict[str, str]]:
    if not csv_path.is_file():
        raise DataError(
            f"{csv_path} not found",
            "run `artflow data ingest/validate/sample` on this workdir first",
        )
    with csv_path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def style_images(wd: Workdir, split: str, domain: str) -> list[str]:
    """Absolute paths of `domain` (monet | photo) images in style_<split>.csv."""
    rows = _read(wd.style_csv(f"style_{split}"))
    return [str(wd.abs(r["path"])) for r in rows if r["domain"] == domain]


def artworks(wd: Workdir, split: str) -> list[str]:
    """Absolute paths of the classifier split's paintings (train | val | test)."""
    return [str(wd.abs(r["path"])) for r in _read(wd.split_csv(split))]


def require(paths: list[str], what: str, wd: Workdir) -> list[str]:
    if not paths:
        raise DataError(f"no {what} images in {wd.root}", "check the workdir's splits")
    return paths


def augmented(paths: list[str], size: int, batch: int, seed: int, scale: str = "pixels") -> Any:
    """Endless shuffled batches of random crops: float32 0..255 (`pixels`) or -1..1 (`unit`).

    Repeating and reshuffling every domain on its own fixes the common tutorial's flaw of
    zipping two finite sets (an epoch then stopped at the smaller one).
    """
    import tensorflow as tf

    big = size + max(size // 8, 2)

    def load(path: Any) -> Any:
        img = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        img = tf.image.resize(tf.cast(img, tf.float32), (big, big))
        img = tf.image.random_crop(img, (size, size, 3))
        img = tf.image.random_flip_left_right(img)
        return img / 127.5 - 1.0 if scale == "unit" else img

    ds = tf.data.Dataset.from_tensor_slices(paths)
    ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True).repeat()
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
