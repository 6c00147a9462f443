"""The offline demo data: Kaggle layout and schema, scaled counts, seeded, learnable."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from artflow.config import DemoCfg
from artflow.data.demo import ARTIST_COLUMNS, ARTISTS, generate_demo

from .conftest import sha_tree

BIG_ELEVEN = {
    "Vincent van Gogh",
    "Edgar Degas",
    "Pablo Picasso",
    "Pierre-Auguste Renoir",
    "Albrecht Dürer",
    "Paul Gauguin",
    "Francisco Goya",
    "Rembrandt",
    "Alfred Sisley",
    "Titian",
    "Marc Chagall",
}


def test_layout_schema_and_scaled_threshold(demo_source: Path, smoke_settings) -> None:
    artists = pd.read_csv(demo_source / "artworks" / "artists.csv")
    assert list(artists.columns) == ARTIST_COLUMNS
    real = {a.name: a.paintings for a in ARTISTS}
    assert {n for n, c in real.items() if c >= 200} == BIG_ELEVEN  # the real data's eleven
    threshold = smoke_settings.sample.min_paintings
    assert set(artists.loc[artists["paintings"] >= threshold, "name"]) == BIG_ELEVEN
    assert len(artists) > len(BIG_ELEVEN)  # some below the threshold too
    for row in artists.itertuples():
        folder = unicodedata.normalize("NFD", row.name.replace(" ", "_"))
        files = sorted((demo_source / "artworks" / "images" / folder).glob("*.jpg"))
        assert len(files) == row.paintings == max(1, round(real[row.name] * 0.1))
        assert files[0].name.startswith(f"{folder}_")
    monet = demo_source / "monet"
    demo = smoke_settings.data.demo
    assert len(list((monet / "monet_jpg").glob("*.jpg"))) == demo.monet_paintings
    assert len(list((monet / "photo_jpg").glob("*.jpg"))) == demo.photos


def test_seeded(tmp_path: Path) -> None:
    cfg = DemoCfg(scale=0.01, image_size=32, monet_paintings=2, photos=2)
    generate_demo(tmp_path / "a", cfg, seed=1)
    generate_demo(tmp_path / "b", cfg, seed=1)
    generate_demo(tmp_path / "c", cfg, seed=2)
    assert sha_tree(tmp_path / "a") == sha_tree(tmp_path / "b")
    assert sha_tree(tmp_path / "a") != sha_tree(tmp_path / "c")


def _features(path: Path) -> np.ndarray:
    img = np.asarray(Image.open(path).convert("RGB").resize((8, 8)), dtype=np.float32) / 255
    return np.concatenate([img.ravel(), img.reshape(-1, 3).std(axis=0)])


def test_styles_are_learnable(demo_source: Path) -> None:
    """A nearest-centroid on 8x8 thumbnails beats chance (1/17) by far: a CNN will learn it."""
    from sklearn.model_selection import train_test_split
    from sklearn.neighbors import NearestCentroid

    files = sorted((demo_source / "artworks" / "images").rglob("*.jpg"))
    x = np.stack([_features(f) for f in files])
    y = np.array([f.parent.name for f in files])
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.3, stratify=y, random_state=0)
    assert NearestCentroid().fit(xtr, ytr).score(xte, yte) > 0.6

    domains = [("monet", f) for f in (demo_source / "monet" / "monet_jpg").glob("*.jpg")] + [
        ("photo", f) for f in (demo_source / "monet" / "photo_jpg").glob("*.jpg")
    ]
    xm = np.stack([_features(f) for _, f in domains])
    ym = np.array([d for d, _ in domains])
    xtr, xte, ytr, yte = train_test_split(xm, ym, test_size=0.4, stratify=ym, random_state=0)
    assert NearestCentroid().fit(xtr, ytr).score(xte, yte) > 0.8
