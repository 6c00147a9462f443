"""The classifier's tf.data input pipeline vs a seed-style loader, on the same files.

    .venv/bin/python benchmarks/bench_input_pipeline.py [--workdir DIR] [--size 224]
        [--epochs 3] [--batch 32] [--images N]

The seed (the notebooks artflow grew from, docs/conventions.md) used Keras' ImageDataGenerator:
per image, a PIL load and resize, then a NumPy/SciPy affine augmentation (rotation, shifts,
shear, zoom, flip), one image at a time, every epoch.
`seed_style_batches` reproduces that loop (the same scipy.ndimage.affine_transform call
ImageDataGenerator.apply_transform makes); `artflow.data.tfdata.dataset` is the new pipeline
(parallel decode, cache, one batched affine resample via keras.ops, prefetch). Both read the train
split of DIR (default: demo images generated in a temp dir), at the same size and batch, in
this one process. images/s include every epoch (the first one decodes); the ratio prints last.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from artflow.config import AugmentCfg, DemoCfg, load_settings  # noqa: E402
from artflow.data.layout import Workdir  # noqa: E402


def demo_workdir(root: Path, n_images: int) -> Workdir:
    """Demo paintings in the Kaggle layout plus a train.csv over them (no other stage needed)."""
    from artflow.data.demo import generate_demo

    generate_demo(root / "source", DemoCfg(scale=0.05, image_size=256), seed=0)
    files = sorted((root / "source" / "artworks" / "images").rglob("*.jpg"))[:n_images]
    artists = sorted({f.parent.name for f in files})
    wd = Workdir.at(root / "wd")
    wd.splits.mkdir(parents=True)
    frame = pd.DataFrame({"path": [str(f) for f in files]})
    frame["artist"] = [f.parent.name for f in files]
    frame["label"] = frame["artist"].map(artists.index)
    frame.to_csv(wd.split_csv("train"), index=False)
    wd.labels.write_text(json.dumps(artists))
    return wd


def _affine(aug: AugmentCfg, size: int, rng: np.random.Generator) -> np.ndarray:
    """ImageDataGenerator.get_random_transform + apply_transform's matrix, centred."""
    theta = np.deg2rad(rng.uniform(-aug.rotation_deg, aug.rotation_deg))
    tx = rng.uniform(-aug.height_shift, aug.height_shift) * size
    ty = rng.uniform(-aug.width_shift, aug.width_shift) * size
    shear = np.deg2rad(rng.uniform(-aug.shear, aug.shear))
    zx, zy = rng.uniform(1 - aug.zoom, 1 + aug.zoom, 2)
    rot = np.array(
        [[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]]
    )
    shift = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]])
    shear_m = np.array([[1, -np.sin(shear), 0], [0, np.cos(shear), 0], [0, 0, 1]])
    zoom = np.array([[zx, 0, 0], [0, zy, 0], [0, 0, 1]])
    o = size / 2 - 0.5
    centre = np.array([[1, 0, o], [0, 1, o], [0, 0, 1]])
    uncentre = np.array([[1, 0, -o], [0, 1, -o], [0, 0, 1]])
    return centre @ rot @ shift @ shear_m @ zoom @ uncentre


def seed_style_batches(
    paths: list[str],
    labels: np.ndarray,
    n_classes: int,
    size: int,
    batch: int,
    aug: AugmentCfg,
    rng: np.random.Generator,
):
    """One image at a time: PIL load + resize, /255, per-channel scipy affine, random flip."""
    from scipy import ndimage

    order = rng.permutation(len(paths))
    for start in range(0, len(order), batch):
        xs, ys = [], []
        for i in order[start : start + batch]:
            img = Image.open(paths[i]).convert("RGB").resize((size, size), Image.Resampling.NEAREST)
            x = np.asarray(img, dtype="float32") / 255.0
            m = _affine(aug, size, rng)
            x = np.stack(
                [
                    ndimage.affine_transform(
                        x[..., c], m[:2, :2], m[:2, 2], order=1, mode="nearest"
                    )
                    for c in range(3)
                ],
                axis=-1,
            )
            if aug.horizontal_flip and rng.random() < 0.5:
                x = x[:, ::-1]
            xs.append(x)
            ys.append(np.eye(n_classes, dtype="float32")[labels[i]])
        yield np.stack(xs), np.stack(ys)


def time_epochs(make_epoch, epochs: int) -> tuple[float, int]:
    """Seconds and images for `epochs` full passes (touching every batch's pixels)."""
    start, n = time.perf_counter(), 0
    for _ in range(epochs):
        for x, _ in make_epoch():
            n += int(np.asarray(x).shape[0])
    return time.perf_counter() - start, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, help="a sampled workdir (default: demo images)")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--images", type=int, default=400, help="demo images to generate")
    args = ap.parse_args()

    from artflow.data import tfdata

    aug = load_settings().augment
    with tempfile.TemporaryDirectory() as tmp:
        wd = Workdir.at(args.workdir) if args.workdir else demo_workdir(Path(tmp), args.images)
        frame = tfdata.read_split(wd, "train")
        n_classes = len(tfdata.read_labels(wd))
        paths, labels = frame["abs_path"].tolist(), frame["label"].to_numpy()
        print(
            f"{len(paths)} images, {args.size}px, batch {args.batch}, {args.epochs} epochs, "
            f"{os.cpu_count()} CPUs"
        )

        rng = np.random.default_rng(0)
        seed_s, seed_n = time_epochs(
            lambda: seed_style_batches(paths, labels, n_classes, args.size, args.batch, aug, rng),
            args.epochs,
        )
        seed_rate = seed_n / seed_s
        print(
            f"seed-style loader (PIL + NumPy/SciPy, one image at a time): {seed_rate:8.1f} images/s"
        )

        split = tfdata.dataset(
            wd, "train", args.size, args.batch, n_classes, training=True, augment=aug, seed=0
        )
        tf_s, tf_n = time_epochs(lambda: split.dataset, args.epochs)
        tf_rate = tf_n / tf_s
        print(
            f"tf.data pipeline (parallel decode, cache, batched RandomAffine): "
            f"{tf_rate:8.1f} images/s"
        )
        ratio = tf_rate / seed_rate if seed_rate else math.inf
        print(f"ratio tf.data / seed-style: {ratio:.2f}x")


if __name__ == "__main__":
    main()
