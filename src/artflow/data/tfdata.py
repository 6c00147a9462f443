"""tf.data input for the artist classifier, read from the split CSVs of a workdir.

decode (parallel) -> resize -> cache -> shuffle (seeded) -> batch -> augment (training only,
Keras preprocessing layers) -> one-hot -> prefetch. Images stay uint8 until the batch is
built so the cache holds 1 byte per pixel; models take float32 raw 0..255 pixels.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from artflow.config import AugmentCfg
from artflow.data.layout import Workdir
from artflow.errors import DataError

SPLITS = ("train", "val", "test")
# What TF's own decoders read exactly like artflow.imageio. Everything else goes through
# artflow.imageio (the decoder ingest and serving use) in a tf.py_function: CMYK/YCCK JPEGs
# (decoders disagree on Adobe's inverted CMYK, and older libjpeg builds in TF refuse them),
# palettes with transparency, RGBA, 16-bit, TIFF/WebP, and EXIF-rotated photos (TF ignores
# the orientation tag). Pillow releases the GIL while decoding, so these still run in parallel.
_NATIVE_FORMATS = {"JPEG", "PNG", "BMP"}
_NATIVE_MODES = {"RGB", "L"}
_EXIF_ORIENTATION = 0x0112
MEMORY_CACHE_LIMIT = 2 * 1024**3  # bytes of uint8 pixels kept in RAM; larger sets cache to disk


def read_split(wd: Workdir, split: str) -> pd.DataFrame:
    """The split's rows (path, artist, label, ...), paths made absolute."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}", f"use one of {', '.join(SPLITS)}")
    path = wd.split_csv(split)
    if not path.is_file():
        raise DataError(
            f"split file {path} does not exist", "run `artflow data sample` on this workdir first"
        )
    df = pd.read_csv(path)
    missing = {"path", "label"} - set(df.columns)
    if missing:
        raise DataError(f"{path} lacks columns {sorted(missing)}")
    if df.empty:
        raise DataError(f"{path} has no rows", "re-run `artflow data sample` with more data")
    df["abs_path"] = [str(wd.abs(p)) for p in df["path"]]
    return df


def read_labels(wd: Workdir) -> list[str]:
    if not wd.labels.is_file():
        raise DataError(f"label map {wd.labels} does not exist", "run `artflow data sample` first")
    return list(json.loads(wd.labels.read_text()))


def read_class_weights(wd: Workdir, n_classes: int) -> dict[int, float]:
    """{label: weight}; equal weights when the file is absent."""
    if not wd.class_weights.is_file():
        return dict.fromkeys(range(n_classes), 1.0)
    raw = json.loads(wd.class_weights.read_text())
    return {int(k): float(v) for k, v in raw.items()}


# Decoder choice per file, made from the header before the pipeline runs.
JPEG, NATIVE, PYTHON = 0, 1, 2


def decoder_for(path: str | Path) -> int:
    """JPEG / NATIVE (PNG, BMP) when TF decodes the file exactly as imageio does, else PYTHON."""
    try:
        with Image.open(path) as img:
            orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
            native = (
                img.format in _NATIVE_FORMATS
                and img.mode in _NATIVE_MODES
                and orientation == 1
                and "transparency" not in img.info
            )
            if not native:
                return PYTHON
            return JPEG if img.format == "JPEG" else NATIVE
    except (OSError, SyntaxError, ValueError):
        return PYTHON  # let imageio raise its clear DataError


def needs_python_decode(path: str | Path) -> bool:
    return decoder_for(path) == PYTHON


def _py_decode(path: Any) -> np.ndarray:
    from artflow.imageio import load_rgb

    return load_rgb(path.numpy().decode())


