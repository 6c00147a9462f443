"""End to end: the training pipeline on kfp's local runner, from the demo source, run twice.

Every step runs in its own empty working directory and sees only its artifacts and
parameters; the data, splits and models travel as artifacts."""

import json
import time
from pathlib import Path

import pytest
import yaml

from artflow import tracking
from artflow.cli import run as cli
from artflow.config import PROFILES_DIR


@pytest.fixture
def tiny_profile(tmp_path):
    """The smoke profile with fewer epochs: each kfp step is a process that imports TF."""
    overlay = yaml.safe_load((PROFILES_DIR / "smoke.yaml").read_text())
    overlay["cnn"] = {**overlay.get("cnn", {}), "epochs": 2}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(overlay))
    return path


def test_each_step_starts_in_its_own_empty_directory(tmp_path):
    """A step that looks for files outside its artifacts finds nothing (as in a pod)."""
    from kfp import dsl, local
    from kfp.dsl import Artifact, Output

    from pipelines.local_runner import steps_in_empty_dirs

    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def where(out: Output[Artifact]):
        import json
        import os

        with open(out.path, "w") as f:
            json.dump({"cwd": os.getcwd(), "files": os.listdir(".")}, f)

    local.init(local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))
    with steps_in_empty_dirs():
        first, second = where(), where()
    seen = [json.loads(Path(t.outputs["out"].path).read_text()) for t in (first, second)]
    assert seen[0]["files"] == seen[1]["files"] == []
    assert seen[0]["cwd"] != seen[1]["cwd"] != str(Path.cwd())


@pytest.mark.slow
def test_training_pipeline_local_run_and_unchanged_rerun(
    demo_source, tiny_profile, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("ARTFLOW_ARTIFACT_ROOT", (tmp_path / "artifacts").as_uri())
    monkeypatch.delenv("ARTFLOW_PROFILE", raising=False)
    home = tmp_path / "home"
    argv = [
        "pipeline",
        "run",
        "training",
        "--local",
        "--workdir",
        str(home),
        "--source",
        str(demo_source),
        "--profile",
        str(tiny_profile),
        "--arg",
        "train_resnet=false",
    ]

    start = time.perf_counter()
    assert cli(argv) == 0
    first = time.perf_counter() - start

    client = tracking.client()
    versions = client.search_model_versions(f"name='{tracking.CLASSIFIER}'")
    assert [v.tags.get("family") for v in versions] == ["cnn"]
    version = str(versions[0].version)
    summary = json.loads((home / "pipeline" / "last_run_training.json").read_text())
    run = Path(summary["outputs"])
    # the data travelled as artifacts: images + manifests, splits, the registered model
    assert (run / "ingest-op" / "data" / "interim" / "manifest.csv").is_file()
    assert (run / "sample-op" / "splits" / "splits" / "train.csv").is_file()
    model = json.loads((run / "evaluate-op" / "candidate" / "model.json").read_text())
    assert model == {
        "model_name": tracking.CLASSIFIER,
        "version": version,
        "uri": f"models:/{tracking.CLASSIFIER}/{version}",
        "family": "cnn",
    }
    # native reports: the confusion matrix, the gate's Markdown
    executed = json.loads((run / "train-op" / "executor_output.json").read_text())["artifacts"]
    matrix = executed["confusion"]["artifacts"][0]["metadata"]["confusionMatrix"]
    assert len(matrix["rows"]) == len(matrix["annotationSpecs"]) > 1
    gate = summary["gates"][f"{tracking.CLASSIFIER}-v{version}"]
    report = Path(gate["report"]).read_text()
    assert "| accuracy |" in report and "| latency_ms |" in report
    champion = tracking.alias_version(tracking.CLASSIFIER, "champion")
    assert (champion is not None and str(champion.version) == version) == gate["passed"]
    assert "Model card" in client.get_model_version(tracking.CLASSIFIER, version).description

    start = time.perf_counter()
    assert cli(argv) == 0
    second = time.perf_counter() - start
    print(f"first run {first:.1f} s, unchanged re-run {second:.1f} s")
    # nothing retrained or re-registered; the re-run only pays process start-up per step
    assert len(client.search_model_versions(f"name='{tracking.CLASSIFIER}'")) == 1
    assert second < 0.5 * first
    summary = json.loads((home / "pipeline" / "last_run_training.json").read_text())
    assert summary["seconds"] == pytest.approx(second, abs=10)
    assert list(summary["gates"]) == [f"{tracking.CLASSIFIER}-v{version}"]
    # the terminal got the gist, the log file every line of the steps
    printed = capsys.readouterr().out
    assert "INFO artflow.stages: train_cnn: inputs unchanged" in printed
    assert "executor_input" not in printed
    assert "Got executor_input" in Path(summary["log"]).read_text()
