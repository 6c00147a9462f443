"""Classifier fixtures: a few images per class for tests of mechanics. The session's smoke CNN
(`classify_workdir`, `trained_cnn`, `loaded_cnn`, `test_images`) is in tests/conftest.py:
tests/model shares it."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session")
def tiny_workdir(tmp_path_factory: pytest.TempPathFactory, classify_workdir):
    """A few images per class of the demo splits (absolute paths): for tests of mechanics
    (tuner, ResNet50) whose cost is per step, not per class."""
    import pandas as pd

    from artflow.data.layout import Workdir

    wd = Workdir.at(tmp_path_factory.mktemp("tiny"))
    wd.splits.mkdir(parents=True)
    for split, per_class in (("train", 3), ("val", 2), ("test", 2)):
        frame = pd.read_csv(classify_workdir.split_csv(split))
        frame = frame.groupby("label", sort=False).head(per_class).reset_index(drop=True)
        frame["path"] = [str(classify_workdir.abs(p)) for p in frame["path"]]
        frame.to_csv(wd.split_csv(split), index=False)
    shutil.copy(classify_workdir.labels, wd.labels)
    shutil.copy(classify_workdir.class_weights, wd.class_weights)
    return wd
