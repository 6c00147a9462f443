"""A model family is declared once (artflow.families): a new one is trained by the pipeline's
training step, keyed by its declared settings and its own code, registered, evaluated, gated
and served, with nothing else to change; a new served style model likewise through its
`Model` entry.

Both are declared by tests/pipelines/dummy_families.py, the way a family kept outside artflow
is: the test imports it, and the server, one real `bentoml serve` for both, is told of it only
through `ARTFLOW_FAMILY_MODULES`. The server starts first, so its TensorFlow import overlaps
the training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from kfp.dsl import ClassificationMetrics, Dataset, Markdown, Metrics, Model

from artflow import families
from artflow.config import PROJECT_ROOT
from artflow.registry import tracking
from tests.conftest import copy_store

FAMILY_MODULES = "tests.pipelines.dummy_families"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, empty_store_template: Path):
    """One empty MLflow store for the module: both dummies are trained into it, and the
    server serves it (the real registered names: nothing else may be in it)."""
    uri, artifacts = copy_store(empty_store_template, tmp_path_factory.mktemp("families"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("ARTFLOW_ARTIFACT_ROOT", artifacts)
        yield uri


@pytest.fixture(scope="module")
def declared(store):
    from tests.pipelines import dummy_families

    dummy_families.declare()  # already declared on import; again after an earlier teardown
    yield dummy_families
    dummy_families.undeclare()


@pytest.fixture(scope="module")
def server(store, declared, tmp_path_factory: pytest.TempPathFactory):
    """Started, not yet ready: the last test waits for it once the versions are registered."""
    from tests.serve.conftest import start_server, stop_server

    env = {families.MODULES_ENV: FAMILY_MODULES, "PYTHONPATH": str(PROJECT_ROOT)}
    srv = start_server(tmp_path_factory.mktemp("families_serve"), env_extra=env)
    yield srv
    stop_server(srv)


def _gate(tmp_path: Path, name: str, common: dict, candidate: Model) -> bool:
    from components.gate import gate_op

    out = tmp_path / f"gate-{name}"
    return gate_op.python_func(
        model_name=name,
        candidate=candidate,
        decision=Metrics(name="decision", uri=str(out / "decision"), metadata={}),
        report=Markdown(name="report", uri=str(out / "report"), metadata={}),
        **{k: v for k, v in common.items() if k not in ("family", "tune", "enabled")},
    )


def _step_args(family: str, overlay: Path, workdir: Any) -> dict:
    """What the pipeline hands its training step (and, less the first three, its gate)."""
    return dict(
        family=family,
        tune=False,
        enabled=True,
        profile=str(overlay),
        mlflow_uri="",
        data=Dataset(name="data", uri=str(workdir.root), metadata={}),
        splits=Dataset(name="splits", uri=str(workdir.root), metadata={}),
    )


def _artifacts(out: Path) -> dict:
    return {
        "model": Model(name="model", uri=str(out / "model"), metadata={}),
        "metrics": Metrics(name="metrics", uri=str(out / "metrics"), metadata={}),
        "confusion": ClassificationMetrics(name="confusion", uri=str(out / "c"), metadata={}),
    }


def _train(family: str, overlay: dict, workdir: Any, out: Path) -> dict:
    """The pipeline's training step and gate for `family`, as the pipeline runs them."""
    from components.train import train_op

    out.mkdir(parents=True, exist_ok=True)
    (out / "overlay.yaml").write_text(json.dumps(overlay))
    common = _step_args(family, out / "overlay.yaml", workdir)
    artifacts = _artifacts(out)
    version = train_op.python_func(**common, **artifacts)  # what the evaluate step receives
    name = artifacts["model"].metadata["model_name"]
    passed = _gate(out, name, common, artifacts["model"])
    return {"version": version, "artifacts": artifacts, "passed": passed}


@pytest.fixture(scope="module")
def dummy(server, declared, demo_workdir, tmp_path_factory) -> dict:
    gate = {"min_accuracy": 0.0, "min_macro_f1": 0.0}  # the wiring is tested, not the model
    overlay = {"images": {"size": 32}, "cnn": {"batch_size": 64}, "gate": gate}
    return _train("dummy", overlay, demo_workdir, tmp_path_factory.mktemp("dummy"))


@pytest.fixture(scope="module")
def tiny(server, declared, demo_workdir, tmp_path_factory) -> dict:
    overlay = {"images": {"size": 32}}
    return _train("tiny_style", overlay, demo_workdir, tmp_path_factory.mktemp("tiny"))


