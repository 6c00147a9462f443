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


# Decoded, resized images are cached as uint8 while the whole set fits in this many bytes.
CACHE_LIMIT = 2 * 1024**3


def augmented(
    paths: list[str],
    size: int,
    batch: int,
    seed: int,
    scale: str = "pixels",
    cache: bool | None = None,
) -> Any:
    """Endless shuffled batches of random crops: float32 0..255 (`pixels`) or -1..1 (`unit`).

    decode + resize (parallel) -> cache (uint8, when the set fits CACHE_LIMIT or `cache`) ->
    shuffle -> repeat -> random crop + flip (parallel) -> batch -> prefetch, so after the first
    pass an accelerator is fed from memory. Repeating and reshuffling every domain on its own
    fixes the common tutorial's flaw of zipping two finite sets (an epoch then stopped at the
    smaller one).
    """
    import tensorflow as tf

    big = size + max(size // 8, 2)
    if cache is None:
        cache = len(paths) * big * big * 3 <= CACHE_LIMIT

    def load(path: Any) -> Any:
        img = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        img = tf.image.resize(tf.cast(img, tf.float32), (big, big))
        return tf.cast(tf.clip_by_value(tf.round(img), 0.0, 255.0), tf.uint8)

    def crop(img: Any) -> Any:
        img = tf.image.random_crop(tf.cast(img, tf.float32), (size, size, 3))
        img = tf.image.random_flip_left_right(img)
        return img / 127.5 - 1.0 if scale == "unit" else img

    auto = tf.data.AUTOTUNE
    ds = tf.data.Dataset.from_tensor_slices(paths)
    if cache:
        ds = ds.map(load, num_parallel_calls=auto).cache()
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True).repeat()
    else:
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True).repeat()
        ds = ds.map(load, num_parallel_calls=auto)
    ds = ds.map(crop, num_parallel_calls=auto)
    return ds.batch(batch, drop_remainder=True).prefetch(auto)


def input_rate(batches: Any, n: int) -> float:
    """Images per second the input alone delivers over `n` batches (after a first one).

    Logged beside the training step's rate: when the input is slower, the accelerator waits.
    """
    import time

    it = iter(batches)
    first = next(it)
    count, start = 0, time.perf_counter()
    for _ in range(n):
        count += int(first.shape[0])
        first = next(it)
    return count / max(time.perf_counter() - start, 1e-9)
