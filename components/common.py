"""The component decorator, and each task's image, resources, retries, timeout, cache key and
Kubernetes settings.

Nothing here reads settings at import time: the pipeline builders pass what `configure` needs
when a pipeline is built.
"""

import functools
from dataclasses import dataclass
from typing import Any

from kfp import dsl, kubernetes

from artflow.config import PipelineCfg
from artflow.registry.tracking import PIPELINE_RUN_ENV

IDENTITY_MOUNT = "/etc/artflow/mlflow"  # the identity Secret's folder; its key `password`

# The image is set per task by `configure` (pipelines/images.py); this is only kfp's default.
component = functools.partial(dsl.component, base_image="python:3.11", install_kfp_package=False)


@dataclass(frozen=True)
class TaskSettings:
    """What one task asks for: its image, whether it trains on a GPU, whether it may be
    cached, its key's environment variable, its retries and its deadline."""

    image: str
    gpu: bool
    cache: bool
    env: dict[str, str]
    retries: int
    timeout_s: int
    identity: str | None = None  # the step's MLflow identity; None: the runner's environment
    identity_file: str = ""  # where the step reads its password (a mounted Secret's file)
    identity_secret: str = ""  # that Secret, on a cluster ("" locally)


def configure(task: Any, cfg: PipelineCfg, how: TaskSettings) -> Any:
    """Image, CPU/memory requests, the MLflow Secret as env vars, caching, retries with
    backoff, the deadline; GPU steps also get the accelerator, the GPU pool's node selector and
    tolerations."""
    task.set_container_image(how.image)
    task.set_cpu_request(cfg.cpu_request).set_memory_request(cfg.memory_request)
    task.set_caching_options(how.cache)
    for name, value in how.env.items():
        task.set_env_variable(name, value)
    if how.retries > 0:
        task.set_retry(
            how.retries,
            backoff_duration=f"{cfg.retry_backoff_s}s",
            backoff_factor=cfg.retry_backoff_factor,
            backoff_max_duration=f"{cfg.retry_backoff_max_s}s",
        )
    kubernetes.set_timeout(task, how.timeout_s)
    # Every MLflow run a step opens is tagged with the Kubeflow run it belongs to (the pod's
    # `pipeline/runid` label, read by artflow.registry.tracking.env_tags), so retrain.yml finds
    # the gate decision of its own run, never another pipeline's (infra/scripts/gate_decision.py).
    kubernetes.use_field_path_as_env(task, PIPELINE_RUN_ENV, "metadata.labels['pipeline/runid']")
    if cfg.mlflow_secret and cfg.mlflow_secret_keys:
        keys = {key: key for key in cfg.mlflow_secret_keys}
        kubernetes.use_secret_as_env(task, secret_name=cfg.mlflow_secret, secret_key_to_env=keys)
    if how.identity:
        _use_identity(task, how)
    if how.gpu:
        task.set_accelerator_type(cfg.gpu_accelerator).set_accelerator_limit(cfg.gpu_limit)
        for label, value in cfg.gpu_node_selector.items():
            kubernetes.add_node_selector(task, label_key=label, label_value=value)
        for toleration in cfg.gpu_tolerations:
            kubernetes.add_toleration(task, **toleration)
    return task


def _use_identity(task: Any, how: TaskSettings) -> None:
    """MLflow's own client variables (read by artflow.registry.tracking): the user name as a
    plain value, the password as a file (on a cluster the mounted Secret's), so it never sits
    in the pod spec."""
    if how.identity_secret:
        kubernetes.use_secret_as_volume(
            task, secret_name=how.identity_secret, mount_path=IDENTITY_MOUNT
        )
    task.set_env_variable("MLFLOW_TRACKING_USERNAME", how.identity)
    task.set_env_variable("MLFLOW_TRACKING_PASSWORD_FILE", how.identity_file)
