"""`artflow bento build`: a Bento labelled with the registry versions it was built for."""

from __future__ import annotations

import pytest
import yaml

from artflow.cli import run

pytestmark = pytest.mark.slow


def test_bento_build_labels_the_versions_the_service_serves(server, tmp_path, monkeypatch, capsys):
    import httpx

    served = httpx.get(f"{server.url}/status", timeout=10).json()["models"]
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "bentoml"))
    assert run(["bento", "build", "--version", "test1"]) == 0
    out = capsys.readouterr().out
    assert "artflow:test1" in out and "bentoml serve artflow:test1" in out
    bento = tmp_path / "bentoml" / "bentos" / "artflow" / "test1"
    meta = yaml.safe_load((bento / "bento.yaml").read_text())
    for key in ("classifier:champion", "classifier:challenger"):
        assert meta["labels"][key.replace(":", ".")] == served[key]["version"]
    assert meta["labels"]["classifier.champion"] == server.versions["v2"]
    assert meta["service"] == "artflow.serve.service:Artflow"
    for rel in (
        "src/src/artflow/serve/service.py",
        "src/src/artflow/serve/static/index.html",
        "src/params.yaml",
        "src/profiles/smoke.yaml",
    ):
        assert (bento / rel).is_file(), rel
    assert not (bento / "src" / "tests").exists() and not (bento / "src" / "data").exists()


def test_bento_build_refuses_without_a_champion(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'empty.db'}")
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "bentoml"))
    assert run(["bento", "build"]) == 2
    assert "has no champion" in capsys.readouterr().err


def test_bento_home_inside_the_project_is_refused(monkeypatch, capsys):
    from artflow.config import PROJECT_ROOT

    monkeypatch.setenv("BENTOML_HOME", str(PROJECT_ROOT / "build" / "bentoml"))
    assert run(["bento", "build"]) == 2
    assert "inside the project" in capsys.readouterr().err
