"""The model under test: by default the session's smoke CNN trained on the demo data; or any
registered classifier, e.g. the champion of a real registry, with its own paintings:

    ARTFLOW_MODEL_URI=models:/artflow-artist-classifier@champion \
    ARTFLOW_MODEL_TRACKING_URI=http://mlflow:5000 ARTFLOW_MODEL_WORKDIR=data \
    pytest tests/model

(`ARTFLOW_MODEL_TRACKING_URI` because the test session points MLFLOW_TRACKING_URI at its own
empty store; `ARTFLOW_MODEL_WORKDIR`'s `ARTFLOW_MODEL_SPLIT`, default test, gives the
paintings, at most ARTFLOW_MODEL_IMAGES of them, default 200.)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pytest


@dataclass
class Painting:
    artist: str
    image: np.ndarray


def external() -> bool:
    return bool(os.environ.get("ARTFLOW_MODEL_URI"))


@pytest.fixture(scope="session")
def model(request: pytest.FixtureRequest):
    """A LoadedClassifier: the registered model named by ARTFLOW_MODEL_URI, else the smoke CNN."""
    if not external():
        return request.getfixturevalue("loaded_cnn")
    from artflow.classify.io import load_classifier

    registry = os.environ.get("ARTFLOW_MODEL_TRACKING_URI")
    saved = os.environ.get("MLFLOW_TRACKING_URI")
    if registry:
        os.environ["MLFLOW_TRACKING_URI"] = registry
    try:
        return load_classifier(os.environ["ARTFLOW_MODEL_URI"])  # in memory from here on
    finally:
        if saved is not None:
            os.environ["MLFLOW_TRACKING_URI"] = saved


@pytest.fixture(scope="session")
def paintings(request: pytest.FixtureRequest) -> list[Painting]:
    """Held-out paintings with their artists (the frozen test split by default)."""
    if not external():
        return [Painting(a, img) for _, a, img in request.getfixturevalue("test_images")]
    import pandas as pd

    from artflow.data.layout import Workdir
    from artflow.imageio import load_rgb

    root = os.environ.get("ARTFLOW_MODEL_WORKDIR")
    if not root:
        pytest.fail("ARTFLOW_MODEL_URI needs ARTFLOW_MODEL_WORKDIR: a workdir with sampled splits")
    wd = Workdir.at(root)
    frame = pd.read_csv(wd.split_csv(os.environ.get("ARTFLOW_MODEL_SPLIT", "test")))
    limit = int(os.environ.get("ARTFLOW_MODEL_IMAGES", "200"))
    frame = frame.sample(n=min(limit, len(frame)), random_state=0).sort_index()
    return [
        Painting(a, load_rgb(wd.abs(p)))
        for p, a in zip(frame["path"], frame["artist"], strict=True)
    ]


@pytest.fixture
def demo_only() -> None:
    """Tests that paint demo artists: meaningless for a model trained on real paintings."""
    if external():
        pytest.skip("paints demo-generator artists; the model under test was not trained on them")
