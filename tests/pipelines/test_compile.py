"""The pipelines compile to Kubeflow IR YAML, load back with kfp, and carry what a cluster needs:
artifacts between the steps (no shared workdir), immutable images, resources, GPUs only where
the profile trains on one (the GPU pool's node selector and tolerations), the MLflow Secret,
retries and deadlines, and Kubeflow caching where the answer depends on inputs and code."""

from __future__ import annotations

import re
import socket

import pytest
import yaml

from artflow.cli import run as cli
from artflow.config import PROJECT_ROOT

IDENTITY_FILE = "MLFLOW_TRACKING_PASSWORD_FILE"
PIPELINE_NAMES = ["training", "style", "retrain"]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("compiled")
    assert cli(["pipeline", "compile", "--out", str(out)]) == 0
    return out


def _docs(compiled, name: str) -> list[dict]:
    """The pipeline spec, then the platform (Kubernetes) spec."""
    return list(yaml.safe_load_all((compiled / f"{name}.yaml").read_text()))


def _spec(compiled, name: str) -> dict:
    return _docs(compiled, name)[0]


@pytest.mark.parametrize("name", PIPELINE_NAMES)
def test_compiled_yaml_is_kfp_ir_that_loads_back(compiled, name):
    from google.protobuf import json_format
    from kfp import components
    from kfp.kubernetes import kubernetes_executor_config_pb2 as k8s_pb2
    from kfp.pipeline_spec import pipeline_spec_pb2

    spec, platform = _docs(compiled, name)
    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())  # raises on non-IR fields
    json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())
    for executor in platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"].values():
        json_format.ParseDict(executor, k8s_pb2.KubernetesExecutorConfig())
    loaded = components.load_component_from_file(str(compiled / f"{name}.yaml"))
    assert loaded.name == f"artflow-{name}"
    inputs = loaded.component_spec.inputs
    assert "workdir" not in inputs and {"source", "mlflow_uri", "source_key"} <= set(inputs)
    assert "cache_dir" not in inputs and "force" not in inputs  # kfp's own cache


@pytest.mark.parametrize("name", PIPELINE_NAMES)
def test_cluster_settings_are_in_the_yaml(compiled, name):
    """GPU requests on the steps the profile trains on a GPU, with the GPU pool's node selector
    and tolerations; the MLflow Secret as env; retries on the steps that call services; a
    deadline on every step; each task's code-and-settings key; no `latest` image."""
    from artflow.config import load_settings
    from pipelines.images import git_commit

    cfg = load_settings().pipeline  # `pipeline compile` without a profile: params.yaml
    spec, platform = _docs(compiled, name)
    executors = spec["deploymentSpec"]["executors"]
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    tasks = _all_tasks(spec)
    gpu_execs = {
        n for n, e in executors.items() if e["container"]["image"].startswith(cfg.gpu_image)
    }
    trains = ("exec-train-op", "exec-gatys-search-op")  # backprop through a network
    assert gpu_execs == {n for n in executors if n.startswith(trains)}
    commit = git_commit()
    for name_, executor in executors.items():
        container = executor["container"]
        assert container["image"].endswith(f":{commit}") and "latest" not in container["image"]
        assert container["resources"]["resourceMemoryRequest"] == cfg.memory_request
        assert "pip install" not in " ".join(container["command"])  # the image has artflow
        env = {e["name"]: e["value"] for e in container["env"]}
        assert set(env) == {"ARTFLOW_STEP_KEY", "MLFLOW_TRACKING_USERNAME", IDENTITY_FILE}
        identity = "gate" if name_.startswith("exec-gate-op") else "pipeline"
        assert env["MLFLOW_TRACKING_USERNAME"] == identity  # only the gate may move champion
        (volume,) = k8s[name_]["secretAsVolume"]
        assert volume["secretName"] == cfg.mlflow_identity_secrets[identity]
        assert env[IDENTITY_FILE] == f"{volume['mountPath']}/password"
        secret = k8s[name_]["secretAsEnv"][0]
        assert secret["secretName"] == cfg.mlflow_secret
        assert {m["envVar"] for m in secret["keyToEnv"]} == set(cfg.mlflow_secret_keys)
        deadline = cfg.train_timeout_s if name_.startswith(trains) else cfg.timeout_s
        assert int(k8s[name_]["activeDeadlineSeconds"]) == deadline
        if name_ in gpu_execs:
            accelerator = container["resources"]["accelerator"]
            assert accelerator["resourceType"] == cfg.gpu_accelerator
            assert str(accelerator["resourceCount"]) == str(cfg.gpu_limit)
            assert k8s[name_]["nodeSelector"]["labels"] == cfg.gpu_node_selector
            tolerations = k8s[name_]["tolerations"]
            assert [{k: t[k] for k in ("key", "operator", "effect")} for t in tolerations] == [
                dict(t) for t in cfg.gpu_tolerations
            ]
        else:
            assert "accelerator" not in container["resources"]
            assert "nodeSelector" not in k8s[name_] and "tolerations" not in k8s[name_]
    for task_name, task in tasks.items():
        kind = task_name.split("-op")[0].replace("-", "_")
        kind = "train" if kind in ("train", "gatys_search") else kind.removesuffix("_check")
        retry = task.get("retryPolicy", {})
        assert int(retry.get("maxRetryCount", 0)) == cfg.retries.get(kind, 0), task_name
        if retry:
            assert retry["backoffDuration"] == f"{cfg.retry_backoff_s}s"
            assert retry["backoffMaxDuration"] == f"{cfg.retry_backoff_max_s}s"


