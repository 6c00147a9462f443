"""The production path, rehearsed on one machine against PostgreSQL, an S3 server and
`mlflow server` (tests/prod/conftest.py), with the faults a cluster meets.

The tests run in order and share one registry: the data goes to a DVC remote on S3, the
training pipeline runs from it with kfp's local runner and registers and gates through the
server (and again, restored from its cache); a classifier is registered and gated through the
server, served from it, watched for drift and retrained on it; then two gates race, the MLflow
server dies during a gate, and the service is asked to reload while the registry is down.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from artflow.errors import RegistryUnavailable
from artflow.promote import GATE_EXPERIMENT
from artflow.registry import tracking
from tests.conftest import smoke_overlay
from tests.logcapture import artflow_records
from tests.prod.conftest import ADMIN, BUCKET
from tests.promote.conftest import SIZE, register_color_model

pytestmark = [pytest.mark.prod, pytest.mark.slow]

NAME = tracking.CLASSIFIER  # the name the service serves


@pytest.fixture(scope="module")
def served(prod_env, tmp_path_factory):
    """`artflow serve` against the MLflow server, started first: it imports TensorFlow while
    the data and gate tests run, and picks the champion up with POST /admin/reload."""
    from tests.serve.conftest import start_server, stop_server

    server = start_server(tmp_path_factory.mktemp("prod_serve"), prod_env.identity("serving"))
    yield server
    stop_server(server)


MIN_PAINTINGS = 40  # the demo's three biggest artists (~200 images): a small, trainable set


@pytest.fixture(scope="module")
def data_repo(prod_env, demo_source, tmp_path_factory) -> SimpleNamespace:
    """A git + DVC repository holding the demo artworks of the artists with MIN_PAINTINGS
    or more, pushed to the DVC remote on S3 and tagged `data-v1` (= dvc remote add -d s3 ...;
    dvc remote modify ...; dvc add; dvc push; git commit; git tag)."""
    from dvc.repo import Repo

    root = tmp_path_factory.mktemp("data_repo")
    data = root / "data" / "demo_source"
    images = demo_source / "artworks" / "images"
    for folder in images.iterdir():
        if len(list(folder.iterdir())) >= MIN_PAINTINGS:
            shutil.copytree(folder, data / "artworks" / "images" / folder.name)
    shutil.copy(demo_source / "artworks" / "artists.csv", data / "artworks")
    sha256 = {hashlib.sha256(p.read_bytes()).hexdigest() for p in data.rglob("*.jpg")}
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    repo = Repo.init(str(root))
    with repo.config.edit() as conf:
        conf["core"].update({"analytics": False, "remote": "s3"})
        conf["remote"]["s3"] = {"url": f"s3://{BUCKET}/dvc", "endpointurl": prod_env.s3_url}
    repo.add(str(data))
    pushed = repo.push()
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "data v1"], check=True)
    subprocess.run([*git, "tag", "data-v1"], check=True)
    # from here on the data can only come from the S3 remote: no workspace copy, no cache
    files = sum(1 for p in data.rglob("*") if p.is_file())
    shutil.rmtree(data)
    shutil.rmtree(root / ".dvc" / "cache")
    source = f"dvc://{root}?path=data/demo_source&rev=data-v1&remote=s3"
    return SimpleNamespace(pushed=pushed, files=files, sha256=sha256, source=source)


def test_data_goes_to_a_dvc_remote_on_s3(prod_env, served, data_repo):
    import boto3

    s3 = boto3.client("s3", endpoint_url=prod_env.s3_url)
    stored = s3.list_objects_v2(Bucket=BUCKET, Prefix="dvc/")["KeyCount"]
    # every file and the directory's listing; the next test gets them back byte for byte
    assert data_repo.pushed == stored == data_repo.files + 1


@pytest.fixture
def tiny_profile(tmp_path, prod_env):
    """The smoke profile with one epoch at 32 px (what is checked is the path the data and
    the model take, not the model), the artists of `data_repo`, a gate any trained model
    passes (the run moves the champion), and each step's own MLflow identity (the gate
    steps `gate`, the others `pipeline`: password files as a cluster's mounted Secrets)."""
    for name in ("pipeline", "gate"):
        prod_env.identity(name)  # writes <root>/secrets/<name>
    return smoke_overlay(
        tmp_path / "tiny.yaml",
        pipeline={"local_identities": str(prod_env.root / "secrets")},
        cnn={"epochs": 1},
        images={"size": 32},
        gate={"min_accuracy": 0.0, "min_macro_f1": 0.0},
        sample={"min_paintings": MIN_PAINTINGS},
        novelty={"enabled": False},  # its step: tests/monitor/test_novelty.py
    )


