"""The classifier's input pipeline as an ablation, against an ImageDataGenerator-style loader.

    .venv/bin/python benchmarks/bench_input_pipeline.py [--workdir DIR] [--size 224]
        [--epochs 3] [--batch 32] [--images N] [--workers N] [--json PATH]

The seed (the notebooks artflow grew from, docs/conventions.md) used Keras' ImageDataGenerator:
per image, a PIL load and resize, then a NumPy/SciPy affine augmentation (rotation, shifts,
shear, zoom, flip), every epoch; Keras ran it with `workers` threads, each building whole
batches. `seed_style_batch` reproduces that loop (the same scipy.ndimage.affine_transform call
ImageDataGenerator.apply_transform makes), run with 1 worker and with --workers threads
(default: the cores). The tf.data pipeline
(`artflow.data.tfdata.dataset`) then gets its three changes one at a time, each row adding one:

  tf.data, serial decode, no cache, Keras' chained augmentation layers (4 resamples)
  + parallel decode (num_parallel_calls=AUTOTUNE: up to the cores)
  + cache (decoded, resized uint8 images in memory after the first epoch)
  + single-resample augmentation (RandomAffine)  = the pipeline training uses
  (and the pipeline itself, through `tfdata.dataset`, as a check that the last row is it)

All read the train split of DIR (default: demo images generated in a temp dir) at the same
size and batch, in this one process. images/s include every epoch (the first one decodes).
Ratios print last; results go to benchmarks/results/bench_input_pipeline.json (or --json).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import benchlib  # noqa: E402  (beside this script, whose folder Python puts first on the path)
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


def seed_style_batch(
    paths: list[str],
    labels: np.ndarray,
    n_classes: int,
    size: int,
    aug: AugmentCfg,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One batch the seed's way: PIL load + resize, /255, per-channel scipy affine, flip."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    xs = []
    for path in paths:
        img = Image.open(path).convert("RGB").resize((size, size), Image.Resampling.NEAREST)
        x = np.asarray(img, dtype="float32") / 255.0
        m = _affine(aug, size, rng)
        x = np.stack(
            [
                ndimage.affine_transform(x[..., c], m[:2, :2], m[:2, 2], order=1, mode="nearest")
                for c in range(3)
            ],
            axis=-1,
        )
        if aug.horizontal_flip and rng.random() < 0.5:
            x = x[:, ::-1]
        xs.append(x)
    return np.stack(xs), np.eye(n_classes, dtype="float32")[labels]


def seed_style_epoch(
    paths: list[str],
    labels: np.ndarray,
    n_classes: int,
    size: int,
    batch: int,
    aug: AugmentCfg,
    pool: ThreadPoolExecutor | None,
    epoch: int,
):
    """An epoch of seed-style batches; with a pool, its threads build whole batches ahead
    (Keras' `workers` for a Sequence), in order."""
    order = np.random.default_rng(epoch).permutation(len(paths))
    jobs = [
        ([paths[i] for i in order[s : s + batch]], labels[order[s : s + batch]], epoch * 10_000 + s)
        for s in range(0, len(order), batch)
    ]

    def make(job):
        return seed_style_batch(job[0], job[1], n_classes, size, aug, job[2])

    return pool.map(make, jobs) if pool else map(make, jobs)


def ablation_dataset(
    frame: pd.DataFrame,
    size: int,
    batch: int,
    n_classes: int,
    aug: AugmentCfg,
    parallel: bool,
    cache: bool,
    single_resample: bool,
):
    """tfdata.dataset's training pipeline with each of its three choices switchable."""
    import tensorflow as tf

    from artflow.data import tfdata

    decoders = np.array([tfdata.decoder_for(p) for p in frame["abs_path"]], dtype="int32")
    ds = tf.data.Dataset.from_tensor_slices(
        (frame["abs_path"].to_numpy(), decoders, frame["label"].to_numpy(dtype="int32"))
    )
    calls = tf.data.AUTOTUNE if parallel else None
    ds = ds.map(
        lambda p, f, y: (tfdata.resize(tfdata.decode(p, f), size), y), num_parallel_calls=calls
    )
    if cache:
        ds = ds.cache()
    ds = ds.shuffle(len(frame), seed=0, reshuffle_each_iteration=True).batch(batch)
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), tf.one_hot(y, n_classes)))
    layer = tfdata.augmenter(aug, 0) if single_resample else tfdata.layer_stack(aug, 0)
    ds = ds.map(lambda x, y: (layer(x, training=True), y), num_parallel_calls=calls)
    return ds.prefetch(tf.data.AUTOTUNE)