def _all_tasks(spec: dict) -> dict:
    """Every task of the pipeline, those inside a condition's sub-DAG too."""
    tasks = dict(spec["root"]["dag"]["tasks"])
    for component in spec["components"].values():
        tasks.update(component.get("dag", {}).get("tasks", {}))
    return {n: t for n, t in tasks.items() if not n.startswith("condition-")}


def test_a_cpu_profile_requests_no_gpu_and_the_image_follows_one_setting(tmp_path):
    """The smoke profile trains on CPU: no step asks for a GPU. `pipeline.image_tag` names
    the images of every task; `latest` is refused."""
    from tests.conftest import smoke_overlay

    overlay = smoke_overlay(tmp_path / "p.yaml", pipeline={"image_tag": "sha256:" + "a" * 64})
    assert cli(["pipeline", "compile", "--out", str(tmp_path), "-p", str(overlay)]) == 0
    spec = yaml.safe_load_all((tmp_path / "training.yaml").read_text()).__next__()
    containers = [e["container"] for e in spec["deploymentSpec"]["executors"].values()]
    assert all("accelerator" not in c["resources"] for c in containers)
    assert {c["image"] for c in containers} == {"ghcr.io/artflow/artflow@sha256:" + "a" * 64}
    latest = smoke_overlay(tmp_path / "l.yaml", pipeline={"image_tag": "latest"})
    assert cli(["pipeline", "compile", "--out", str(tmp_path), "-p", str(latest)]) == 2


def test_the_image_reference_changes_with_the_commit(tmp_path):
    from artflow.config import PipelineCfg
    from pipelines.images import image_tag

    repo = tmp_path / "repo"
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    import subprocess

    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    tags = []
    for _ in range(2):
        subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "c"], check=True)
        tags.append(image_tag(PipelineCfg(), root=repo))
    assert tags[0] != tags[1] and all(len(t) == 40 for t in tags)
    assert image_tag(PipelineCfg(image_tag="v1.2"), root=repo) == "v1.2"
    assert image_tag(PipelineCfg(), local=True) == "local"  # locally the code digest keys


def test_training_dag_passes_artifacts(compiled):
    tasks = _spec(compiled, "training")["root"]["dag"]["tasks"]
    assert set(tasks) == {
        "ingest-op",
        "validate-op",
        "sample-op",
        "train-op",
        "train-op-2",
        "evaluate-op",
        "gate-op",
        "novelty-op",
        "novelty-op-2",
    }

    def artifact_from(task: str, name: str) -> str:
        source = tasks[task]["inputs"]["artifacts"][name]["taskOutputArtifact"]
        return f"{source['producerTask']}.{source['outputArtifactKey']}"

    assert artifact_from("validate-op", "data") == "ingest-op.data"
    assert artifact_from("sample-op", "validation") == "validate-op.validation"
    for train in ("train-op", "train-op-2"):  # in parallel, both from the artifacts
        assert artifact_from(train, "data") == "ingest-op.data"
        assert artifact_from(train, "splits") == "sample-op.splits"
    # evaluate: one list of every classifier family's version, each its training step's output
    evaluate = tasks["evaluate-op"]["inputs"]["parameters"]
    versions = [evaluate[p.split("'")[1]] for p in evaluate["versions"]["runtimeValue"]["constant"]]
    sources = {v["taskOutputParameter"]["producerTask"] for v in versions}
    assert sources == {"train-op", "train-op-2"} == set(tasks["evaluate-op"]["dependentTasks"])
    assert artifact_from("gate-op", "candidate") == "evaluate-op.candidate"
    families = {t: tasks[t]["inputs"]["parameters"]["family"] for t in ("train-op", "train-op-2")}
    assert {f["runtimeValue"]["constant"] for f in families.values()} == {"cnn", "resnet50"}
    for novelty in ("novelty-op", "novelty-op-2"):  # each trained version, once gated
        assert "gate-op" in tasks[novelty]["dependentTasks"]
    novelty_of = {artifact_from(n, "model") for n in ("novelty-op", "novelty-op-2")}
    assert novelty_of == {"train-op.model", "train-op-2.model"}
    # Kubeflow's cache: on where the answer depends only on inputs and code, off for ingest
    # (the source may change under its name) and the gate (the champion moves)
    caching = {n: t["cachingOptions"].get("enableCache", False) for n, t in tasks.items()}
    assert caching == {
        "ingest-op": False,
        "validate-op": True,
        "sample-op": True,
        "train-op": True,
        "train-op-2": True,
        "evaluate-op": True,
        "gate-op": False,
        "novelty-op": True,
        "novelty-op-2": True,
    }


