"""The pipelines compile to Kubeflow IR YAML, load back with kfp, and have the right shape."""

from __future__ import annotations

import socket

import pytest
import yaml

from artflow.cli import run as cli


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("compiled")
    assert cli(["pipeline", "compile", "--out", str(out)]) == 0
    return out


def _spec(compiled, name: str) -> dict:
    return yaml.safe_load((compiled / f"{name}.yaml").read_text())


@pytest.mark.parametrize("name", ["training", "style", "retrain"])
def test_compiled_yaml_loads_back(compiled, name):
    from kfp import components

    loaded = components.load_component_from_file(str(compiled / f"{name}.yaml"))
    assert loaded.name == f"artflow-{name}"
    assert "workdir" in loaded.component_spec.inputs


def test_training_dag(compiled, smoke_settings):
    spec = _spec(compiled, "training")
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == {
        "validate-op",
        "sample-op",
        "train-cnn-op",
        "train-resnet50-op",
        "evaluate-op",
        "gate-op",
    }
    deps = {name: set(t.get("dependentTasks", [])) for name, t in tasks.items()}
    assert deps["sample-op"] == {"validate-op"}
    assert deps["train-cnn-op"] == deps["train-resnet50-op"] == {"sample-op"}  # in parallel
    assert deps["evaluate-op"] == {"train-cnn-op", "train-resnet50-op"}
    assert deps["gate-op"] == {"evaluate-op"}
    executors = spec["deploymentSpec"]["executors"]
    cfg = smoke_settings.pipeline
    train = executors["exec-train-cnn-op"]["container"]
    assert train["image"] == cfg.gpu_image
    assert train["resources"]["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert str(train["resources"]["accelerator"]["resourceCount"]) == str(cfg.gpu_limit)
    gate = executors["exec-gate-op"]["container"]
    assert gate["image"] == cfg.base_image and "accelerator" not in gate["resources"]
    assert gate["resources"]["resourceMemoryRequest"] == cfg.memory_request
    # no kfp install at start-up, no extra packages: the image already has artflow
    assert "pip install" not in " ".join(gate["command"])
    assert "from artflow import stages" in gate["command"][-1]


def test_retrain_switches_training_by_drift_output(compiled):
    tasks = _spec(compiled, "retrain")["root"]["dag"]["tasks"]
    enabled = tasks["train-cnn-op"]["inputs"]["parameters"]["enabled"]
    assert enabled["taskOutputParameter"] == {
        "outputParameterKey": "retrain",
        "producerTask": "drift-check-op",
    }
    assert not any("condition" in t.get("triggerPolicy", {}) for t in tasks.values())


def test_style_pipeline_gates_both_models(compiled):
    tasks = _spec(compiled, "style")["root"]["dag"]["tasks"]
    names = {
        t["inputs"]["parameters"]["model_name"]["runtimeValue"]["constant"]
        for n, t in tasks.items()
        if n.startswith("gate-op")
    }
    assert names == {"artflow-style-transfer", "artflow-monet-cyclegan"}


def test_local_runner_reports_only_the_gates_of_the_pipeline_it_ran():
    from pipelines import load
    from pipelines.local_runner import gated_models

    assert gated_models(load("style")) == {"artflow-style-transfer", "artflow-monet-cyclegan"}
    assert gated_models(load("training")) == {"artflow-artist-classifier"}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens


@pytest.mark.parametrize(
    "command",
    [
        ["pipeline", "submit", "training"],
        ["pipeline", "schedule", "retrain", "--cron", "0 3 * * 1"],
    ],
)
def test_host_not_listening_is_a_clear_error(command, capsys, tmp_path):
    host = f"http://127.0.0.1:{_closed_port()}"
    assert cli([*command, "--host", host]) == 2
    err = capsys.readouterr().err
    assert f"cannot reach Kubeflow Pipelines at {host}" in err
    assert "Traceback" not in err


def test_bad_input_is_a_clear_error(capsys):
    assert cli(["pipeline", "run", "nope", "--local"]) == 2
    assert "'nope' is not one of 'training', 'style', 'retrain'" in capsys.readouterr().err
    assert cli(["pipeline", "run", "training"]) == 2
    assert "--local" in capsys.readouterr().err
    assert cli(["pipeline", "schedule", "retrain", "--cron", "daily", "--host", "http://x"]) == 2
    assert "cron expression" in capsys.readouterr().err


def test_host_that_is_not_kubeflow_is_a_clear_error(capsys):
    """Something listens, but it is not the KFP API (404 everywhere): one line, exit 2."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class NotKfp(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            self.send_error(404)

        do_POST = do_GET  # noqa: N815

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotKfp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        host = f"http://127.0.0.1:{server.server_address[1]}"
        assert cli(["pipeline", "submit", "training", "--host", host]) == 2
    finally:
        server.shutdown()
    err = capsys.readouterr().err
    assert f"{host} answers, but not as Kubeflow Pipelines" in err and "404" in err
    assert "Traceback" not in err
