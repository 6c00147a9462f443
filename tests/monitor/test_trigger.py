"""`--act`: a drifted verdict starts the retrain pipeline and every run records why."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from artflow.monitor.trigger import EXPERIMENT, trigger_retrain
from artflow.registry import tracking
from tests.conftest import smoke_overlay


class RecordingRunner:
    """Stands in for the kfp local runner in the fast test: it records its call and starts
    one MLflow run the way a pipeline step does (tracking.start_run), so the tags that reach
    the pipeline's runs are checked on a real run."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.step_run_id = ""

    def __call__(self, name: str, **kwargs: Any) -> dict[str, Any]:
        self.calls.append((name, kwargs))
        with tracking.start_run("artflow-drift-tests", "retrain-step", self.settings) as run:
            self.step_run_id = run.info.run_id
        return {"pipeline": name, "seconds": 0.1, "gates": {}}


def test_act_on_drift_starts_retrain_with_the_report_as_reason(
    verdicts, drift_wd, smoke_settings
) -> None:
    verdict, _, log = verdicts["photos"]
    runner = RecordingRunner(smoke_settings)
    before = os.environ.get(tracking.RUN_TAGS_ENV)
    outcome = trigger_retrain(smoke_settings, drift_wd, verdict, log, runner=runner)
    assert outcome["triggered"] and outcome["trigger"] == "drift"
    report_uri = f"runs:/{verdict['mlflow_run_id']}/drift_report/verdict.json"
    assert outcome["report"] == report_uri
    [(name, kwargs)] = runner.calls
    assert name == "retrain" and kwargs["policy"] == "always"
    assert kwargs["prediction_log"] == str(log) and kwargs["host"] is None
    client = tracking.client()
    step = client.get_run(runner.step_run_id).data.tags  # a run inside the retrain
    assert step["artflow.trigger"] == "drift"
    assert step["artflow.trigger_report"] == report_uri
    assert step["artflow.trigger_run"] == outcome["trigger_run_id"]
    trigger = client.get_run(outcome["trigger_run_id"])
    assert client.get_experiment(trigger.info.experiment_id).name == EXPERIMENT
    assert trigger.data.tags["artflow.trigger"] == "drift"
    assert "aspect_ratio" in trigger.data.tags["artflow.trigger_reason"]
    assert trigger.data.tags["artflow.retrain_status"] == "finished"
    files = {f.path for f in client.list_artifacts(trigger.info.run_id, "drift_report")}
    assert files == {"drift_report/report.html", "drift_report/verdict.json"}
    assert os.environ.get(tracking.RUN_TAGS_ENV) == before  # restored after the pipeline


def test_act_without_drift_does_nothing_unless_forced(verdicts, drift_wd, smoke_settings) -> None:
    verdict, _, log = verdicts["photos"]
    calm = {**verdict, "drifted": False}
    runner = RecordingRunner(smoke_settings)
    assert not trigger_retrain(smoke_settings, drift_wd, calm, log, runner=runner)["triggered"]
    assert runner.calls == []
    forced = trigger_retrain(smoke_settings, drift_wd, calm, log, force=True, runner=runner)
    assert forced["trigger"] == "manual" and len(runner.calls) == 1
    tags = tracking.client().get_run(runner.step_run_id).data.tags
    assert tags["artflow.trigger"] == "manual"


@pytest.mark.slow
def test_act_runs_the_real_local_retrain_pipeline(
    verdicts, drift_wd, demo_source, tmp_path: Path
) -> None:
    """The real thing: kfp's local runner runs the retrain pipeline on the demo workdir and
    the classifier it trains is registered from a run tagged with the drift trigger.

    What is checked is the trigger's wiring, not the model: the smoke profile with one CNN
    epoch at 32 px (the same steps, under half the training time)."""
    import shutil

    from artflow.commands.pipeline import retrain_runner
    from artflow.data.layout import Workdir
    from artflow.stages import settings_for

    overlay = smoke_overlay(
        tmp_path / "retrain.yaml",
        cnn={"epochs": 1},
        images={"size": 32},
        novelty={"enabled": False},  # its novelty step: tests/monitor/test_novelty.py
    )
    # trigger_retrain hands settings.profile to the steps, which load the same overlay from it
    settings = settings_for(str(overlay)).model_copy(update={"profile": str(overlay)})
    verdict, _, log = verdicts["darkened"]
    wd = Workdir.at(tmp_path / "wd")
    shutil.copytree(drift_wd.root, wd.root)
    source = str(demo_source)  # the pipeline ingests its data from the source, not the workdir
    outcome = trigger_retrain(
        settings, wd, verdict, log, retrain_runner, source=source, cooldown_h=0
    )
    assert outcome["triggered"] and outcome["result"]["seconds"] > 0
    client = tracking.client()
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        filter_string=f"tags.`artflow.trigger_run` = '{outcome['trigger_run_id']}'",
    )
    assert runs, "no MLflow run of the retrain pipeline carries the trigger"
    assert all(r.data.tags["artflow.trigger"] == "drift" for r in runs)
    versions = client.search_model_versions(f"name='{tracking.CLASSIFIER}'")
    trained = [v for v in versions if v.run_id in {r.info.run_id for r in runs}]
    assert trained, "the retrain registered no classifier version from a triggered run"
    assert client.get_run(trained[0].run_id).data.params["cnn.epochs"] == "1"  # the overlay


