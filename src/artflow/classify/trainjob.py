"""Multi-worker training on a cluster: one Training Operator `TFJob` (kubeflow.org/v1), one
pod per worker, made from the same settings as every other training.

Why a TFJob: the Training Operator writes each pod's TF_CONFIG (cluster and task), which is
what MultiWorkerMirroredStrategy reads; Kubeflow Trainer's `TrainJob` (v2) ships runtimes
for PyTorch, JAX, MPI and DeepSpeed, none for TensorFlow. Worker 0 is the chief (no Chief
replica), which is also the TFJob's default success rule: the job succeeds when worker 0 does.

The step that launches it (a pipeline's training step, or `artflow train classifier --workers N`
inside the cluster) copies its data version onto the claim every worker mounts
(`trainjob.volume_claim`), creates the TFJob, waits for it, and reads back the chief's result,
reports and metrics. Its schema is checked in tests/infra/test_trainjob.py.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from artflow.classify import distributed
from artflow.config import Settings
from artflow.data.layout import Workdir
from artflow.errors import ConfigError, ModelError

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL, KIND = "kubeflow.org", "v1", "tfjobs", "TFJob"
# The Training Operator adds TF_CONFIG and the port to the container of this name.
CONTAINER = "tensorflow"
VOLUME = "artflow-train"
# The tag of the image the launching step runs (a pipeline sets it, pipelines/steps.py): the
# workers run the same code. Outside a pipeline, `pipeline.image_tag` names it.
IMAGE_TAG_ENV = "ARTFLOW_IMAGE_TAG"
_NAME = re.compile(r"[^a-z0-9-]+")


def in_cluster() -> bool:
    """Inside a Kubernetes pod (the variable every pod gets), where training launches a TFJob."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def job_name(family: str, key: str) -> str:
    """A DNS-1123 name (the pods' names add a suffix, so it stays well under 63)."""
    name = _NAME.sub("-", f"artflow-{family}-{key}".lower()).strip("-")
    return name[:40].rstrip("-")


def image(settings: Settings) -> str:
    """The workers' image: the GPU or CPU repository at the launching step's tag."""
    cfg = settings.pipeline
    tag = os.environ.get(IMAGE_TAG_ENV, "").strip() or cfg.image_tag.strip()
    if not tag or tag == "latest":
        raise ConfigError(
            "no immutable image tag for the TFJob's workers",
            f"set pipeline.image_tag (a commit or sha256:<digest>) or {IMAGE_TAG_ENV}",
        )
    repository = cfg.gpu_image if settings.trainjob.gpus_per_worker else cfg.base_image
    return f"{repository}@{tag}" if tag.startswith("sha256:") else f"{repository}:{tag}"


def _env(settings: Settings) -> list[dict[str, Any]]:
    """The MLflow client's settings from the Secret every pipeline step reads too."""
    cfg = settings.pipeline
    secret = [
        {"name": key, "valueFrom": {"secretKeyRef": {"name": cfg.mlflow_secret, "key": key}}}
        for key in cfg.mlflow_secret_keys
    ]
    return [*secret, {"name": "TF_CPP_MIN_LOG_LEVEL", "value": "2"}]


def _resources(settings: Settings) -> dict[str, Any]:
    cfg, gpus = settings.pipeline, settings.trainjob.gpus_per_worker
    requests = {"cpu": cfg.cpu_request, "memory": cfg.memory_request}
    limits: dict[str, Any] = {"memory": cfg.memory_request}
    if gpus:
        limits[cfg.gpu_accelerator] = gpus
    return {"requests": requests, "limits": limits}


def pod_template(settings: Settings, command: list[str], labels: dict[str, str]) -> dict:
    """One worker's pod: the project's image running the training command on the claim."""
    job, pipe = settings.trainjob, settings.pipeline
    container = {
        "name": CONTAINER,
        "image": image(settings),
        "command": command,
        "env": _env(settings),
        "resources": _resources(settings),
        "volumeMounts": [{"name": VOLUME, "mountPath": job.mount_path}],
        "securityContext": {"allowPrivilegeEscalation": False},
    }
    spec: dict[str, Any] = {
        "containers": [container],
        "volumes": [{"name": VOLUME, "persistentVolumeClaim": {"claimName": job.volume_claim}}],
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "fsGroup": 1000},
    }
    if job.gpus_per_worker:
        spec["nodeSelector"] = dict(pipe.gpu_node_selector)
        spec["tolerations"] = [dict(t) for t in pipe.gpu_tolerations]
    return {"metadata": {"labels": labels}, "spec": spec}


