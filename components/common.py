"""Component decorators and task resources, both from `settings.pipeline`."""

import functools
from typing import Any

from kfp import dsl

from artflow.config import load_settings

PIPELINE = load_settings().pipeline  # ARTFLOW_PROFILE picks the overlay at compile time

# CPU steps run in the project's image; training steps in its CUDA variant.
cpu_component = functools.partial(
    dsl.component, base_image=PIPELINE.base_image, install_kfp_package=False
)
gpu_component = functools.partial(
    dsl.component, base_image=PIPELINE.gpu_image, install_kfp_package=False
)


def resources(task: Any, gpu: bool = False) -> Any:
    """CPU/memory requests for every task; one `nvidia.com/gpu` for training tasks."""
    task.set_cpu_request(PIPELINE.cpu_request).set_memory_request(PIPELINE.memory_request)
    if gpu and PIPELINE.gpu_limit > 0:
        task.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(PIPELINE.gpu_limit)
    return task