def test_act_with_an_unreachable_cluster_is_one_clear_error(
    verdicts, drift_wd, drift_classifier, capsys
) -> None:
    """`artflow drift --act --host URL`: the report is made, the submit fails cleanly."""
    from artflow import cli

    _, _, log = verdicts["photos"]
    args = ["--workdir", str(drift_wd.root), "--model-uri", drift_classifier.uri, "-p", "smoke"]
    host = ["--host", "http://127.0.0.1:9", "--cooldown", "0"]  # earlier tests fired this key
    code = cli.run(["drift", "--log", str(log), "--act", *host, *args])
    captured = capsys.readouterr()
    assert code == 2 and "DRIFT" in captured.out
    assert "cannot reach Kubeflow Pipelines at http://127.0.0.1:9" in captured.err
    assert "Traceback" not in captured.err
    assert cli.run(["drift", "--log", str(log), "--force", *args]) == 2  # --force needs --act


def _fresh_version(verdict: dict[str, Any]) -> dict[str, Any]:
    """The same verdict for a model version no other test has triggered."""
    return {**verdict, "model": {**verdict["model"], "version": uuid.uuid4().hex[:8]}}


def test_second_trigger_within_the_cooldown_starts_nothing_and_says_why(
    verdicts, drift_wd, smoke_settings
) -> None:
    verdict, _, log = verdicts["photos"]
    verdict = _fresh_version(verdict)
    runner = RecordingRunner(smoke_settings)
    first = trigger_retrain(
        smoke_settings, drift_wd, verdict, log, runner=runner, source="dvc://repo?path=d&rev=v1"
    )
    second = trigger_retrain(smoke_settings, drift_wd, verdict, log, runner=runner)
    assert first["triggered"] and not second["triggered"]
    assert len(runner.calls) == 1
    kwargs = runner.calls[0][1]
    assert kwargs["source"] == "dvc://repo?path=d&rev=v1"
    assert kwargs["mlflow_uri"] == tracking.tracking_uri()  # from the configuration
    assert second["previous_run_id"] == first["trigger_run_id"]
    assert second["previous_status"] == "finished"
    assert "not started again" in second["reason"] and "retrain_cooldown_h = 24" in second["reason"]
    # The state is queryable in MLflow by any pod: the trigger run carries key and status.
    tags = tracking.client().get_run(first["trigger_run_id"]).data.tags
    assert tags["artflow.trigger_key"] == first["trigger_key"] == second["trigger_key"]
    # Another trigger kind, or no cool-down, is another retrain.
    forced = trigger_retrain(
        smoke_settings, drift_wd, {**verdict, "drifted": False}, log, force=True, runner=runner
    )
    again = trigger_retrain(smoke_settings, drift_wd, verdict, log, runner=runner, cooldown_h=0)
    assert forced["triggered"] and again["triggered"] and len(runner.calls) == 3


def test_a_failed_retrain_does_not_block_the_next(verdicts, drift_wd, smoke_settings) -> None:
    verdict, _, log = verdicts["photos"]
    verdict = _fresh_version(verdict)

    def failing(name: str, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("the cluster refused the run")

    with pytest.raises(RuntimeError):
        trigger_retrain(smoke_settings, drift_wd, verdict, log, runner=failing)
    runner = RecordingRunner(smoke_settings)
    assert trigger_retrain(smoke_settings, drift_wd, verdict, log, runner=runner)["triggered"]
