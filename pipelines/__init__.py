"""Kubeflow pipelines over the components: the DAGs, and one runner per orchestrator.

training.py, style.py, retrain.py   the pipeline definitions (what runs after what)
local_runner.py                     kfp.local SubprocessRunner on this machine
kubeflow_runner.py                  compile to YAML (IR), submit and schedule on a cluster
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from artflow.errors import ConfigError

PIPELINES = {
    "training": ("pipelines.training", "training_pipeline"),
    "style": ("pipelines.style", "style_pipeline"),
    "retrain": ("pipelines.retrain", "retrain_pipeline"),
}


def load(name: str) -> Callable[..., Any]:
    """The pipeline function called `name`; a clear error for unknown names."""
    if name not in PIPELINES:
        raise ConfigError(f"unknown pipeline {name!r}", f"choose one of: {', '.join(PIPELINES)}")
    module, attr = PIPELINES[name]
    return getattr(importlib.import_module(module), attr)
