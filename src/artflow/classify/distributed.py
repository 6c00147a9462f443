"""Train a classifier on several workers: MultiWorkerMirroredStrategy with a custom step.

Keras 3's `model.fit` fails under MultiWorkerMirroredStrategy (a `PerReplica` ValueError,
https://github.com/keras-team/keras/issues/20585; docs/classifier.md), so every worker runs
the loop below:
`strategy.run` of one step per replica, gradients summed across workers by the optimizer,
the loss divided by the global batch, so the update equals one worker's on the whole batch.

Every worker runs the same function (TF_CONFIG names its task, `artflow.runtime.task`). Every
worker reads the whole data pipeline (seeded, so all see the same batches) and keeps its share
of each batch. Only the chief opens the MLflow run, logs the epochs, writes the best
checkpoint, evaluates and registers; the others train and stop. Every worker writes the digest
of its final weights (`worker-<i>.json`), and the workers check they agree before the chief
registers anything.

`launch_local` runs N workers as processes on 127.0.0.1; on a cluster the Training
Operator's TFJob runs one pod per worker (artflow.classify.trainjob).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from artflow import runtime
from artflow.classify.train import (
    _merge,
    conclude,
    family_inputs,
    load_data,
    open_run,
    run_key,
    write_metrics,
)
from artflow.config import Settings
from artflow.data.layout import Workdir
from artflow.errors import ConfigError, ModelError

log = logging.getLogger(__name__)

FAMILIES = ("cnn", "resnet50")  # the classifier families with a multi-worker schedule


@dataclass
class History:
    """What a Keras History holds (`.history`), for the learning curves and the report."""

    history: dict[str, list[float]] = field(default_factory=dict)

    def add(self, **metrics: float) -> None:
        for key, value in metrics.items():
            self.history.setdefault(key, []).append(float(value))


def phases(settings: Settings, family: str, n_classes: int) -> Any:
    """(name, epochs, patience, compiled model) per training phase, built by the family's own
    builder: the CNN has one phase, ResNet50 its two (trainable layers set per phase)."""
    if family == "cnn":
        from artflow.classify.cnn import build_cnn

        cfg = settings.cnn
        model = build_cnn(
            n_classes,
            settings.images.size,
            cfg.dense_units,
            cfg.dropout,
            cfg.learning_rate,
            cfg.dense_layers,
        )
        yield "cnn", cfg.epochs, cfg.early_stopping_patience, model
        return
    if family == "resnet50":
        from artflow.classify.resnet import build_resnet50, resnet_phases

        rcfg = settings.resnet
        model = build_resnet50(n_classes, rcfg.image_size, rcfg.weights, rcfg.pooling)
        for phase, epochs, _ in resnet_phases(model, rcfg):
            yield f"resnet50_phase{phase}", epochs, rcfg.early_stopping_patience, model
        return
    raise ConfigError(
        f"multi-worker training has no schedule for family {family!r}",
        f"use one of: {', '.join(FAMILIES)}, or training.workers: 1",
    )


class Steps:
    """The distributed train and eval steps of one compiled model.

    Each returns [loss sum, correct, examples] summed over all replicas of all workers, so
    every worker sees the same epoch numbers and takes the same early-stopping decision.
    """

    def __init__(
        self,
        strategy: Any,
        model: Any,
        class_weight: dict[int, float],
        specs: tuple[Any, Any],
    ) -> None:
        import tensorflow as tf

        self.strategy, self.model = strategy, model
        self.weights = tf.constant([class_weight[i] for i in range(len(class_weight))], tf.float32)
        # Traced once each, for any batch size (`specs`: the train and val batches' own, batch
        # dimension unknown; augmented batches are float16 under mixed precision): the short
        # last batch would otherwise trace a second step, which under
        # MultiWorkerMirroredStrategy costs seconds on every worker.
        self.train = tf.function(self._train, input_signature=list(specs[0]))
        self.eval = tf.function(self._eval, input_signature=list(specs[1]))

    def _sums(self, y: Any, probs: Any, per_example: Any) -> Any:
        import tensorflow as tf

        hit = tf.cast(tf.equal(tf.argmax(probs, 1), tf.argmax(y, 1)), tf.float32)
        n = tf.cast(tf.shape(y)[0], tf.float32)
        return tf.stack([tf.reduce_sum(per_example), tf.reduce_sum(hit), n])

    def _replica_train(self, x: Any, y: Any) -> Any:
        import keras
        import tensorflow as tf

        model, ctx = self.model, tf.distribute.get_replica_context()
        # The global batch's size (the last batch is short; a replica may get none of it):
        # the sum of weighted losses over it is what Keras' fit averages on one worker.
        global_n = ctx.all_reduce(tf.distribute.ReduceOp.SUM, tf.cast(tf.shape(y)[0], tf.float32))
        with tf.GradientTape() as tape:
            probs = model(x, training=True)
            per_example = keras.losses.categorical_crossentropy(y, probs)
            per_example *= tf.gather(self.weights, tf.argmax(y, 1))
            loss = tf.math.divide_no_nan(tf.reduce_sum(per_example), global_n)
            scaled = model.optimizer.scale_loss(loss)  # mixed precision's loss scale
        grads = tape.gradient(scaled, model.trainable_variables)
        model.optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return self._sums(y, probs, per_example)

    def _replica_eval(self, x: Any, y: Any) -> Any:
        import keras

        probs = self.model(x, training=False)
        return self._sums(y, probs, keras.losses.categorical_crossentropy(y, probs))

    def _train(self, x: Any, y: Any) -> Any:
        return self._reduce(self.strategy.run(self._replica_train, args=(x, y)))

    def _eval(self, x: Any, y: Any) -> Any:
        return self._reduce(self.strategy.run(self._replica_eval, args=(x, y)))

    def _reduce(self, per_replica: Any) -> Any:
        import tensorflow as tf

        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    def sync_statistics(self) -> None:
        """Average the model's non-trainable float variables over the workers.

        Keras 3 updates BatchNormalization's moving mean and variance per replica, from that
        replica's share of each batch (their aggregation is "none"), so the workers' copies
        drift apart; their mean, taken every epoch before validation, is what every worker
        keeps. (The CNN has none; ResNet50's head has two BatchNorm layers.)
        """
        import tensorflow as tf

        variables = [v for v in self.model.non_trainable_variables if "float" in str(v.dtype)]
        if not variables or self.strategy.num_replicas_in_sync == 1:
            return

        @tf.function
        def means() -> Any:
            def replica() -> Any:
                ctx = tf.distribute.get_replica_context()
                local = [tf.identity(v.value) for v in variables]  # this replica's copies
                return ctx.all_reduce(tf.distribute.ReduceOp.MEAN, local)

            return self.strategy.run(replica)

        for variable, mean in zip(variables, means(), strict=True):
            variable.assign(self.strategy.experimental_local_results(mean)[0])

    def epoch(self, dataset: Any, training: bool) -> tuple[float, float]:
        """(mean loss, accuracy) of one pass over a distributed dataset."""
        step = self.train if training else self.eval
        total = np.zeros(3)
        for x, y in dataset:
            total += np.asarray(step(x, y), dtype="float64")
        n = max(total[2], 1.0)
        return total[0] / n, total[1] / n


def distribute(strategy: Any, dataset: Any) -> Any:
    """Shard by data: every worker runs the same seeded pipeline (decode, shuffle, augment)
    and keeps its part of each global batch; there are no files to shard by."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(dataset.with_options(options))


def fit_phase(
    steps: Steps,
    train: Any,
    val: Any,
    epochs: int,
    patience: int,
    checkpoint: Path | None,
    on_epoch: Any = None,
) -> History:
    """Epochs with early stopping on val_loss; ends with the best epoch's weights (on every
    worker: the decision is taken from numbers all workers share). The chief passes
    `checkpoint` (the best model so far is saved there) and `on_epoch` (MLflow)."""
    history, best, best_weights, waited = History(), np.inf, None, 0
    for epoch in range(epochs):
        start = time.perf_counter()
        loss, acc = steps.epoch(train, training=True)
        steps.sync_statistics()
        val_loss, val_acc = steps.epoch(val, training=False)
        history.add(loss=loss, accuracy=acc, val_loss=val_loss, val_accuracy=val_acc)
        log.info(
            "epoch %d/%d: loss %.4f, accuracy %.3f, val_loss %.4f, val_accuracy %.3f (%.1f s)",
            *(epoch + 1, epochs, loss, acc, val_loss, val_acc, time.perf_counter() - start),
        )
        if on_epoch is not None:
            on_epoch(epoch, {k: v[-1] for k, v in history.history.items()})
        if val_loss < best:
            best, best_weights, waited = val_loss, steps.model.get_weights(), 0
            if checkpoint is not None:
                save_plain(steps.model, checkpoint)
        else:
            waited += 1
            if waited >= patience:  # as Keras' EarlyStopping counts
                break
    if best_weights is not None:
        steps.model.set_weights(best_weights)
    return history


def weights_digest(model: Any) -> str:
    """SHA-256 over every weight array: equal digests mean bit-identical weights."""
    digest = hashlib.sha256()
    for array in model.get_weights():
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def check_agreement(strategy: Any, digest: str) -> None:
    """Every worker compares its digest with the others' (an all-gather of a 48-bit prefix,
    exact in float64); a worker that diverged fails them all."""
    import tensorflow as tf

    value = tf.constant([float(int(digest[:12], 16))], tf.float64)

    @tf.function
    def gather() -> Any:
        return strategy.gather(strategy.run(lambda: tf.identity(value)), axis=0)

    seen = np.asarray(gather())
    if not np.all(seen == seen[0]):
        raise ModelError(
            f"the workers ended with different weights (this worker: {digest[:12]})",
            "a bug in the distributed step; train with training.workers: 1 meanwhile",
        )


def barrier(strategy: Any) -> None:
    """Wait for every worker (one all-reduce). A worker that exits while the chief still works
    reads as a crash to TensorFlow's coordination service, so the others wait for the chief."""
    import tensorflow as tf

    @tf.function
    def ones() -> Any:
        per_replica = strategy.run(lambda: tf.constant(1.0))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    ones()


def out_dir(wd: Workdir, family: str) -> Path:
    return wd.models / family / "multiworker"


def write_result(wd: Workdir, family: str, result: dict[str, Any]) -> Path:
    """The chief's whole result (what `train_classifier` returns) for whoever launched it."""
    path = out_dir(wd, family) / "result.json"
    path.write_text(json.dumps(result, indent=2, default=_plain) + "\n")
    return path


def _plain(value: Any) -> Any:
    return value.tolist() if hasattr(value, "tolist") else str(value)


def save_plain(model: Any, path: Path) -> None:
    """Save a copy made outside the strategy: saving the distributed model itself creates
    variables under MultiWorkerMirroredStrategy, a collective only the chief would join."""
    from artflow.classify.io import inference_copy

    inference_copy(model).save(path)


def built_phases(strategy: Any, settings: Settings, family: str, n_classes: int) -> Any:
    """`phases`, each model and optimizer built under the strategy (their variables mirrored
    on every worker, initialised from the chief's); training itself runs outside the scope,
    so that the chief's checkpoints and evaluation create ordinary variables."""
    schedule = phases(settings, family, n_classes)
    while True:
        with strategy.scope():
            item = next(schedule, None)
            if item is not None:
                item[3].optimizer.build(item[3].trainable_variables)
        if item is None:
            return
        yield item


def fit(
    strategy: Any, settings: Settings, data: dict[str, Any], family: str, chief: bool, wd: Workdir
) -> tuple[Any, list[History]]:
    """Every phase of `family` on this worker; the chief also checkpoints and logs epochs
    (to the active MLflow run). Returns the model (best weights) and each phase's history."""
    import mlflow

    from artflow.registry import tracking

    histories: list[History] = []
    done, model = 0, None
    train, val = (distribute(strategy, data[split].dataset) for split in ("train", "val"))
    for name, epochs, patience, model in built_phases(
        strategy, settings, family, len(data["labels"])
    ):
        steps = Steps(strategy, model, data["class_weight"], (train.element_spec, val.element_spec))
        checkpoint, on_epoch = None, None
        if chief:
            (wd.models / name).mkdir(parents=True, exist_ok=True)
            checkpoint = wd.models / name / "best.keras"

            def on_epoch(epoch: int, logs: dict[str, float], offset: int = done) -> None:
                metrics = {f"epoch_{k}": v for k, v in logs.items() if np.isfinite(v)}
                tracking._retry(lambda: mlflow.log_metrics(metrics, step=epoch + offset))

        history = fit_phase(steps, train, val, epochs, patience, checkpoint, on_epoch)
        histories.append(history)
        done += len(history.history.get("loss", []))
    if not histories:
        raise ConfigError("the family's training schedule has no epochs", "set its epochs > 0")
    return model, histories


def train_multiworker(
    settings: Settings, wd: Workdir, family: str = "cnn", register: bool = True, verbose: int = 2
) -> dict[str, Any]:
    """Train on every worker TF_CONFIG names (one without it); the chief tracks and registers.

    Returns, on the chief, what `train_classifier` returns; on the others their digest.
    """
    from artflow.classify.io import inference_copy

    me = runtime.task()
    if settings.training.workers > 1 and me.workers != settings.training.workers:
        raise ConfigError(
            f"TF_CONFIG names {me.workers} workers, training.workers says "
            f"{settings.training.workers}",
            "launch as many workers as the settings say (artflow train classifier --workers N)",
        )
    training = settings.training
    if me.workers > 1:  # TF_CONFIG names other workers: whatever the setting, train with them
        training = training.model_copy(update={"distribute": "multiworker"})
    strategy = runtime.configure(training, settings.seed)  # before any other TF op
    image_size, batch_size = family_inputs(settings, family)
    data = load_data(settings, wd, image_size, batch_size)
    data["run_key"] = run_key(settings, wd, family)
    log.info("worker %d of %d%s", me.index, me.workers, " (chief)" if me.chief else "")
    start = time.perf_counter()
    if not me.chief:
        model, _ = fit(strategy, settings, data, family, False, wd)
        report = _finish_worker(strategy, model, wd, family, me)
        barrier(strategy)  # until the chief has registered: then every worker stops together
        log.info("worker %d done after %.1f s", me.index, time.perf_counter() - start)
        return {**report, "metrics": {}}
    extra = {"workers": me.workers, "global_batch_size": batch_size}
    with open_run(settings, wd, family, data, image_size, strategy, **extra) as run:
        model, histories = fit(strategy, settings, data, family, True, wd)
        seconds = time.perf_counter() - start
        digest = _finish_worker(strategy, model, wd, family, me)["weights_sha256"]
        plain = inference_copy(model)  # outside the strategy: evaluating needs no other worker
        result = conclude(
            plain, histories, settings, wd, family, data, image_size, seconds, register
        )
        import mlflow

        mlflow.set_tag("artflow.weights_sha256", digest)
        result.update(run_id=run.info.run_id, workers=me.workers, weights_sha256=digest)
        result["history"] = _merge(histories)
    write_metrics(wd, family, result)
    write_result(wd, family, result)
    barrier(strategy)
    log.info("chief done after %.1f s", time.perf_counter() - start)
    return result


def _finish_worker(strategy: Any, model: Any, wd: Workdir, family: str, me: runtime.Task) -> dict:
    digest = weights_digest(model)
    check_agreement(strategy, digest)
    report = {"task": me.kind, "index": me.index, "workers": me.workers, "weights_sha256": digest}
    out = out_dir(wd, family)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"worker-{me.index}.json").write_text(json.dumps(report, indent=2) + "\n")
    return {"family": family, "chief": me.chief, **report}