def _code_copy(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the project's code (its artflow package; params.yaml and the profiles
    linked) that the steps import (PYTHONPATH) and whose code the runner digests, so a test
    can edit code and docs without touching the repository's. Returns the package folder."""
    from artflow.config import PROJECT_ROOT
    from artflow.stages import keys

    package = root / "src" / "artflow"
    shutil.copytree(keys.package_root(), package, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("params.yaml", "profiles"):  # artflow.config finds them beside src/
        (root / name).symlink_to(PROJECT_ROOT / name)
    monkeypatch.setenv("PYTHONPATH", str(root / "src"))
    monkeypatch.setattr(keys, "package_root", lambda: package)
    _forget_digests()
    return package


def _forget_digests() -> None:
    from artflow.stages import keys

    keys._modules.cache_clear()
    keys._shared_digest.cache_clear()


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))
    _forget_digests()


def test_training_pipeline_from_the_dvc_remote_through_the_server(
    prod_env, served, data_repo, tiny_profile, tmp_path, monkeypatch, capsys
):
    """`artflow pipeline run training --local` with the data from the DVC remote on S3 and
    the MLflow server: every step in its own empty directory, the data and models travelling
    as artifacts, each new version's novelty model calibrated; then, in a copy of the code, a
    comment and docs change restore everything from kfp's cache, and an edit of the ResNet50's
    fit re-runs its step and the ones after it while the CNN's are restored."""
    from artflow.cli import run as cli
    from pipelines import local_runner

    monkeypatch.delenv("ARTFLOW_PROFILE", raising=False)
    code = _code_copy(tmp_path / "code", monkeypatch)
    step_dirs: list[str] = []
    real_mkdtemp = tempfile.mkdtemp

    def mkdtemp(*args: Any, **kwargs: Any) -> str:
        path = real_mkdtemp(*args, **kwargs)
        if kwargs.get("prefix") == "artflow-step-":
            assert not os.listdir(path)
            step_dirs.append(path)
        return path

    monkeypatch.setattr(local_runner.tempfile, "mkdtemp", mkdtemp)
    home = tmp_path / "home"
    argv = [
        *("pipeline", "run", "training", "--local", "--workdir", str(home)),
        *("--source", data_repo.source, "--mlflow-uri", prod_env.mlflow.url),
        *("--profile", str(tiny_profile), "--arg", "train_resnet=false"),
    ]

    start = time.perf_counter()
    assert cli(argv) == 0
    first = time.perf_counter() - start

    summary = json.loads((home / "pipeline" / "last_run_training.json").read_text())
    run = Path(summary["outputs"])
    # one fresh empty directory per step (removed afterwards), none shared, not ours
    steps = [p for p in run.iterdir() if (p / "executor_output.json").is_file()]
    assert len(step_dirs) == len(set(step_dirs)) == len(steps) >= 6
    assert str(Path.cwd()) not in step_dirs and not any(map(os.path.exists, step_dirs))
    # registered through the server, stored in PostgreSQL
    client = tracking.client()
    assert tracking.tracking_uri() == prod_env.mlflow.url
    versions = client.search_model_versions(f"name='{NAME}'")
    assert [v.tags.get("family") for v in versions] == ["cnn"]
    version = str(versions[0].version)
    rows = prod_env.postgres.query("select version from model_versions where name = %s", NAME)
    assert [str(r[0]) for r in rows] == [version]
    trained = tracking.get_run(versions[0].run_id)
    assert trained.info.artifact_uri.startswith("mlflow-artifacts:")
    assert trained.data.params["cnn.epochs"] == "1"  # the steps ran with tiny_profile
    assert trained.data.tags[tracking.IDENTITY_TAG] == "pipeline"  # the step's own identity
    # the data travelled as artifacts: from the DVC remote, images + manifests, splits, model
    ingested = json.loads((run / "ingest-op" / "executor_output.json").read_text())["artifacts"]
    meta = ingested["data"]["artifacts"][0]["metadata"]
    assert meta["source"] == data_repo.source and meta["content_hash"]
    manifest = pd.read_csv(run / "ingest-op" / "data" / "interim" / "manifest.csv")
    assert set(manifest["sha256"]) == data_repo.sha256  # every image, byte for byte
    assert (run / "sample-op" / "splits" / "splits" / "train.csv").is_file()
    model = json.loads((run / "evaluate-op" / "candidate" / "model.json").read_text())
    assert model == {
        "model_name": NAME,
        "version": version,
        "uri": f"models:/{NAME}/{version}",
        "family": "cnn",
    }
    # native reports: the confusion matrix, the gate's Markdown
    executed = json.loads((run / "train-op" / "executor_output.json").read_text())["artifacts"]
    matrix = executed["confusion"]["artifacts"][0]["metadata"]["confusionMatrix"]
    assert len(matrix["rows"]) == len(matrix["annotationSpecs"]) > 1
    gate = summary["gates"][f"{NAME}-v{version}"]
    report = Path(gate["report"]).read_text()
    assert "| accuracy |" in report and "| latency_ms |" in report
    # the gate decided through the server: the first model became champion, in PostgreSQL
    assert gate["passed"]
    assert prod_env.champion_in_db(NAME) == version
    assert str(tracking.alias_version(NAME, "champion").version) == version
    gates = client.get_experiment_by_name(GATE_EXPERIMENT).experiment_id
    (decided,) = client.search_runs([gates], order_by=["attributes.start_time DESC"], max_results=1)
    assert decided.data.tags[tracking.IDENTITY_TAG] == "gate"  # the one that may move champion
    assert "Model card" in client.get_model_version(NAME, version).description
    assert {"novelty-op", "novelty-op-2"} <= {p.name for p in steps}  # (off in this profile)
    # the terminal got the gist, the log file every line of the steps
    assert "executor_input" not in capsys.readouterr().out
    assert "Got executor_input" in Path(summary["log"]).read_text()

    def rerun() -> tuple[float, dict]:
        step_dirs.clear()
        start = time.perf_counter()
        assert cli(argv) == 0
        seconds = time.perf_counter() - start
        return seconds, json.loads((home / "pipeline" / "last_run_training.json").read_text())

    # a comment in the code and a docs page: nothing runs, every step is restored
    _edit(code / "classify" / "resnet.py", "\ndef fit_resnet(", "\n# a comment\ndef fit_resnet(")
    (code.parents[1] / "docs").mkdir()
    (code.parents[1] / "docs" / "notes.md").write_text("# notes\n")
    with artflow_records() as records:
        second, summary = rerun()
    assert summary["ran"] == [] and step_dirs == []  # kfp's cache: not even a process
    assert sorted(summary["restored"]) == sorted(p.name for p in steps)
    assert summary["seconds"] == pytest.approx(second, abs=10)
    assert list(summary["gates"]) == [f"{NAME}-v{version}"]  # the restored gate's decision
    assert not [m for lvl, name, m in records if name.startswith("artflow.stages")]

    # one family's training function edited: its step and the steps that take its model run
    # again; the ResNet50 is switched off here (train_resnet=false), so its output ('') is the
    # same and the evaluate step and the gate, whose inputs are the versions, are restored
    _edit(
        code / "classify" / "resnet.py",
        "    cfg = settings.resnet\n",
        "    cfg = settings.resnet\n    _ = 1\n",
    )
    third, summary = rerun()
    print(
        f"first run {first:.1f} s, docs-only re-run {second:.1f} s, fit_resnet edited {third:.1f} s"
    )
    assert summary["ran"] == ["novelty-op-2", "train-op-2"]
    restored = {"train-op", "novelty-op", "ingest-op", "sample-op", "evaluate-op", "gate-op"}
    assert restored <= set(summary["restored"])
    assert len(step_dirs) == 2
    # nothing retrained or re-registered
    assert len(client.search_model_versions(f"name='{NAME}'")) == 1
    assert summary["gates"][f"{NAME}-v{version}"]["passed"]
    assert prod_env.champion_in_db(NAME) == version
    # The tests below gate hand-built colour classifiers on another label map, which the
    # pipeline's champion cannot be evaluated on: they start from an empty registry (as the
    # admin: the model is `pipeline`'s, which created it, and this process is `gate`).
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_USERNAME", ADMIN[0])
        mp.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN[1])
        client.delete_registered_model(NAME)
    assert prod_env.champion_in_db(NAME) is None


