"""TensorFlow runtime choices made once per process: threads, mixed precision, strategy.

On CPU (tests, demo) this is a no-op strategy in float32; on GPUs it turns on mixed
precision and MirroredStrategy. `multiworker` is MultiWorkerMirroredStrategy across the
workers TF_CONFIG names (a TFJob's pods, or local processes: artflow.classify.distributed).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from artflow.config import TrainingCfg
from artflow.errors import ConfigError


def gpus() -> list[Any]:
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


def configure(cfg: TrainingCfg, seed: int | None = None) -> Any:
    """Apply mixed precision and return the tf.distribute strategy to build models under."""
    import keras
    import tensorflow as tf

    # MultiWorkerMirroredStrategy configures the collective ops of the whole process: it must
    # exist before TensorFlow runs anything else, so it is made first.
    multiworker = None
    if cfg.distribute == "multiworker":
        _coordination(HEARTBEAT_TIMEOUT_S)
        multiworker = tf.distribute.MultiWorkerMirroredStrategy()
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
    if multiworker is not None:
        return multiworker
    return tf.distribute.get_strategy()


@dataclass(frozen=True)
class Task:
    """This process's place among the workers TF_CONFIG names (one worker without it)."""

    kind: str = "worker"
    index: int = 0
    workers: int = 1

    @property
    def chief(self) -> bool:
        """The chief: a `chief` task, else worker 0 (TF's convention when there is none)."""
        return self.kind == "chief" or (self.kind == "worker" and self.index == 0)


def task() -> Task:
    """The task TF_CONFIG gives this process (the Training Operator sets it in every pod)."""
    raw = os.environ.get("TF_CONFIG", "")
    if not raw.strip():
        return Task()
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"TF_CONFIG is not JSON ({exc})", "unset it or fix it") from None
    cluster = config.get("cluster", {})
    me = config.get("task", {})
    workers = sum(len(cluster.get(k, [])) for k in ("chief", "worker"))
    return Task(str(me.get("type", "worker")), int(me.get("index", 0)), max(workers, 1))


# How long a worker may go unheard before the others give up on it. TensorFlow's 10 s default
# declared a busy chief dead on 2 shared cores (the whole group then fails); a crashed pod is
# still noticed within this bound.
HEARTBEAT_TIMEOUT_S = 120


def _coordination(heartbeat_s: int) -> None:
    """Start TensorFlow's coordination service as MultiWorkerMirroredStrategy would (it skips
    its own when one is configured), with a longer heartbeat timeout. Private API: the
    strategy has no option for it (tensorflow/python/distribute/collective_all_reduce_strategy
    .py configures the service with the defaults)."""
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.distribute import multi_worker_util
    from tensorflow.python.distribute.cluster_resolver import TFConfigClusterResolver
    from tensorflow.python.eager import context

    spec = TFConfigClusterResolver().cluster_spec()
    jobs = [j for j in ("chief", "worker") if j in spec.jobs]
    if not jobs or context.context().coordination_service is not None:
        return  # one local worker: no service; or one already runs
    coordinated = [
        coordination_config_pb2.CoordinatedJob(name=j, num_tasks=spec.num_tasks(j)) for j in jobs
    ]
    context.context().configure_coordination_service(
        service_type="standalone",
        service_leader=multi_worker_util.coordination_leader(spec),
        heartbeat_timeout_in_ms=heartbeat_s * 1000,
        coordinated_jobs=coordinated,
    )


def use_xla(cfg: TrainingCfg) -> bool:
    """XLA for hand-written training steps: on a GPU it fuses the many small ops of a custom
    step; on CPU it measured within noise (docs/style.md), so `auto` keeps it for GPUs."""
    return cfg.xla == "on" or (cfg.xla == "auto" and bool(gpus()))


def replica_mean(strategy: Any, per_replica: Any) -> Any:
    """Mean over replicas of a per-replica scalar (a no-op reduce on one device)."""
    import tensorflow as tf

    return strategy.reduce(tf.distribute.ReduceOp.MEAN, per_replica, axis=None)
