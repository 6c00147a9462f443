"""The production path, rehearsed on one machine against PostgreSQL, an S3 server and
`mlflow server` (tests/prod/conftest.py), with the faults a cluster meets.

The tests run in order and share one registry: the data goes to a DVC remote on S3, a
classifier is registered and gated through the server, served from it, watched for drift
and retrained on it; then two gates race, the MLflow server dies during a gate, and the
service is asked to reload while the registry is down.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from artflow import tracking
from artflow.errors import RegistryUnavailable
from tests.prod.conftest import BUCKET
from tests.promote.conftest import SIZE, register_color_model

pytestmark = [pytest.mark.prod, pytest.mark.slow]

NAME = tracking.CLASSIFIER  # the name the service serves


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def served(prod_env, tmp_path_factory):
    """`artflow serve` against the MLflow server, started first: it imports TensorFlow while
    the data and gate tests run, and picks the champion up with POST /admin/reload."""
    from tests.serve.conftest import start_server, stop_server

    server = start_server(tmp_path_factory.mktemp("prod_serve"))
    yield server
    stop_server(server)


def test_data_goes_to_a_dvc_remote_on_s3_and_comes_back(prod_env, served, smoke_settings, tmp_path):
    import boto3
    from dvc.repo import Repo

    from artflow import stages
    from artflow.data.demo import generate_demo
    from artflow.data.layout import Workdir

    root = tmp_path / "repo"
    data = root / "data" / "demo_source"
    tiny = smoke_settings.data.demo.model_copy(
        update={"scale": 0.02, "monet_paintings": 2, "photos": 2}
    )
    generate_demo(data, tiny, seed=smoke_settings.seed)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    repo = Repo.init(str(root))
    with repo.config.edit() as conf:  # = dvc remote add -d s3 ...; dvc remote modify ...
        conf["core"].update({"analytics": False, "remote": "s3"})
        conf["remote"]["s3"] = {"url": f"s3://{BUCKET}/dvc", "endpointurl": prod_env.s3_url}
    repo.add(str(data))
    assert repo.push() > 0
    s3 = boto3.client("s3", endpoint_url=prod_env.s3_url)
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="dvc/")["KeyCount"] > 0
    before = _digests(data)
    shutil.rmtree(data)
    shutil.rmtree(root / ".dvc" / "cache")
    Repo(str(root)).pull()
    assert _digests(data) == before  # every file, byte for byte, from the remote
    # The pipeline's ingest step, given the data as a DVC source (`dvc get` at a revision of
    # the repository, from its S3 remote), as a drift-triggered retrain on a cluster gets it.
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "data v1"], check=True)
    subprocess.run([*git, "tag", "data-v1"], check=True)
    source = f"dvc://{root}?path=data/demo_source&rev=data-v1&remote=s3"
    artifact = SimpleNamespace(metadata={})
    wd = Workdir.at(tmp_path / "wd")
    report = stages.ingest(smoke_settings, source, artifact, wd)
    assert artifact.metadata["source"] == source and artifact.metadata["content_hash"]
    assert report["artworks"] and any(p.is_file() for p in wd.raw_artworks.rglob("*"))


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
    prod_env, served, smoke_settings, color_workdir
):
    from artflow.monitor.check import check_drift
    from artflow.monitor.trigger import trigger_retrain

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