def test_a_family_declared_once_is_trained_cached_registered_evaluated_and_gated(dummy):
    from artflow import stages
    from artflow.config import load_settings

    version, model = dummy["version"], dummy["artifacts"]["model"]
    assert version
    registered = tracking.client().get_model_version(families.CLASSIFIER, version)
    assert registered.tags["family"] == "dummy"
    assert model.metadata["uri"] == f"models:/{families.CLASSIFIER}/{version}"
    assert json.loads((Path(model.path) / "model.json").read_text())["family"] == "dummy"
    assert "confusionMatrix" in dummy["artifacts"]["confusion"].metadata
    assert Path(dummy["artifacts"]["metrics"].path).is_file()  # what kfp's cache restores

    # its cache key: its declared sections (kfp's key covers the rest)
    base = load_settings(profile="smoke")
    other = load_settings(profile="smoke", overrides={"resnet": {"batch_size": 3}})
    assert stages.step_key("train_dummy", base) == stages.step_key("train_dummy", other)
    assert stages.step("train_dummy").sections == (*families.CLASSIFIER_SHARED, "cnn")

    # evaluated: the evaluate step's selection, over every family's training output
    chosen = stages.select_candidate(stages.trained_versions([version, ""]))
    assert chosen["version"] == version and chosen["family"] == "dummy"
    assert chosen["confusion"]["val"] and chosen["labels"]
    # gated by the pipeline's gate step: the first classifier in this store, and its
    # family's best (`best-dummy`), which is what `family=dummy` serves
    assert dummy["passed"]
    assert str(tracking.alias_version(families.CLASSIFIER, "best-dummy").version) == version


def test_the_training_pipeline_trains_and_evaluates_every_classifier_family(declared, monkeypatch):
    """Every classifier family gets its training task, all feed the evaluate step, and every
    task carries ARTFLOW_FAMILY_MODULES (a step on a cluster reads the same table)."""
    from google.protobuf import json_format

    from artflow.config import load_settings
    from pipelines import training

    monkeypatch.setenv(families.MODULES_ENV, FAMILY_MODULES)
    spec = training.build(load_settings(profile="smoke"), local=True).pipeline_spec
    tasks = spec.root.dag.tasks
    trained = {
        t.inputs.parameters["family"].runtime_value.constant.string_value: n
        for n, t in tasks.items()
        if n.startswith("train-op")
    }
    assert set(trained) == {"cnn", "resnet50", "dummy"}
    assert set(tasks["evaluate-op"].dependent_tasks) == set(trained.values())
    executors = json_format.MessageToDict(spec.deployment_spec)["executors"]
    for executor in executors.values():
        env = {e["name"]: e["value"] for e in executor["container"].get("env", [])}
        assert env[families.MODULES_ENV] == FAMILY_MODULES


def test_a_module_that_cannot_be_imported_is_one_clear_error():
    from artflow.errors import ConfigError

    with pytest.raises(ConfigError, match="ARTFLOW_FAMILY_MODULES names 'no_such.module'"):
        families.load_modules("tests.pipelines.dummy_families, no_such.module")


def test_a_served_style_model_declared_once_is_trained_gated_and_carded(tiny, declared, tmp_path):
    from artflow.registry.views import is_style_model
    from artflow.serve import models as serving

    name, version = declared.STYLE_MODEL, tiny["version"]
    card = tracking.client().get_model_version(name, version).description
    assert "Tint photos for the family-table test." in card and "- Only a test." in card
    assert is_style_model(name)  # the gate compares its style metrics
    assert tiny["passed"]
    assert str(tracking.alias_version(name, "champion").version) == version
    # the readers derived from the table: safe loading imports its custom layer's module,
    # rollback and the Bento know its short name
    assert "tests.pipelines.tiny_style" in families.layer_modules()
    assert serving.rollback_target("tiny") == (name, "tiny")
    assert serving.short_names()[name] == "tiny"  # the Bento's labels
    from tests.pipelines import tiny_style

    path = tmp_path / "tiny.keras"
    tiny_style.load(tracking.model_uri(name, version)).save(path)
    from_bento = serving.bento_loaders()["tiny"](path, {"name": name, "version": version})
    assert [w.shape for w in from_bento.weights] == [(3,)]


def test_both_are_served_by_a_server_that_knows_them_only_from_the_table(
    server, dummy, tiny, tmp_path
):
    """`family=dummy` answers with the dummy's gated version, the page offers it, and the
    style model sits loaded in its slot `tiny`."""
    from tests.serve import images
    from tests.serve.conftest import ADMIN_TOKEN, READY_DEADLINE_S, _wait

    _wait(server, "/livez")
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=server.url, timeout=60) as client:
        reload = client.post("/admin/reload", headers=admin, timeout=READY_DEADLINE_S)
        assert reload.status_code == 200, reload.text
        _wait(server, "/readyz")
        files = {"image": ("upload.png", images.png(7), "image/png")}
        answer = client.post("/classify", files=files, data={"family": "dummy"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["family"] == "dummy" and body["model"]["version"] == dummy["version"]
        labels = json.loads(
            tracking.model_version(families.CLASSIFIER, dummy["version"]).tags["labels"]
        )
        assert body["artist"] in labels and 0 < body["confidence"] <= 1
        assert '<option value="dummy">dummy</option>' in client.get("/ui").text
        slot = client.get("/status").json()["models"]["tiny"]
        assert slot == {"version": tiny["version"], "loaded": True}
