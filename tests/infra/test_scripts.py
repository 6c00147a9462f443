"""The glue scripts the workflows run (infra/scripts), against a real MLflow store (the
session's temporary sqlite one), a Kubeflow endpoint that is not there, and a real HTTP
admin endpoint standing in for a serving pod."""

from __future__ import annotations

import datetime as dt
import http.server
import importlib.util
import json
import os
import sys
import threading
import uuid
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from tests.infra.conftest import ROOT, run


def script(name: str) -> ModuleType:
    path = ROOT / "infra" / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"infra_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def log_decision(
    model: str, candidate: str, champion: str | None, passed: bool, tags: dict | None = None
) -> None:
    """A gate run as artflow.promote records one: params, decision.json, decision.md; `tags`
    are those its pipeline run puts on every run of its steps."""
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
    with mlflow.start_run(tags=tags or {}):
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


def test_gate_decision_takes_its_own_pipeline_runs_decision(model: str, tmp_path, capsys) -> None:
    """Two pipelines gated at once (retrain.yml's and a drift-triggered one): the decision of
    the run asked for, by its tag, even when the other one is newer."""
    gate_decision = script("gate_decision")
    log_decision(model, "2", "1", passed=True, tags={"artflow.pipeline_run": "run-mine"})
    log_decision(model, "1", "2", passed=False, tags={"artflow.pipeline_run": "run-other"})
    out = tmp_path / "out"
    args = ["--model", model, "--tag", "artflow.pipeline_run=run-mine", "--out", str(out)]
    assert gate_decision.main([*args, "--retrain-run", "4242"]) == 0
    assert capsys.readouterr().out.split() == [
        "passed=true",
        "promoted=true",
        "version=2",
        "previous=1",
    ]
    decision = json.loads((out / "decision.json").read_text())
    assert decision["retrain_run"] == "4242" and decision["gate_run"]
    # a run that gated nothing: no decision, never the other run's
    args = ["--model", model, "--tag", "artflow.pipeline_run=run-none", "--out", str(out)]
    assert gate_decision.main(args) == 0
    assert capsys.readouterr().out.split()[:3] == ["passed=false", "promoted=false", "version="]
    with pytest.raises(SystemExit):
        gate_decision.main(["--model", model, "--tag", "x' or '1'='1", "--out", str(out)])


def test_pipeline_steps_tag_their_runs_with_the_kubeflow_run(monkeypatch) -> None:
    from artflow.registry import tracking

    monkeypatch.setenv(tracking.PIPELINE_RUN_ENV, "0b7c-run")
    monkeypatch.setenv(tracking.RUN_TAGS_ENV, '{"artflow.trigger": "drift"}')
    assert tracking.env_tags() == {"artflow.trigger": "drift", "artflow.pipeline_run": "0b7c-run"}


# ---------------------------------------------------------------- serving-admin.sh


class _Admin(http.server.BaseHTTPRequestHandler):
    """A serving pod's admin endpoint: artflow's own token check, the body recorded."""

    seen: list = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        from artflow.serve import admin

        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        refused = admin.check({k.lower(): v for k, v in self.headers.items()})
        status, answer = refused or (200, json.dumps({"ok": True}))
        if refused is None:
            self.seen.append((self.path, json.loads(body)))
        self.send_response(status)
        self.end_headers()
        self.wfile.write(answer.encode())

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def admin_pod(tmp_path: Path, monkeypatch):
    """A fake `kubectl` that runs the `exec ... -- CMD` part here, as the pod would, and the
    admin endpoint it reaches; the token comes from a file, as the mounted Secret."""
    token, served = tmp_path / "token", tmp_path / "served-token"
    token.write_text("s3cret\n")  # what the caller's pod mounts
    served.write_text("s3cret")  # what the service checks against
    monkeypatch.delenv("ARTFLOW_ADMIN_TOKEN", raising=False)
    monkeypatch.setenv("ARTFLOW_ADMIN_TOKEN_FILE", str(served))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(
        '#!/usr/bin/env bash\nwhile [ "$1" != -- ]; do shift; done; shift; exec "$@"\n'
    )
    kubectl.chmod(0o755)
    (bin_dir / "python").symlink_to(sys.executable)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Admin)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    _Admin.seen = []
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "ARTFLOW_ADMIN_URL": f"http://127.0.0.1:{server.server_address[1]}",
        "ARTFLOW_ADMIN_TOKEN_FILE": str(token),
    }
    yield env, token
    server.shutdown()


def test_serving_admin_sets_the_share_through_the_admin_api(admin_pod) -> None:
    env, token = admin_pod
    sh = str(ROOT / "infra" / "scripts" / "serving-admin.sh")
    proc = run([sh, "weight", "10", "-n", "artflow"], env=env)
    assert proc.returncode == 0, proc.stderr
    assert run([sh, "weight", "100"], env=env).returncode == 0
    assert run([sh, "reload"], env=env).returncode == 0
    assert _Admin.seen == [
        ("/admin/weight", {"weight": 0.1}),
        ("/admin/weight", {"weight": 1.0}),
        ("/admin/reload", {}),
    ]
    for bad in (["weight", "101"], ["weight", "1e3"], ["weight"], ["route"]):
        assert run([sh, *bad], env=env).returncode == 2, bad
    token.write_text("wrong")  # a refused call fails the step, with the service's answer
    proc = run([sh, "weight", "0"], env=env)
    assert proc.returncode != 0 and "HTTP 403" in proc.stderr and "wrong admin token" in proc.stderr


def test_every_pipeline_step_gets_its_kubeflow_run_id(tmp_path: Path) -> None:
    """components.common.configure puts the pod's `pipeline/runid` label into the step's
    environment (the downward API), which env_tags above turns into the tag."""
    from kfp import compiler, dsl

    from artflow.config import load_settings
    from artflow.registry import tracking
    from components.common import TaskSettings, component, configure

    @component
    def step():  # no annotation: this module's `from __future__` would make kfp read "None"
        pass

    @dsl.pipeline(name="tiny")
    def tiny():
        how = TaskSettings("ghcr.io/artflow/artflow:abc", False, True, {}, 0, 60)
        configure(step(), load_settings().pipeline, how)

    out = tmp_path / "tiny.yaml"
    compiler.Compiler().compile(tiny, str(out))
    docs = list(yaml.safe_load_all(out.read_text()))
    platform = next(d for d in docs if "platforms" in d)["platforms"]["kubernetes"]
    (executor,) = platform["deploymentSpec"]["executors"].values()
    assert {
        "name": tracking.PIPELINE_RUN_ENV,
        "fieldPath": "metadata.labels['pipeline/runid']",
    } in executor["fieldPathAsEnv"]