def test_reports_are_native_kfp_artifacts(compiled):
    outputs = _spec(compiled, "training")["components"]
    kinds = {
        name: {
            k: v["artifactType"]["schemaTitle"]
            for k, v in c["outputDefinitions"]["artifacts"].items()
        }
        for name, c in outputs.items()
        if "outputDefinitions" in c and "artifacts" in c["outputDefinitions"]
    }
    assert kinds["comp-train-op"]["confusion"] == "system.ClassificationMetrics"
    assert kinds["comp-evaluate-op"]["confusion"] == "system.ClassificationMetrics"
    assert kinds["comp-evaluate-op"]["comparison"] == "system.Markdown"
    assert kinds["comp-gate-op"] == {"decision": "system.Metrics", "report": "system.Markdown"}
    drift = _spec(compiled, "retrain")["components"]["comp-drift-check-op"]
    assert drift["outputDefinitions"]["artifacts"]["summary"]["artifactType"]["schemaTitle"] == (
        "system.Markdown"
    )


def test_retrain_runs_its_training_under_the_drift_checks_condition(compiled):
    spec = _spec(compiled, "retrain")
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == {"drift-check-op", "condition-1"}
    condition = tasks["condition-1"]
    assert condition["dependentTasks"] == ["drift-check-op"]
    assert "drift-check-op-Output" in condition["triggerPolicy"]["condition"]
    branch = spec["components"][condition["componentRef"]["name"]]["dag"]["tasks"]
    assert {"ingest-op", "train-op", "gate-op", "novelty-op"} <= set(branch)
    assert not tasks["drift-check-op"]["cachingOptions"].get("enableCache", False)


def test_style_pipeline_gates_every_style_family(compiled):
    from artflow import families

    tasks = _spec(compiled, "style")["root"]["dag"]["tasks"]
    names = {
        t["inputs"]["parameters"]["model_name"]["runtimeValue"]["constant"]
        for n, t in tasks.items()
        if n.startswith("gate-op")
    }
    assert names == {families.get(f).registry_name for f in families.names("style")}


def test_fast_stylizer_trains_after_the_vgg19_stylizers_gate(compiled):
    """Its teacher is the VGG19 stylizer the same run registered (and gated)."""
    tasks = _spec(compiled, "style")["root"]["dag"]["tasks"]

    def family(task: dict) -> str:
        return (
            task["inputs"]["parameters"].get("family", {}).get("runtimeValue", {}).get("constant")
        )

    train = {family(t): n for n, t in tasks.items() if n.startswith("train-op")}
    gate_of = {
        t["inputs"]["artifacts"]["candidate"]["taskOutputArtifact"]["producerTask"]: n
        for n, t in tasks.items()
        if n.startswith("gate-op")
    }
    assert gate_of[train["stylizer"]] in tasks[train["fast_stylizer"]]["dependentTasks"]


def test_style_pipeline_searches_gatys_settings_after_sampling(compiled):
    tasks = _spec(compiled, "style")["root"]["dag"]["tasks"]
    search = tasks["gatys-search-op"]
    assert set(search["dependentTasks"]) == {"ingest-op", "sample-op"}
    artifacts = search["inputs"]["artifacts"]
    assert artifacts["splits"]["taskOutputArtifact"]["producerTask"] == "sample-op"


def test_no_step_reads_another_steps_files_except_through_artifacts():
    """Components take no workdir/path parameter to share data; each body works on its own
    scratch folder assembled from its Input artifacts, and writes into its Output artifacts."""
    import importlib

    names = ("data", "drift", "evaluate", "gate", "novelty", "train")
    modules = [importlib.import_module(f"components.{n}") for n in names]
    ops = [getattr(m, n) for m in modules for n in dir(m) if n.endswith("_op")]
    assert len(ops) == 9
    # inputs from outside the pipeline (a profile may be an overlay file)
    allowed = {"source", "source_key", "profile", "prediction_log", "trigger_report"}
    for op in ops:
        params = op.component_spec.inputs or {}
        for name, spec in params.items():
            if spec.type in ("String", "STRING") and name not in allowed:
                assert not re.search(r"workdir|dir$|path|root|file", name), f"{op.name}.{name}"
    for path in (PROJECT_ROOT / "components").glob("*.py"):
        text = path.read_text()
        assert not re.search(
            r"\bworkdir\b|Workdir\.at\(|PROJECT_ROOT|/data/",
            text.replace("Workdir.at(data.path)", ""),
        ), path.name
    for name in ("steps", "training", "style", "retrain"):  # the pipelines share no folder
        assert "workdir" not in (PROJECT_ROOT / "pipelines" / f"{name}.py").read_text(), name


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