def decode(path: Any, decoder: Any) -> Any:
    """uint8 HxWx3 tensor from a file path; grayscale -> RGB, animations -> first frame.

    JPEGs use the accurate integer IDCT: the default (fast) one differs from Pillow's by up to
    4 levels, and serving decodes with Pillow; this way training and serving see equal pixels.
    """
    import tensorflow as tf

    def jpeg() -> Any:
        return tf.io.decode_jpeg(tf.io.read_file(path), channels=3, dct_method="INTEGER_ACCURATE")

    def native() -> Any:
        return tf.io.decode_image(
            tf.io.read_file(path), channels=3, expand_animations=False, dtype=tf.uint8
        )

    def python() -> Any:
        return tf.py_function(_py_decode, [path], tf.uint8)

    image = tf.switch_case(decoder, {JPEG: jpeg, NATIVE: native, PYTHON: python})
    return tf.ensure_shape(image, [None, None, 3])


def resize(image: Any, size: int) -> Any:
    """Antialiased bilinear resize to size x size, rounded back to uint8 (cache-friendly).

    Used by both training and `LoadedClassifier.predict`, so serving sees the same pixels.
    """
    import tensorflow as tf

    out = tf.image.resize(image, (size, size), method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(out), 0.0, 255.0), tf.uint8)


def layer_stack(cfg: AugmentCfg, seed: int) -> Any:
    """The seed's ranges (docs/conventions.md) as a chain of Keras preprocessing layers.

    Fill 'nearest', as ImageDataGenerator did.

    Kept for comparison (benchmarks/bench_input_pipeline.py): each geometric layer resamples
    the whole batch again, so this costs ~4 resamples and blurs 4 times. Training uses
    `RandomAffine`, which composes the same transforms into one resample.
    """
    import keras
    from keras import layers

    fill = {"fill_mode": "nearest"}
    stack: list[Any] = []
    if cfg.rotation_deg:
        stack.append(layers.RandomRotation(cfg.rotation_deg / 360.0, seed=seed, **fill))
    if cfg.width_shift or cfg.height_shift:
        stack.append(
            layers.RandomTranslation(cfg.height_shift, cfg.width_shift, seed=seed + 1, **fill)
        )
    if cfg.shear:
        stack.append(layers.RandomShear(x_factor=cfg.shear, seed=seed + 2, **fill))
    if cfg.zoom:
        stack.append(layers.RandomZoom(cfg.zoom, seed=seed + 3, **fill))
    if cfg.horizontal_flip:
        stack.append(layers.RandomFlip("horizontal", seed=seed + 4))
    return keras.Sequential(stack, name="augment_layers")


def augmenter(cfg: AugmentCfg, seed: int) -> Any:
    """The training augmentation: one `RandomAffine` layer with the seed's ranges."""
    return RandomAffine(cfg, seed)


def _random_affine_class() -> type:
    import keras
    from keras import ops

    class _RandomAffine(keras.layers.Layer):
        """Rotation, shifts, shear, zoom and horizontal flip as ONE affine resample per image.

        What the seed's ImageDataGenerator did (one matrix per image). Keras 3 has a layer per
        transform but no combined one, and chaining them resamples the batch four times (about
        4x the cost and visibly blurrier), so the matrix is composed here and applied with
        keras.ops.image.affine_transform. `shear` is a fraction of the image like RandomShear's
        (ImageDataGenerator took degrees). Inactive unless training=True.
        """

        def __init__(self, cfg: AugmentCfg, seed: int, **kwargs: Any) -> None:
            super().__init__(name="augment", **kwargs)
            self.cfg = cfg
            self.seed_generator = keras.random.SeedGenerator(seed)

        def _uniform(self, n: Any, bound: float, centre: float = 0.0) -> Any:
            return keras.random.uniform(
                (n,), centre - bound, centre + bound, seed=self.seed_generator
            )

        def call(self, images: Any, training: bool = False) -> Any:
            if not training:
                return images
            cfg = self.cfg
            shape = ops.shape(images)
            n, h, w = shape[0], ops.cast(shape[1], "float32"), ops.cast(shape[2], "float32")
            theta = self._uniform(n, cfg.rotation_deg * np.pi / 180.0)
            shear = self._uniform(n, cfg.shear)
            zx, zy = self._uniform(n, cfg.zoom, 1.0), self._uniform(n, cfg.zoom, 1.0)
            tx, ty = self._uniform(n, cfg.width_shift) * w, self._uniform(n, cfg.height_shift) * h
            flip = ops.ones((n,))
            if cfg.horizontal_flip:
                flip = ops.where(self._uniform(n, 0.5, 0.5) < 0.5, -1.0, 1.0)
            cos, sin = ops.cos(theta), ops.sin(theta)
            # Output pixel -> input pixel: centre, flip, zoom, shear, rotate, uncentre, shift.
            a0, a1 = cos * zx * flip, (cos * shear - sin) * zy
            b0, b1 = sin * zx * flip, (sin * shear + cos) * zy
            cx, cy = (w - 1.0) / 2.0, (h - 1.0) / 2.0
            a2 = cx - a0 * cx - a1 * cy + tx
            b2 = cy - b0 * cx - b1 * cy + ty
            zeros = ops.zeros((n,))
            matrix = ops.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
            return ops.image.affine_transform(
                images, matrix, interpolation="bilinear", fill_mode="nearest"
            )

    return _RandomAffine


