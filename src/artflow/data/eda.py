"""The seed's exploratory figures for one data version: wd.eda/index.html + PNGs.

The seed: the notebooks artflow grew from (docs/conventions.md).
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from artflow.config import AugmentCfg, Settings
from artflow.data.ingest import read_manifest
from artflow.data.layout import Workdir
from artflow.data.report_html import page, table
from artflow.errors import DataError
from artflow.imageio import load_rgb

GRID = 4  # random images shown: GRID x GRID


def report(wd: Workdir, settings: Settings) -> Path:
    """Render every figure and the index page; returns the index path."""
    import matplotlib

    matplotlib.use("Agg")
    if not wd.artists_csv.is_file():
        raise DataError(f"{wd.artists_csv} not found", "run `artflow data ingest` first")
    artists = pd.read_csv(wd.artists_csv)
    images = _usable(wd)
    threshold = settings.sample.min_paintings
    wd.eda.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(settings.seed)
    figures = [
        ("paintings_hist.png", "Paintings per artist (artists.csv)", _hist(artists, threshold)),
        ("paintings_box.png", "Spread of paintings per artist", _box(artists)),
        ("nationality.png", "Artists and paintings by nationality", _nationality(artists)),
        (
            "by_artist.png",
            "Usable images per artist (chosen classes in colour)",
            _by_artist(images, threshold),
        ),
        ("top_artists.png", "Top 10 artists by paintings", _top(artists)),
        ("samples.png", "Random usable images with their artists", _grid(wd, images, rng)),
        (
            "augmented.png",
            "One image under the training augmentation",
            _augmented(wd, images, settings.augment, rng),
        ),
    ]
    body = [_stats(wd, artists, images, threshold)]
    for name, title, fig in figures:
        if fig is None:
            continue
        fig.savefig(wd.eda / name, dpi=90, bbox_inches="tight")
        matplotlib.pyplot.close(fig)
        body.append(
            f"<figure><figcaption><b>{escape(title)}</b></figcaption>"
            f"<img src='{name}' alt='{escape(title)}'></figure>"
        )
    index = wd.eda / "index.html"
    index.write_text(page(f"artflow EDA — {wd.root.name}", "".join(body)))
    return index


def _usable(wd: Workdir) -> pd.DataFrame:
    df = read_manifest(wd.manifest)
    if wd.quarantine.is_file():
        bad = set(pd.read_csv(wd.quarantine, keep_default_na=False)["path"])
        df = df[~df["path"].isin(bad)]
    return df[df["mode"] != ""].reset_index(drop=True)


def _stats(wd: Workdir, artists: pd.DataFrame, images: pd.DataFrame, threshold: int) -> str:
    rows = [
        ["artists in artists.csv", str(len(artists))],
        ["paintings listed", str(int(pd.to_numeric(artists["paintings"]).sum()))],
        ["usable images ingested", str(len(images))],
        [
            f"artists with >= {threshold} usable images",
            str(int((images.groupby("artist").size() >= threshold).sum())),
        ],
    ]
    sample_json = wd.metrics / "sample.json"
    if sample_json.is_file():
        s = json.loads(sample_json.read_text())
        rows += [
            [f"{k} images", str(s[k])]
            for k in ("train", "val", "test", "style_train", "style_test")
        ]
    return table(["", "value"], rows)


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _hist(artists: pd.DataFrame, threshold: int):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.hist(pd.to_numeric(artists["paintings"]), bins=20, color="#4c72b0")
    ax.axvline(threshold, color="#c44e52", ls="--", label=f"threshold {threshold}")
    ax.set(xlabel="paintings", ylabel="artists")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.legend()
    return fig


def _box(artists: pd.DataFrame):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 2.5))
    ax.boxplot(pd.to_numeric(artists["paintings"]), vert=False)
    ax.set(xlabel="paintings per artist", yticks=[])
    return fig


def _nationality(artists: pd.DataFrame):
    plt = _plt()
    df = artists.assign(nationality=artists["nationality"].astype(str).str.split(","))
    df = df.explode("nationality")
    df["nationality"] = df["nationality"].str.strip()
    agg = df.groupby("nationality").agg(artists=("name", "size"), paintings=("paintings", "sum"))
    agg = agg.sort_values("paintings")
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.35 * len(agg) + 1.2), sharey=True)
    axes[0].barh(agg.index, agg["artists"], color="#55a868")
    axes[0].set(xlabel="artists")
    axes[1].barh(agg.index, agg["paintings"], color="#4c72b0")
    axes[1].set(xlabel="paintings")
    return fig


def _by_artist(images: pd.DataFrame, threshold: int):
    plt = _plt()
    counts = images.groupby("artist").size().sort_values()
    colours = ["#4c72b0" if n >= threshold else "#bbbbbb" for n in counts]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(counts) + 1))
    ax.barh(counts.index, counts.values, color=colours)
    ax.axvline(threshold, color="#c44e52", ls="--")
    ax.set(xlabel="usable images")
    return fig


def _top(artists: pd.DataFrame):
    plt = _plt()
    top = artists.assign(paintings=pd.to_numeric(artists["paintings"])).nlargest(10, "paintings")
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(top["name"], top["paintings"], color="#8172b2")
    ax.tick_params(axis="x", rotation=60)
    ax.set(ylabel="paintings")
    return fig


def _grid(wd: Workdir, images: pd.DataFrame, rng: np.random.Generator):
    if images.empty:
        return None
    from artflow.plots import bare

    plt = _plt()
    picks = images.iloc[rng.permutation(len(images))[: GRID * GRID]]
    fig, axes = plt.subplots(GRID, GRID, figsize=(2.2 * GRID, 2.4 * GRID))
    for ax in axes.flat:
        bare(ax)
    for ax, row in zip(axes.flat, picks.itertuples(), strict=False):
        ax.imshow(load_rgb(wd.abs(row.path)))
        ax.set_title(row.artist, fontsize=8)
    return fig


def augment(img: Image.Image, cfg: AugmentCfg, rng: np.random.Generator) -> Image.Image:
    """One random draw of the seed's ImageDataGenerator ranges (rotation, shifts, shear, zoom,
    horizontal flip) as a single affine map; edges are filled with the nearest colour."""
    w, h = img.size
    angle = np.deg2rad(rng.uniform(-cfg.rotation_deg, cfg.rotation_deg))
    shear = rng.uniform(-cfg.shear, cfg.shear)
    zoom = rng.uniform(1 - cfg.zoom, 1 + cfg.zoom)
    tx, ty = (
        rng.uniform(-cfg.width_shift, cfg.width_shift) * w,
        rng.uniform(-cfg.height_shift, cfg.height_shift) * h,
    )
    cos, sin = np.cos(angle), np.sin(angle)
    # PIL maps each output pixel back to an input pixel: input = M @ output + offset.
    m = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1.0, shear], [0.0, 1.0]]) / zoom
    centre = np.array([w / 2, h / 2])
    # pad with edge pixels so rotated/shifted corners take the nearest colour (Keras' default)
    big = Image.fromarray(np.pad(np.asarray(img), ((h, h), (w, w), (0, 0)), mode="edge"))
    off = centre + np.array([w, h]) - np.array([tx, ty]) - m @ centre
    data = (m[0, 0], m[0, 1], off[0], m[1, 0], m[1, 1], off[1])
    out = big.transform((w, h), Image.Transform.AFFINE, data, Image.Resampling.BILINEAR)
    if cfg.horizontal_flip and rng.random() < 0.5:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return out


def _augmented(wd: Workdir, images: pd.DataFrame, cfg: AugmentCfg, rng: np.random.Generator):
    if images.empty:
        return None
    from artflow.plots import bare

    plt = _plt()
    row = images.iloc[int(rng.integers(len(images)))]
    img = Image.fromarray(load_rgb(wd.abs(row["path"])))
    fig, axes = plt.subplots(1, 6, figsize=(13, 2.6))
    axes[0].imshow(img)
    axes[0].set_title(f"original: {row['artist']}", fontsize=8)
    for ax in axes[1:]:
        ax.imshow(augment(img, cfg, rng))
        ax.set_title("augmented", fontsize=8)
    for ax in axes:
        bare(ax)
    return fig
