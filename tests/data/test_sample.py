"""The split: stratified within one image, reproducible per seed, test frozen by content hash."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from artflow.config import load_settings
from artflow.data.layout import Workdir
from artflow.data.sample import hash_fraction, sample
from artflow.errors import DataError


def _splits(wd: Workdir) -> dict[str, pd.DataFrame]:
    return {n: pd.read_csv(wd.split_csv(n)) for n in ("train", "val", "test")}


def _copy(wd: Workdir, dest: Path) -> Workdir:
    return Workdir.at(shutil.copytree(wd.root, dest))


def test_stratified_within_one_image(demo_workdir: Workdir, smoke_settings) -> None:
    s = _splits(demo_workdir)
    labels = json.loads(demo_workdir.labels.read_text())
    assert len(labels) == 11 and labels == sorted(labels)
    train_n, val_n = s["train"].groupby("artist").size(), s["val"].groupby("artist").size()
    share = smoke_settings.sample.train_share
    for artist in labels:
        n = train_n[artist] + val_n[artist]
        assert abs(train_n[artist] - share * n) <= 1, artist
    for df in s.values():  # label index matches labels.json
        assert (df["artist"] == df["label"].map(dict(enumerate(labels)))).all()
    paths = [set(df["path"]) for df in s.values()]
    assert not (paths[0] & paths[1] or paths[0] & paths[2] or paths[1] & paths[2])


def test_class_weights_balanced(demo_workdir: Workdir) -> None:
    weights = {int(k): v for k, v in json.loads(demo_workdir.class_weights.read_text()).items()}
    counts = _splits(demo_workdir)["train"].groupby("label").size()
    expected = counts.sum() / (len(counts) * counts)
    assert weights == pytest.approx(expected.to_dict(), rel=1e-5)
    assert weights[counts.idxmin()] > 1 > weights[counts.idxmax()]


def test_reproducible_for_a_seed(demo_workdir: Workdir, tmp_path: Path, smoke_settings) -> None:
    again = _copy(demo_workdir, tmp_path / "again")
    sample(again, smoke_settings)
    for name, df in _splits(again).items():
        pd.testing.assert_frame_equal(df, _splits(demo_workdir)[name])
    other = _copy(demo_workdir, tmp_path / "other")
    sample(other, load_settings(profile="smoke", overrides={"seed": 7}))
    moved = _splits(other)
    assert set(moved["train"]["path"]) != set(_splits(demo_workdir)["train"]["path"])
    assert set(moved["test"]["path"]) == set(_splits(demo_workdir)["test"]["path"])


def test_test_set_frozen_by_hash(demo_workdir: Workdir, tmp_path: Path, smoke_settings) -> None:
    """Dropping images (a new data version) never moves another image into or out of test."""
    before = _splits(demo_workdir)["test"]
    share = smoke_settings.sample.test_share
    assert (before["sha256"].map(hash_fraction) < share).mean() > 0.8  # mostly the hash region
    smaller = _copy(demo_workdir, tmp_path / "smaller")
    manifest = pd.read_csv(smaller.manifest, keep_default_na=False)
    train_paths = set(_splits(demo_workdir)["train"]["path"])
    dropped = manifest[manifest["path"].isin(train_paths)].groupby("artist").head(2)["path"]
    manifest[~manifest["path"].isin(dropped)].to_csv(smaller.manifest, index=False)
    sample(smaller, smoke_settings)
    after = _splits(smaller)["test"]
    in_region = before[before["sha256"].map(hash_fraction) < share]
    assert set(in_region["path"]) <= set(after["path"])
    assert set(after["path"]) == set(before["path"])


def test_style_split(demo_workdir: Workdir) -> None:
    train = pd.read_csv(demo_workdir.style_csv("style_train"))
    test = pd.read_csv(demo_workdir.style_csv("style_test"))
    assert list(train.columns) == ["path", "domain"] == list(test.columns)
    assert set(test["domain"]) == {"photo"} and len(test) >= 1
    assert (train["domain"] == "monet").sum() == 16
    assert not set(train["path"]) & set(test["path"])


def test_too_few_classes_is_a_clear_error(demo_workdir: Workdir, tmp_path: Path) -> None:
    wd = _copy(demo_workdir, tmp_path / "wd")
    with pytest.raises(DataError, match="sample.min_paintings = 200"):
        sample(wd, load_settings())


def test_artworks_only_tiny_classes(quirky_source: Path, tmp_path: Path) -> None:
    """No Monet layout, classes of 2: empty style splits, every class still gets a test image."""
    from artflow.data.ingest import ingest
    from artflow.data.validate import validate

    tiny = load_settings(
        profile="smoke",
        overrides={
            "sample": {"min_paintings": 2, "test_share": 0.01},
            "validate": {"min_images_per_class": 2},
        },
    )
    wd = Workdir.at(tmp_path / "wd")
    ingest(quirky_source, wd, tiny)
    # artists.csv lists 3 Kahlo paintings but the archive has none: a chosen class is empty
    with pytest.raises(DataError, match="Frida Kahlo keeps 0 usable images"):
        validate(wd, tiny)
    metrics = sample(wd, tiny)  # the quarantine list was still written
    assert metrics["classes"] == 3 and metrics["style_train"] == metrics["style_test"] == 0
    s = _splits(wd)
    assert set(s["test"]["artist"]) == {
        "Albrecht Dürer",
        "Pierre-Auguste Renoir",
        "Vincent van Gogh",
    }
    assert len(s["train"]) + len(s["val"]) + len(s["test"]) == 9
    assert list(pd.read_csv(wd.style_csv("style_train")).columns) == ["path", "domain"]