def time_epochs(make_epoch, epochs: int) -> tuple[float, int]:
    """Seconds and images for `epochs` full passes (touching every batch's pixels)."""
    start, n = time.perf_counter(), 0
    for epoch in range(epochs):
        for x, _ in make_epoch(epoch):
            n += int(np.asarray(x).shape[0])
    return time.perf_counter() - start, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, help="a sampled workdir (default: demo images)")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--images", type=int, default=400, help="demo images to generate")
    ap.add_argument("--workers", type=int, default=None, help="loader threads (default: cores)")
    ap.add_argument("--json", default=None, help="default: benchmarks/results/<name>.json")
    args = ap.parse_args()

    from artflow.data import tfdata

    aug = load_settings().augment
    info = benchlib.machine()
    workers = args.workers or info["cores"]
    rows: list[dict] = []

    def record(name: str, seconds: float, n: int) -> float:
        rows.append({"loader": name, "seconds": seconds, "images": n, "images_per_s": n / seconds})
        print(f"{name:<62} {n / seconds:8.1f} images/s", flush=True)
        return n / seconds

    with tempfile.TemporaryDirectory() as tmp:
        wd = Workdir.at(args.workdir) if args.workdir else demo_workdir(Path(tmp), args.images)
        frame = tfdata.read_split(wd, "train")
        n_classes = len(tfdata.read_labels(wd))
        paths, labels = frame["abs_path"].tolist(), frame["label"].to_numpy()
        print(
            f"{benchlib.describe(info)}; {len(paths)} images, {args.size}px, batch {args.batch}, "
            f"{args.epochs} epochs, {workers} workers"
        )

        def seed_epochs(pool: ThreadPoolExecutor | None):
            return lambda e: seed_style_epoch(
                paths, labels, n_classes, args.size, args.batch, aug, pool, e
            )

        record("ImageDataGenerator-style, 1 worker", *time_epochs(seed_epochs(None), args.epochs))
        with ThreadPoolExecutor(workers) as pool:
            name = f"ImageDataGenerator-style, {workers} workers"
            record(name, *time_epochs(seed_epochs(pool), args.epochs))
        steps = [
            ("tf.data, serial decode, no cache, chained layers", False, False, False),
            ("  + parallel decode", True, False, False),
            ("  + cache", True, True, False),
            ("  + single-resample augmentation (RandomAffine)", True, True, True),
        ]
        for name, parallel, cache, single in steps:
            ds = ablation_dataset(
                frame, args.size, args.batch, n_classes, aug, parallel, cache, single
            )
            record(name, *time_epochs(lambda e, ds=ds: ds, args.epochs))
        split = tfdata.dataset(
            wd, "train", args.size, args.batch, n_classes, training=True, augment=aug, seed=0
        )
        record(
            "tfdata.dataset (what training uses)",
            *time_epochs(lambda e: split.dataset, args.epochs),
        )

    rate = {r["loader"].strip(): r["images_per_s"] for r in rows}
    base = rows[1]["images_per_s"]
    ratios = {
        "vs_idg_1_worker": rows[-1]["images_per_s"] / rows[0]["images_per_s"],
        "vs_idg_same_workers": rows[-1]["images_per_s"] / base,
        "parallel_decode": rows[3]["images_per_s"] / rows[2]["images_per_s"],
        "cache": rows[4]["images_per_s"] / rows[3]["images_per_s"],
        "single_resample": rows[5]["images_per_s"] / rows[4]["images_per_s"],
    }
    result = {
        "machine": info,
        "images": len(paths),
        "size": args.size,
        "batch": args.batch,
        "epochs": args.epochs,
        "workers": workers,
        "images_per_s": rate,
        "ratios": ratios,
    }
    print(f"results: {benchlib.write_json('bench_input_pipeline', result, args.json)}")
    print(f"ratio parallel decode (serial -> AUTOTUNE): {ratios['parallel_decode']:.2f}x")
    print(f"ratio cache: {ratios['cache']:.2f}x")
    print(
        f"ratio single resample (chained layers -> RandomAffine): {ratios['single_resample']:.2f}x"
    )
    print(f"ratio tf.data / ImageDataGenerator-style, 1 worker: {ratios['vs_idg_1_worker']:.2f}x")
    print(
        f"ratio tf.data / ImageDataGenerator-style, {workers} workers: "
        f"{ratios['vs_idg_same_workers']:.2f}x"
    )


if __name__ == "__main__":
    main()
