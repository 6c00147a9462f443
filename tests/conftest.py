"""Shared fixtures: an isolated MLflow store, smoke settings and one demo data version.

Expensive things (demo data, a trained smoke classifier) are built once per session and
shared read-only; a test that changes data copies it first.
"""

from __future__ import annotations

import os
from pathlib import Path

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


@pytest.fixture(scope="session", autouse=True)
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Every test session gets its own sqlite store and artifact root, never the project's."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ["ARTFLOW_ARTIFACT_ROOT"] = (root / "artifacts").as_uri()
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
