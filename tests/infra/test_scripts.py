"""The glue scripts the workflows run (infra/scripts), against a real MLflow store (the
session's temporary sqlite one) and a Kubeflow endpoint that is not there."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import uuid
from pathlib import Path
from types import ModuleType

import pytest

from tests.infra.conftest import ROOT


def script(name: str) -> ModuleType:
    path = ROOT / "infra" / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"infra_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def log_decision(model: str, candidate: str, champion: str | None, passed: bool) -> None:
    """A gate run as artflow.promote records one: params, decision.json, decision.md."""
    import mlflow

    from artflow.promote import GATE_EXPERIMENT
    from artflow.registry import tracking

    mlflow.set_tracking_uri(tracking.tracking_uri())
    mlflow.set_experiment(GATE_EXPERIMENT)
    decision = {
        "model": model,
        "candidate": candidate,
        "champion": champion,
        "passed": passed,
        "promoted": False,
        "reason": "test",
    }
    with mlflow.start_run():
        mlflow.log_params({"model": model, "candidate": candidate})
        mlflow.log_dict(decision, "decision.json")
        mlflow.log_text(f"gate on {model} v{candidate}", "decision.md")


@pytest.fixture()
def model(tmp_path: Path) -> str:
    """A registered model with two versions and `champion` on version 2."""
    from artflow.registry import tracking

    name = f"infra-test-{uuid.uuid4().hex[:8]}"
    client = tracking.client()
    client.create_registered_model(name)
    for _ in range(2):
        client.create_model_version(name, source=(tmp_path / "model").as_uri())
    client.set_registered_model_alias(name, tracking.CHAMPION, "2")
    return name


def test_gate_decision_reads_the_newest_decision(model: str, tmp_path: Path, capsys) -> None:
    gate_decision = script("gate_decision")
    started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    log_decision(model, "1", None, passed=False)
    log_decision(model, "2", "1", passed=True)
    out = tmp_path / "out"
    assert (
        gate_decision.main(["--model", model, "--since", started.isoformat(), "--out", str(out)])
        == 0
    )
    lines = capsys.readouterr().out.split()
    assert lines == ["passed=true", "promoted=true", "version=2", "previous=1"]
    decision = json.loads((out / "decision.json").read_text())
    assert decision["candidate"] == "2" and decision["promoted"] is True
    md = (out / "decision.md").read_text()
    assert md.startswith(f"gate on {model} v2") and "promoted to champion" in md


def test_an_old_decision_is_never_taken_for_this_runs(model: str, tmp_path, capsys) -> None:
    gate_decision = script("gate_decision")
    log_decision(model, "2", "1", passed=True)
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    args = ["--model", model, "--since", future, "--out", str(tmp_path)]
    assert gate_decision.main(args) == 0
    assert capsys.readouterr().out.split()[:2] == ["passed=false", "promoted=false"]
    decision = json.loads((tmp_path / "decision.json").read_text())
    assert decision["promoted"] is False and "nothing was promoted" in decision["reason"]


def test_gate_decision_refused_candidate_is_not_promoted(model: str, tmp_path, capsys) -> None:
    log_decision(model, "1", "2", passed=False)
    assert script("gate_decision").main(["--model", model, "--out", str(tmp_path)]) == 0
    assert "promoted=false" in capsys.readouterr().out.split()


def test_kfp_wait_reports_an_unreachable_endpoint(capsys) -> None:
    kfp_wait = script("kfp_wait")
    assert kfp_wait.main(["--host", "http://127.0.0.1:9", "--run-id", "r1", "--timeout", "5"]) == 2
    assert "error: waiting for run r1 on http://127.0.0.1:9" in capsys.readouterr().err
    assert kfp_wait.main(["--host", "http://127.0.0.1:9", "--run-id", " "]) == 2
