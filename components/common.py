"""The component decorator, and each task's image, resources and Kubernetes settings.

Nothing here reads settings at import time: the pipeline builders pass `settings.pipeline`
to `configure` when a pipeline is compiled.
"""

import functools
from typing import Any

from kfp import dsl, kubernetes

from artflow.config import PipelineCfg
from artflow.registry.tracking import PIPELINE_RUN_ENV

# The image is set per task by `configure` (from params.yaml); this is only kfp's default.
component = functools.partial(dsl.component, base_image="python:3.11", install_kfp_package=False)


def configure(task: Any, cfg: PipelineCfg, gpu: bool = False, cache: bool = True) -> Any:
    """Image, CPU/memory requests, the MLflow Secret as env vars; GPU steps also get the
    accelerator, the GPU pool's node selector and tolerations. `cache`: Kubeflow's caching."""
    task.set_container_image(cfg.gpu_image if gpu else cfg.base_image)
    task.set_cpu_request(cfg.cpu_request).set_memory_request(cfg.memory_request)
    task.set_caching_options(cache)
    # Every MLflow run a step opens is tagged with the Kubeflow run it belongs to (the pod's
    # `pipeline/runid` label, read by artflow.registry.tracking.env_tags), so retrain.yml finds
    # the gate decision of its own run, never another pipeline's (infra/scripts/gate_decision.py).
    kubernetes.use_field_path_as_env(task, PIPELINE_RUN_ENV, "metadata.labels['pipeline/runid']")
    if cfg.mlflow_secret and cfg.mlflow_secret_keys:
        keys = {key: key for key in cfg.mlflow_secret_keys}
        kubernetes.use_secret_as_env(task, secret_name=cfg.mlflow_secret, secret_key_to_env=keys)
    if gpu and cfg.gpu_limit > 0:
        task.set_accelerator_type(cfg.gpu_accelerator).set_accelerator_limit(cfg.gpu_limit)
        for label, value in cfg.gpu_node_selector.items():
            kubernetes.add_node_selector(task, label_key=label, label_value=value)
        for toleration in cfg.gpu_tolerations:
            kubernetes.add_toleration(task, **toleration)
    return task