def RandomAffine(cfg: AugmentCfg, seed: int) -> Any:  # noqa: N802 - a layer factory
    """Build the combined augmentation layer (the class is made lazily: Keras loads late)."""
    return _random_affine_class()(cfg, seed)


@dataclass(frozen=True)
class Split:
    """A ready dataset plus what training and evaluation need to know about it."""

    dataset: Any
    frame: pd.DataFrame
    steps: int

    @property
    def labels(self) -> np.ndarray:
        return self.frame["label"].to_numpy()


def dataset(
    wd: Workdir,
    split: str,
    image_size: int,
    batch_size: int,
    n_classes: int,
    training: bool = False,
    augment: AugmentCfg | None = None,
    seed: int = 42,
    cache: str | Path | None = "auto",
) -> Split:
    """Batches of (float32 pixels 0..255, one-hot labels); augmented and shuffled when training.

    Evaluation datasets keep the CSV order, so predictions line up with `Split.frame` rows.
    """
    import tensorflow as tf

    frame = read_split(wd, split)
    if frame["label"].max() >= n_classes or frame["label"].min() < 0:
        raise DataError(f"{wd.split_csv(split)} has labels outside 0..{n_classes - 1}")
    decoders = np.array([decoder_for(p) for p in frame["abs_path"]], dtype="int32")
    ds = tf.data.Dataset.from_tensor_slices(
        (frame["abs_path"].to_numpy(), decoders, frame["label"].to_numpy(dtype="int32"))
    )
    ds = ds.map(
        lambda p, f, y: (resize(decode(p, f), image_size), y),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    ds = _cache(ds, cache, len(frame) * image_size * image_size * 3, wd, split, image_size)
    if training:
        ds = ds.shuffle(len(frame), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), tf.one_hot(y, n_classes)))
    if training and augment is not None:
        aug = augmenter(augment, seed)
        ds = ds.map(lambda x, y: (aug(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    return Split(ds, frame, steps=-(-len(frame) // batch_size))


def _cache(
    ds: Any, cache: str | Path | None, nbytes: int, wd: Workdir, split: str, size: int
) -> Any:
    if cache is None or cache == "none":
        return ds
    if cache == "auto":
        if nbytes <= MEMORY_CACHE_LIMIT:
            return ds.cache()
        cache = wd.models / "cache"
    path = Path(cache)
    path.mkdir(parents=True, exist_ok=True)
    # The CSV's hash in the name: a changed split never reads a stale cache.
    digest = hashlib.md5(wd.split_csv(split).read_bytes()).hexdigest()[:10]
    return ds.cache(str(path / f"{split}_{size}_{digest}"))
