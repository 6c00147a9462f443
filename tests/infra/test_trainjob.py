"""The TFJob that multi-worker training runs as on a cluster (artflow.classify.trainjob):
generated from the settings, valid against the TFJob CRD's schema (the subset in schemas/) and
its pod template valid as a Pod (kubernetes-validate, offline); waiting reads the job's
conditions; the launching step stages the data on the claim and reads the chief's result."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.infra.conftest import run, tool

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "tfjob-kubeflow-v1.json").read_text())
K8S_VERSION = "1.32.0"
TAG = "0123abc"  # the commit the images were built from


def settings(**trainjob: Any):
    from artflow.config import load_settings

    overrides = {"training": {"workers": 3}, "trainjob": trainjob, "pipeline": {"image_tag": TAG}}
    return load_settings(profile="smoke", overrides=overrides)


def tfjob(**trainjob: Any) -> dict[str, Any]:
    from artflow.classify.trainjob import manifest

    return manifest(settings(**trainjob), "cnn", "artflow-cnn-0123", "/mnt/artflow/x/wd", "/p.yaml")


def as_pod(job: dict[str, Any]) -> dict[str, Any]:
    template = job["spec"]["tfReplicaSpecs"]["Worker"]["template"]
    meta = {"name": f"{job['metadata']['name']}-worker-0", **template["metadata"]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"]}


def validate_pod(pod: dict[str, Any], tmp_path: Path):
    path = tmp_path / "pod.yaml"
    path.write_text(yaml.safe_dump(pod))
    cmd = [tool("kubernetes-validate"), "--strict", "-k", K8S_VERSION, "--quiet", str(path)]
    return run(cmd)


@pytest.mark.parametrize("gpus", [0, 1])
def test_tfjob_validates_against_the_crd_and_its_pod_as_a_pod(gpus: int, tmp_path: Path) -> None:
    job = tfjob(gpus_per_worker=gpus)
    jsonschema.validate(job, SCHEMA)
    proc = validate_pod(as_pod(job), tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_tfjob_says_what_the_settings_say() -> None:
    cfg = settings(gpus_per_worker=2)
    job = tfjob(gpus_per_worker=2)
    workers = job["spec"]["tfReplicaSpecs"]["Worker"]
    assert workers["replicas"] == 3  # one pod per worker; worker 0 is the chief
    pod = workers["template"]["spec"]
    (container,) = pod["containers"]
    assert container["name"] == "tensorflow"  # where the operator puts TF_CONFIG
    assert container["image"] == f"{cfg.pipeline.gpu_image}:{TAG}"
    assert container["resources"]["limits"][cfg.pipeline.gpu_accelerator] == 2
    assert pod["nodeSelector"] == cfg.pipeline.gpu_node_selector
    assert container["command"][:3] == ["artflow", "train", "classifier"]
    assert container["command"][-4:] == ["--workdir", "/mnt/artflow/x/wd", "--params", "/p.yaml"]
    secret_keys = {
        e["valueFrom"]["secretKeyRef"]["key"] for e in container["env"] if "valueFrom" in e
    }
    assert secret_keys == set(cfg.pipeline.mlflow_secret_keys)  # the chief registers
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == cfg.trainjob.volume_claim
    assert job["spec"]["runPolicy"]["activeDeadlineSeconds"] == cfg.trainjob.timeout_s
    cpu = tfjob()["spec"]["tfReplicaSpecs"]["Worker"]["template"]
    assert "nodeSelector" not in cpu["spec"]
    assert cpu["spec"]["containers"][0]["image"] == f"{cfg.pipeline.base_image}:{TAG}"


def test_workers_run_the_launching_steps_image_tag(monkeypatch: pytest.MonkeyPatch) -> None:
    from artflow.classify.trainjob import IMAGE_TAG_ENV, image
    from artflow.config import load_settings
    from artflow.errors import ConfigError

    cfg = settings()
    monkeypatch.setenv(IMAGE_TAG_ENV, "sha256:" + "f" * 64)
    assert image(cfg) == f"{cfg.pipeline.base_image}@sha256:{'f' * 64}"
    monkeypatch.delenv(IMAGE_TAG_ENV)
    with pytest.raises(ConfigError, match="immutable image tag"):
        image(load_settings(profile="smoke", overrides={"training": {"workers": 2}}))


def test_schema_and_pod_check_refuse_broken_tfjobs(tmp_path: Path) -> None:
    job = tfjob()
    for path, value in [
        (("spec", "tfReplicaSpecs", "Worker", "replicas"), "3"),
        (("spec", "tfReplicaSpecs", "Worker", "restartPolicy"), "OnFailur"),
        (("spec", "runPolicy", "cleanPodPolicy"), "Runing"),
        (("spec", "tfReplicaSpec"), {}),  # a typo of tfReplicaSpecs
    ]:
        broken = copy.deepcopy(job)
        node = broken
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, SCHEMA)
    pod = as_pod(job)
    pod["spec"]["containers"][0]["volumeMount"] = pod["spec"]["containers"][0].pop("volumeMounts")
    proc = validate_pod(pod, tmp_path)
    assert proc.returncode != 0 and "volumeMount" in proc.stdout + proc.stderr


def test_one_worker_is_no_tfjob_and_names_are_dns_labels() -> None:
    from artflow.classify.trainjob import job_name, manifest
    from artflow.config import load_settings
    from artflow.errors import ConfigError

    with pytest.raises(ConfigError, match="workers"):
        manifest(load_settings(profile="smoke"), "cnn", "x", "/wd", "/p.yaml")
    name = job_name("ResNet50", "Ab_cd" * 20)
    assert len(name) <= 40 and name == name.lower() and "_" not in name
    assert not name.endswith("-")


class StandInCluster:
    """The two calls train_tfjob makes of Kubernetes' CustomObjectsApi. No cluster runs here:
    on `create`, it does what the chief pod would leave on the claim (its result file), then
    reports the job Running once and Succeeded after (or Failed)."""

    def __init__(self, outcome: str = "Succeeded") -> None:
        self.outcome, self.created, self.polls = outcome, [], 0

    def create_namespaced_custom_object(self, group, version, namespace, plural, body):
        self.created.append((group, version, namespace, plural, body))
        command = body["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0][
            "command"
        ]
        workdir = Path(command[command.index("--workdir") + 1])
        out = workdir / "models" / "cnn" / "multiworker"
        out.mkdir(parents=True, exist_ok=True)
        (out / "result.json").write_text(json.dumps({"model_name": "m", "version": "7"}))
        (workdir / "metrics").mkdir(exist_ok=True)
        (workdir / "metrics" / "cnn.json").write_text("{}")
        return body

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        self.polls += 1
        state = "Running" if self.polls == 1 else self.outcome
        condition = {"type": state, "status": "True", "message": f"job {state.lower()}"}
        return {
            "metadata": {"name": name, "namespace": namespace},
            "status": {"conditions": [{"type": "Created", "status": "True"}, condition]},
        }


def test_launching_step_stages_data_waits_and_reads_the_chief(tmp_path: Path) -> None:
    from artflow.classify.trainjob import train_tfjob
    from artflow.data.layout import Workdir
    from artflow.errors import ModelError

    wd = Workdir.at(tmp_path / "wd")
    wd.splits.mkdir(parents=True)
    (wd.splits / "train.csv").write_text("path,label\n")
    (wd.root / "models").mkdir()  # models are not copied to the claim
    mount = tmp_path / "claim"
    mount.mkdir()
    cfg = settings(mount_path=str(mount), poll_s=0.01)
    cluster = StandInCluster()
    result = train_tfjob(cfg, wd, "cnn", api=cluster)
    assert result == {"model_name": "m", "version": "7"}
    ((_, _, namespace, plural, body),) = cluster.created
    assert (namespace, plural) == (cfg.trainjob.namespace, "tfjobs")
    staged = mount / body["metadata"]["name"] / "workdir"
    assert (staged / "splits" / "train.csv").is_file() and not (staged / "models" / "x").exists()
    params = yaml.safe_load((staged / "settings.yaml").read_text())
    assert params["training"] == {**params["training"], "workers": 3, "distribute": "multiworker"}
    assert (wd.metrics / "cnn.json").is_file()  # the chief's metrics, back in the step's workdir
    with pytest.raises(ModelError, match="job failed"):
        train_tfjob(cfg, wd, "cnn", api=StandInCluster("Failed"))


def test_compiled_training_steps_hand_their_image_tag_to_the_tfjob(tmp_path: Path) -> None:
    """With training.workers > 1, every training task carries its own image tag, which the
    TFJob's workers then run (the cache key already covers the image)."""
    from artflow.classify.trainjob import IMAGE_TAG_ENV
    from artflow.cli import run as cli
    from tests.conftest import smoke_overlay

    overlay = smoke_overlay(
        tmp_path / "p.yaml", training={"workers": 2}, pipeline={"image_tag": TAG}
    )
    assert cli(["pipeline", "compile", "--out", str(tmp_path), "-p", str(overlay)]) == 0
    spec = next(yaml.safe_load_all((tmp_path / "training.yaml").read_text()))
    env = {
        name: {e["name"]: e.get("value") for e in executor["container"].get("env", [])}
        for name, executor in spec["deploymentSpec"]["executors"].items()
    }
    train = [name for name in env if "train" in name]
    assert train and all(env[name][IMAGE_TAG_ENV] == TAG for name in train)
    assert all(IMAGE_TAG_ENV not in env[name] for name in env if name not in train)