def test_register_and_gate_through_the_server(prod_env, served, smoke_settings, color_workdir):
    from artflow.promote import history, promote

    v1 = register_color_model(smoke_settings, NAME)
    decision = promote(smoke_settings, color_workdir, NAME, "challenger")
    assert decision.promoted and decision.champion is None
    assert prod_env.champion_in_db(NAME) == v1  # in PostgreSQL, not a local file
    assert history(NAME) == [v1]
    run = tracking.get_run(decision.gate_run_id)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # stored through the server
    assert {f.path for f in tracking.client().list_artifacts(run.info.run_id)} >= {
        "decision.json",
        "decision.md",
    }


def test_serve_the_champion_from_the_server(prod_env, served):
    import httpx

    from tests.serve.conftest import ADMIN_TOKEN, _wait

    _wait(served, "/livez")
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    reload = httpx.post(f"{served.url}/admin/reload", headers=auth, timeout=120)
    assert reload.status_code == 200, reload.text
    assert httpx.get(f"{served.url}/readyz", timeout=5).status_code == 200
    champion = prod_env.champion_in_db(NAME)
    status = httpx.get(f"{served.url}/status", timeout=5).json()
    assert status["models"]["classifier:champion"]["version"] == champion
    for i in range(25):  # enough for a drift window (drift.min_window of the smoke profile)
        reply = _classify(served.url, i)
        assert reply.status_code == 200, reply.text


