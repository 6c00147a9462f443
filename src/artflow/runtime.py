"""TensorFlow runtime choices made once per process: threads, mixed precision, strategy.

On CPU (tests, demo) this is a no-op strategy in float32; on GPUs it turns on mixed
precision and MirroredStrategy (or MultiWorkerMirroredStrategy on a cluster).
"""

from __future__ import annotations

from typing import Any

from artflow.config import TrainingCfg


def gpus() -> list[Any]:
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


def configure(cfg: TrainingCfg, seed: int | None = None) -> Any:
    """Apply mixed precision and return the tf.distribute strategy to build models under."""
    import keras
    import tensorflow as tf

    if seed is not None:
        keras.utils.set_random_seed(seed)
    have_gpu = bool(gpus())
    for gpu in gpus():
        tf.config.experimental.set_memory_growth(gpu, True)
    mixed = cfg.mixed_precision == "on" or (cfg.mixed_precision == "auto" and have_gpu)
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    mode = cfg.distribute
    if mode == "auto":
        mode = "mirrored" if len(gpus()) > 1 else "none"
    if mode == "mirrored":
        return tf.distribute.MirroredStrategy()
    if mode == "multiworker":
        # TF_CONFIG comes from the cluster (Kubeflow TFJob / training operator)
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def use_xla(cfg: TrainingCfg) -> bool:
    """XLA for hand-written training steps: on a GPU it fuses the many small ops of a custom
    step; on CPU it measured within noise (docs/style.md), so `auto` keeps it for GPUs."""
    return cfg.xla == "on" or (cfg.xla == "auto" and bool(gpus()))


def replica_mean(strategy: Any, per_replica: Any) -> Any:
    """Mean over replicas of a per-replica scalar (a no-op reduce on one device)."""
    import tensorflow as tf

    return strategy.reduce(tf.distribute.ReduceOp.MEAN, per_replica, axis=None)
