"""Kubeflow pipelines over the components: the DAGs, and one runner per orchestrator.

training.py, style.py, retrain.py   the pipeline definitions (what runs after what)
steps.py                            the pieces they share
images.py                           the immutable image reference every task runs
cache.py                            what the local runner checks beyond kfp's cache key
local_runner.py                     kfp.local SubprocessRunner on this machine
kubeflow_runner.py                  compile to YAML (IR), submit and schedule on a cluster
"""

from __future__ import annotations

import importlib
from typing import Any

from artflow.config import Settings
from artflow.errors import ConfigError

PIPELINES = {
    "training": "pipelines.training",
    "style": "pipelines.style",
    "retrain": "pipelines.retrain",
}


def load(name: str, settings: Settings | None = None, local: bool = False) -> Any:
    """Pipeline `name` built for `settings` (default: params.yaml), for kfp's local runner
    (`local`) or a cluster; a clear error for unknown names."""
    if name not in PIPELINES:
        raise ConfigError(f"unknown pipeline {name!r}", f"choose one of: {', '.join(PIPELINES)}")
    if settings is None:
        from artflow.config import load_settings

        settings = load_settings()
    return importlib.import_module(PIPELINES[name]).build(settings, local)