def _classify(url: str, seed: int) -> Any:
    import httpx

    from tests.serve.conftest import png_bytes

    files = {"image": ("art.png", png_bytes(seed, (SIZE, SIZE)), "image/png")}
    return httpx.post(f"{url}/classify", files=files, timeout=30)


def test_drift_check_and_retrain_trigger_through_the_server(
    prod_env, served, smoke_settings, color_workdir, monkeypatch
):
    from artflow.monitor.check import check_drift
    from artflow.monitor.trigger import trigger_retrain

    for key, value in prod_env.identity("drift").items():  # as the drift CronJob
        monkeypatch.setenv(key, value)

    verdict = check_drift(smoke_settings, color_workdir, served.prediction_log, "champion", None)
    assert verdict["model"]["version"] == prod_env.champion_in_db(NAME)
    calls: list[dict[str, Any]] = []

    def cluster(name: str, **arguments: Any) -> dict[str, Any]:  # stands in for Kubeflow
        calls.append(arguments)
        return {"submitted": True, "run_id": f"kfp-run-{len(calls)}"}

    source = "dvc://repo?path=data/demo_source&rev=v1&remote=s3"
    first = trigger_retrain(
        smoke_settings,
        color_workdir,
        verdict,
        served.prediction_log,
        force=True,
        runner=cluster,
        source=source,
    )
    second = trigger_retrain(
        smoke_settings, color_workdir, verdict, served.prediction_log, force=True, runner=cluster
    )
    assert first["triggered"] and not second["triggered"] and len(calls) == 1
    assert calls[0]["source"] == source and calls[0]["mlflow_uri"] == prod_env.mlflow.url
    assert "not started again" in second["reason"]
    run = tracking.get_run(first["trigger_run_id"])  # the state every pod can query
    assert run.data.tags["artflow.trigger_key"] == second["trigger_key"]


