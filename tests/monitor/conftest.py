"""Drift fixtures: a registered smoke classifier, its reference and logs of four kinds of traffic.

The classifier is an untrained, seeded CNN: its embeddings and predictions are deterministic
functions of the pixels, which is all drift detection needs (the trained-model case is the
same code; see docs/drift.md for measured numbers). Everything is built once per session.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from artflow.data.layout import Workdir
from tests.monitor.helpers import SHIFTS, WINDOW, write_log


@pytest.fixture(scope="session")
def drift_wd(tmp_path_factory: pytest.TempPathFactory, demo_workdir: Workdir) -> Workdir:
    """A private copy of the demo workdir (reports and pipeline runs write into it)."""
    root = tmp_path_factory.mktemp("drift") / "wd"
    shutil.copytree(demo_workdir.root, root)
    return Workdir.at(root)


@pytest.fixture(scope="session")
def drift_classifier(drift_wd: Workdir, smoke_settings):
    """An untrained, seeded smoke CNN registered as a classifier version (with a run)."""
    import json

    import keras

    from artflow.classify.cnn import build_cnn
    from artflow.classify.io import load_classifier, register_classifier
    from artflow.registry import tracking

    labels = json.loads(drift_wd.labels.read_text())
    size = smoke_settings.images.size
    keras.utils.set_random_seed(smoke_settings.seed)
    model = build_cnn(len(labels), size, smoke_settings.cnn.dense_units)
    with tracking.start_run("artflow-drift-tests", "untrained-cnn", smoke_settings):
        reg = register_classifier(model, labels, size, "cnn", challenger=False)
    return load_classifier(reg.uri)


@pytest.fixture(scope="session")
def drift_reference(drift_wd: Workdir, drift_classifier, smoke_settings):
    from artflow.monitor.reference import build_reference, load_reference

    build_reference(smoke_settings, drift_wd, drift_classifier)
    return load_reference(smoke_settings, drift_wd, drift_classifier.uri, build_missing=False)


def _images(paths: list[Path]) -> list[np.ndarray]:
    from artflow.imageio import load_rgb

    return [load_rgb(p) for p in paths]


@pytest.fixture(scope="session")
def traffic(drift_wd: Workdir, drift_classifier, demo_source: Path) -> dict[str, list]:
    """Prediction-log records (as the service writes them) for four kinds of traffic:
    held-out paintings of the trained artists (val + test: never in the reference), photos,
    paintings by the demo artists outside the trained ones, and darkened held-out paintings."""
    import json

    from artflow.monitor.records import classify_records
    from artflow.monitor.simulate import darken

    held = pd.concat([pd.read_csv(drift_wd.split_csv(s)) for s in ("val", "test")])
    held_images = _images([drift_wd.abs(p) for p in held["path"]])
    photos = _images(sorted((demo_source / "monet" / "photo_jpg").glob("*.jpg")))
    trained = set(json.loads(drift_wd.labels.read_text()))
    others = [
        p
        for folder in sorted((demo_source / "artworks" / "images").iterdir())
        if folder.name.replace("_", " ") not in trained
        and not any(_same(folder.name, t) for t in trained)
        for p in sorted(folder.glob("*.jpg"))
    ]
    return {
        "paintings": classify_records(drift_classifier, held_images),
        "photos": classify_records(drift_classifier, photos),
        "other_artists": classify_records(drift_classifier, _images(others)),
        "darkened": classify_records(drift_classifier, [darken(x, 0.3) for x in held_images]),
    }


def _same(folder: str, artist: str) -> bool:
    """Folder names may be NFD (Dürer) while labels are NFC."""
    import unicodedata

    norm = unicodedata.normalize
    return norm("NFC", folder.replace("_", " ")) == norm("NFC", artist)


@pytest.fixture(scope="session")
def verdicts(
    tmp_path_factory, traffic, drift_wd, drift_classifier, drift_reference, smoke_settings
) -> dict[str, tuple[dict, int, Path]]:
    """Full Evidently reports (HTML + JSON + MLflow) for each shifted kind of traffic:
    kind -> (verdict, records in the window, log path)."""
    from artflow.monitor.check import check_drift

    folder = tmp_path_factory.mktemp("shift_logs")
    out = {}
    for kind in SHIFTS:
        log = write_log(folder, kind, traffic[kind][:WINDOW])
        verdict = check_drift(
            smoke_settings, drift_wd, log, drift_classifier.uri, reference=drift_reference
        )
        out[kind] = (verdict, min(WINDOW, len(traffic[kind])), log)
    return out