# ---------------------------------------------------------------- local workers


def free_ports(n: int) -> list[int]:
    """n ports free right now on 127.0.0.1 (held together, so they differ)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def tf_configs(workers: int, host: str = "127.0.0.1") -> list[dict[str, Any]]:
    """One TF_CONFIG per worker of a local cluster; worker 0 is the chief."""
    cluster = {"worker": [f"{host}:{port}" for port in free_ports(workers)]}
    return [{"cluster": cluster, "task": {"type": "worker", "index": i}} for i in range(workers)]


def settings_file(settings: Settings, path: Path) -> Path:
    """The exact settings the launcher holds, as a params file for its workers: under
    MultiWorkerMirroredStrategy, `training.workers` kept (the run records it; a process with
    TF_CONFIG is a worker, never a launcher)."""
    raw = settings.model_dump(by_alias=True)
    raw["training"]["distribute"] = "multiworker"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def worker_command(family: str, workdir: Path | str, params: Path | str) -> list[str]:
    """What every worker runs: the CLI's training command with the launcher's settings."""
    return [
        "artflow",
        "train",
        "classifier",
        "--family",
        family,
        "--workdir",
        str(workdir),
        "--params",
        str(params),
    ]


def _executable(command: Sequence[str]) -> list[str]:
    """The venv's own `artflow` when the command names it (PATH may not include the venv)."""
    if "/" in command[0]:
        return list(command)
    local = Path(sys.executable).with_name(command[0])
    return [str(local) if local.is_file() else command[0], *command[1:]]