def manifest(settings: Settings, family: str, name: str, workdir: str, params: str) -> dict:
    """The TFJob: `training.workers` Worker replicas, each training `family` on `workdir`
    (a path on the claim) with the settings file `params` (also on the claim)."""
    workers, job = settings.training.workers, settings.trainjob
    if workers < 2:
        raise ConfigError("a TFJob needs training.workers >= 2", "one worker trains in the step")
    labels = {"app.kubernetes.io/part-of": "artflow", "artflow/family": family, "artflow/job": name}
    command = distributed.worker_command(family, workdir, params)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": name, "namespace": job.namespace, "labels": labels},
        "spec": {
            "runPolicy": {
                "cleanPodPolicy": "Running",  # stop what still runs once the chief is done
                "activeDeadlineSeconds": job.timeout_s,
                "backoffLimit": job.backoff_limit,
            },
            "tfReplicaSpecs": {
                "Worker": {
                    "replicas": workers,
                    # A restarted worker cannot rejoin a collective mid-step; the whole
                    # group restarts from the failed step's pod.
                    "restartPolicy": "OnFailure",
                    "template": pod_template(settings, command, labels),
                }
            },
        },
    }


def job_state(obj: dict[str, Any]) -> str:
    """ "Succeeded", "Failed" or "Running" from a TFJob's status conditions (the last true)."""
    conditions = (obj.get("status") or {}).get("conditions") or []
    for condition in reversed(conditions):
        if condition.get("status") == "True" and condition.get("type") in ("Succeeded", "Failed"):
            return str(condition["type"])
    return "Running"


def wait(get: Callable[[], dict[str, Any]], timeout_s: float, poll_s: float) -> dict[str, Any]:
    """Poll `get` (the TFJob as the API returns it) until it succeeds; raise if it fails or
    outlives `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        obj = get()
        state = job_state(obj)
        if state == "Succeeded":
            return obj
        if state == "Failed":
            last = (obj.get("status") or {}).get("conditions", [{}])[-1]
            raise ModelError(
                f"TFJob {obj['metadata']['name']} failed: {last.get('message', 'no message')}",
                f"kubectl -n {obj['metadata'].get('namespace')} logs -l "
                f"training.kubeflow.org/job-name={obj['metadata']['name']}",
            )
        if time.monotonic() > deadline:
            raise ModelError(f"TFJob {obj['metadata']['name']} still running after {timeout_s} s")
        time.sleep(poll_s)


def stage(settings: Settings, wd: Workdir, family: str, name: str) -> tuple[Workdir, Path]:
    """The data version and the workers' settings on the claim (mounted here too)."""
    root = Path(settings.trainjob.mount_path)
    if not root.is_dir():
        raise ConfigError(
            f"{root} is not mounted in this pod",
            f"mount the claim {settings.trainjob.volume_claim!r} at trainjob.mount_path",
        )
    dest = Workdir.at(root / name / "workdir")
    shutil.copytree(wd.root, dest.root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("models"))
    params = distributed.settings_file(settings, dest.root / "settings.yaml")
    return dest, params


def _collect(remote: Workdir, wd: Workdir, family: str) -> dict[str, Any]:
    """The chief's result and its reports and metrics, back into the launching step's workdir."""
    for part in ("reports", "metrics"):
        if (remote.root / part).is_dir():
            shutil.copytree(remote.root / part, wd.root / part, dirs_exist_ok=True)
    return json.loads((distributed.out_dir(remote, family) / "result.json").read_text())


def train_tfjob(settings: Settings, wd: Workdir, family: str = "cnn", api: Any = None) -> dict:
    """Launch the TFJob for `family`, wait for it and return the chief's result."""
    from artflow.classify.train import run_key

    name = job_name(family, f"{run_key(settings, wd, family)}-{int(time.time()) % 100000}")
    remote, params = stage(settings, wd, family, name)
    body = manifest(settings, family, name, str(remote.root), str(params))
    api = api or _custom_objects_api()
    namespace = settings.trainjob.namespace
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    log.info("TFJob %s/%s: %d workers", namespace, name, settings.training.workers)

    def get() -> dict[str, Any]:
        return api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)

    wait(get, settings.trainjob.timeout_s, settings.trainjob.poll_s)
    return _collect(remote, wd, family)


def _custom_objects_api() -> Any:
    """The Kubernetes API as this pod's service account (it needs create/get on tfjobs)."""
    from kubernetes import client, config

    config.load_incluster_config()
    return client.CustomObjectsApi()
