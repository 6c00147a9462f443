"""Shared fixtures: an isolated MLflow store, smoke settings and one demo data version.

Expensive things (demo data, a trained smoke classifier) are built once per session and
shared read-only; a test that changes data copies it first.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["GX_ANALYTICS_ENABLED"] = "false"
os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
os.environ.pop("ARTFLOW_PROFILE", None)


@pytest.fixture(autouse=True)
def _no_profile_leak():
    """Pipeline commands set ARTFLOW_PROFILE for their subprocesses; keep it out of later tests."""
    yield
    os.environ.pop("ARTFLOW_PROFILE", None)


@pytest.fixture(scope="session")
def empty_store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated, empty sqlite MLflow database. Creating a store runs MLflow's schema
    migrations (seconds on 2 cores); a copy of this one opens at once."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    root = tmp_path_factory.mktemp("mlflow_template")
    SqlAlchemyStore(f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri())
    return root / "mlflow.db"


def copy_store(template: Path, root: Path) -> tuple[str, str]:
    """An empty store in `root` (a copy of `template`, its Default experiment's artifacts
    under root/artifacts): its tracking URI and artifact root."""
    import shutil
    import sqlite3
    from contextlib import closing

    root.mkdir(parents=True, exist_ok=True)
    db = shutil.copy(template, root / "mlflow.db")
    artifacts = (root / "artifacts").as_uri()
    with closing(sqlite3.connect(db)) as conn, conn:
        sql = "update experiments set artifact_location = ? where experiment_id = 0"
        conn.execute(sql, (artifacts,))
    return f"sqlite:///{db}", artifacts


@pytest.fixture(scope="session", autouse=True)
def mlflow_store(tmp_path_factory: pytest.TempPathFactory, empty_store_template: Path) -> str:
    """Every test session gets its own sqlite store and artifact root, never the project's."""
    uri, artifacts = copy_store(empty_store_template, tmp_path_factory.mktemp("mlflow"))
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ["ARTFLOW_ARTIFACT_ROOT"] = artifacts
    return uri


@pytest.fixture
def fresh_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_store_template: Path) -> str:
    """An empty MLflow store for tests that must use the real registered names."""
    uri, artifacts = copy_store(empty_store_template, tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("ARTFLOW_ARTIFACT_ROOT", artifacts)
    return uri


@pytest.fixture(scope="session")
def smoke_settings():
    from artflow.config import load_settings

    return load_settings(profile="smoke")


@pytest.fixture(scope="session")
def demo_source(tmp_path_factory: pytest.TempPathFactory, smoke_settings) -> Path:
    """The offline demo data set in the Kaggle layouts (artworks/ and monet/)."""
    from artflow.data.demo import generate_demo

    out = tmp_path_factory.mktemp("demo_source")
    generate_demo(out, smoke_settings.data.demo, seed=smoke_settings.seed)
    return out


@pytest.fixture(scope="session")
def demo_workdir(tmp_path_factory: pytest.TempPathFactory, demo_source: Path, smoke_settings):
    """A data version with demo data ingested, validated and sampled (read-only for tests)."""
    from artflow.data.ingest import ingest
    from artflow.data.layout import Workdir
    from artflow.data.sample import sample
    from artflow.data.validate import validate

    wd = Workdir.at(tmp_path_factory.mktemp("workdir"))
    ingest(demo_source, wd, smoke_settings)
    validate(wd, smoke_settings)
    sample(wd, smoke_settings)
    return wd


def smoke_overlay(path: Path, **sections: dict[str, Any]) -> Path:
    """Write the smoke profile with `sections` merged in as an overlay YAML at `path`: a
    smaller variant for one pipeline test (a pipeline's --profile takes such a file)."""
    import yaml

    from artflow.config import profile_path

    overlay = yaml.safe_load(profile_path("smoke").read_text())
    for name, values in sections.items():
        overlay[name] = {**overlay.get(name, {}), **values}
    path.write_text(yaml.safe_dump(overlay))
    return path


@pytest.fixture(scope="session")
def classify_workdir(tmp_path_factory: pytest.TempPathFactory, demo_workdir):
    """A copy of the shared demo workdir: training writes models/, reports/ and metrics/."""
    from artflow.data.layout import Workdir

    root = tmp_path_factory.mktemp("classify") / "wd"
    shutil.copytree(demo_workdir.root, root)
    return Workdir.at(root)


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