def launch_local(
    command: Sequence[str],
    workers: int,
    log_dir: Path,
    timeout_s: float | None = None,
    env: dict[str, str] | None = None,
) -> list[Path]:
    """Run `command` as `workers` processes on 127.0.0.1, each with its TF_CONFIG; wait.

    One failing worker stops the others (they would wait for it forever in the next
    collective) and raises with the end of its log. Returns the workers' log files.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    # The workers share this machine's cores: TensorFlow's default pools (one thread per core
    # each, in every worker) would oversubscribe them.
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    pools = {"TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": "1"}
    base = {**pools, **os.environ, **(env or {})}
    base.pop("ARTFLOW_PROFILE", None)  # the workers' settings file is complete
    procs, logs = [], []
    for i, config in enumerate(tf_configs(workers)):
        path = log_dir / f"worker-{i}.log"
        with path.open("wb") as out:
            procs.append(
                subprocess.Popen(
                    _executable(command),
                    env={**base, "TF_CONFIG": json.dumps(config)},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
        logs.append(path)
    _wait(procs, logs, timeout_s)
    return logs


def _wait(procs: list[subprocess.Popen], logs: list[Path], timeout_s: float | None) -> None:
    start = time.monotonic()
    deadline = None if timeout_s is None else start + timeout_s
    running = set(range(len(procs)))
    try:
        while None in [p.poll() for p in procs]:  # every one polled (any() would stop early)
            for i in [i for i in running if procs[i].returncode is not None]:
                running.discard(i)
                log.info("worker %d exited after %.1f s", i, time.monotonic() - start)
            failed = [i for i, p in enumerate(procs) if p.returncode not in (None, 0)]
            if failed:
                raise _worker_failed(failed[0], procs[failed[0]].returncode, logs)
            if deadline is not None and time.monotonic() > deadline:
                raise ModelError(
                    f"the workers did not finish within {timeout_s:.0f} s",
                    f"see their logs in {logs[0].parent}",
                )
            time.sleep(0.5)
        failed = [i for i, p in enumerate(procs) if p.returncode != 0]
        if failed:
            raise _worker_failed(failed[0], procs[failed[0]].returncode, logs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def _worker_failed(index: int, code: int, logs: list[Path]) -> ModelError:
    tail = logs[index].read_text(errors="replace").strip().splitlines()[-15:]
    return ModelError(
        f"worker {index} exited with {code}:\n    " + "\n    ".join(tail),
        f"all workers' logs: {logs[index].parent}",
    )


def train_local_workers(
    settings: Settings,
    wd: Workdir,
    family: str = "cnn",
    workers: int | None = None,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """Train `family` on `workers` local processes (default `training.workers`); returns the
    chief's result (as `train_classifier` returns it) with every worker's weights digest."""
    n = workers or settings.training.workers
    out = out_dir(wd, family)
    params = settings_file(settings, out / "settings.yaml")
    for old in [*out.glob("worker-*.json"), out / "result.json"]:
        old.unlink(missing_ok=True)  # an earlier run's must not pass for this one's
    launch_local(worker_command(family, wd.root, params), n, out / "logs", timeout_s)
    result = json.loads((out / "result.json").read_text())
    digests = [json.loads((out / f"worker-{i}.json").read_text()) for i in range(n)]
    result["worker_weights_sha256"] = [d["weights_sha256"] for d in digests]
    result["workers"] = n
    return result


def train_on_workers(
    settings: Settings, wd: Workdir, family: str = "cnn", register: bool = True
) -> dict[str, Any]:
    """`training.workers` workers: a TFJob inside a cluster, local processes elsewhere."""
    if not register:
        raise ConfigError(
            "multi-worker training always registers its model (the chief does)",
            "train with training.workers: 1 to train without registering",
        )
    from artflow.classify import trainjob

    if trainjob.in_cluster():
        return trainjob.train_tfjob(settings, wd, family)
    return train_local_workers(settings, wd, family, timeout_s=settings.trainjob.timeout_s)
