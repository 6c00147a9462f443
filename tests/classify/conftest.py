"""Classifier fixtures: a private copy of the demo workdir and ONE smoke CNN per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def classify_workdir(tmp_path_factory: pytest.TempPathFactory, demo_workdir):
    """A copy of the shared demo workdir: training writes models/, reports/ and metrics/."""
    from artflow.data.layout import Workdir

    root = tmp_path_factory.mktemp("classify") / "wd"
    shutil.copytree(demo_workdir.root, root)
    return Workdir.at(root)


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


@pytest.fixture(scope="session")
def trained_cnn(classify_workdir, smoke_settings) -> dict:
    """train_classifier(..., "cnn") at smoke size on demo data, registered (seed fixed)."""
    from artflow.classify.train import train_classifier
    from artflow.registry import tracking

    result = train_classifier(smoke_settings, classify_workdir, "cnn", verbose=0)
    # Later trainings in the session move `challenger`; remember where it pointed right now.
    challenger = tracking.alias_version(tracking.CLASSIFIER, tracking.CHALLENGER)
    result["challenger_after_training"] = challenger and str(challenger.version)
    return result


@pytest.fixture(scope="session")
def loaded_cnn(trained_cnn):
    from artflow.classify.io import load_classifier

    return load_classifier(trained_cnn["model_uri"])


@pytest.fixture(scope="session")
def test_images(classify_workdir) -> list:
    """(path, artist, uint8 image) of the frozen test split, in CSV order."""
    import pandas as pd

    from artflow.imageio import load_rgb

    frame = pd.read_csv(classify_workdir.split_csv("test"))
    return [
        (Path(p), a, load_rgb(classify_workdir.abs(p)))
        for p, a in zip(frame["path"], frame["artist"], strict=True)
    ]