def test_two_gates_at_once_leave_one_champion_and_both_decisions(
    prod_env, served, smoke_settings, color_workdir
):
    from artflow import promote as gate

    settings = smoke_settings.model_copy(
        update={"gate": smoke_settings.gate.model_copy(update={"require_significance": False})}
    )
    champion = prod_env.champion_in_db(NAME)
    v2 = register_color_model(settings, NAME)
    v3 = register_color_model(settings, NAME)
    both_decided = threading.Barrier(2, timeout=120)

    def evaluator(settings, wd, ref):
        result = gate._evaluate(settings, wd, ref)
        if ref.endswith(f"/{champion}"):  # the last evaluation: each gate has decided
            both_decided.wait()
        return result

    decisions: dict[str, Any] = {}
    errors: list[BaseException] = []

    def run(version: str) -> None:
        try:
            decisions[version] = gate.promote(
                settings, color_workdir, NAME, version, strict=False, evaluator=evaluator
            )
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(v,)) for v in (v2, v3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    promoted = [v for v, d in decisions.items() if d.promoted]
    assert len(promoted) == 1, {v: d.reason for v, d in decisions.items()}
    winner = promoted[0]
    loser = v3 if winner == v2 else v2
    assert prod_env.champion_in_db(NAME) == winner
    assert gate.history(NAME) == [champion, winner]
    assert "another gate" in decisions[loser].reason and not decisions[loser].promoted
    tags = {v: tracking.model_version(NAME, v).tags["gate.decision"] for v in (v2, v3)}
    assert tags == {winner: "passed", loser: "stale"}
    for version in (v2, v3):  # both decisions are recorded as gate runs
        assert tracking.get_run(decisions[version].gate_run_id) is not None
    log = gate._tags(NAME)[1]
    assert [e["version"] for e in log if e["action"] == "promote"][-1] == winner
    assert all(e["status"] == "done" for e in log)


def test_gate_fails_loudly_when_the_server_stops(prod_env, served, smoke_settings, color_workdir):
    from artflow import promote as gate

    champion = prod_env.champion_in_db(NAME)
    candidate = register_color_model(smoke_settings, NAME)

    def evaluator(settings, wd, ref):
        result = gate._evaluate(settings, wd, ref)
        prod_env.mlflow.stop()  # the server dies in the middle of the gate
        return result

    with pytest.raises(RegistryUnavailable, match="could not be asked"):
        gate.promote(smoke_settings, color_workdir, NAME, candidate, evaluator=evaluator)
    assert not prod_env.mlflow.running
    assert prod_env.champion_in_db(NAME) == champion  # did not move
    # Asked again with the server down: an outage, never "first model, no champion".
    with pytest.raises(RegistryUnavailable) as err:
        gate.promote(smoke_settings, color_workdir, NAME, candidate)
    assert err.value.exit_code == 3
    assert prod_env.champion_in_db(NAME) == champion
    assert not (color_workdir.reports / "gate" / f"{NAME}-v{candidate}.json").exists()


def test_serving_reload_while_the_registry_is_down(prod_env, served):
    import httpx

    from tests.serve.conftest import ADMIN_TOKEN

    assert not prod_env.mlflow.running  # stopped by the previous test
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    before = httpx.get(f"{served.url}/status", timeout=5).json()["models"]["classifier:champion"]
    reload = httpx.post(f"{served.url}/admin/reload", headers=auth, timeout=120)
    assert reload.status_code == 200, reload.text
    assert reload.json()["state"] == "ready"
    status = httpx.post(f"{served.url}/admin/status", headers=auth, timeout=5).json()
    after = status["models"]["classifier:champion"]
    assert after["loaded"] and after["version"] == before["version"]
    assert "registry lookup failed" in after["error"]  # says what failed
    assert "could not be asked" in after["error"]
    assert httpx.get(f"{served.url}/readyz", timeout=5).status_code == 200
    assert _classify(served.url, 99).status_code == 200
