"""Train the artist classifier (custom CNN or ResNet50 transfer), tracked and registered.

One MLflow run per training: params, per-epoch metrics, plots, reports and the label map as
artifacts, lineage tags, and the model registered in `artflow-artist-classifier` as challenger.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from artflow import families, runtime
from artflow.classify.evaluate import EXPERIMENT, predict_split, score, write_report
from artflow.config import Settings
from artflow.data import tfdata
from artflow.data.layout import Workdir
from artflow.errors import ModelError
from artflow.registry import tracking


def make_mlflow_callback(prefix: str = "epoch_", offset: int = 0) -> Any:
    """A Keras callback logging every epoch's metrics to the active MLflow run.

    Prefixed (`epoch_val_accuracy`) so the run's final `val_accuracy` (the restored best
    weights, scored by `finalize`) is not mixed into the per-epoch history.

    Hand-written because mlflow.keras autolog also logs a model per run and patches fit globally;
    we only want the numbers, on the run we opened.
    """
    import keras
    import mlflow

    class MlflowEpochLogger(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            metrics = {f"{prefix}{k}": float(v) for k, v in (logs or {}).items()}
            metrics = {k: v for k, v in metrics.items() if np.isfinite(v)}
            tracking._retry(lambda: mlflow.log_metrics(metrics, step=epoch + offset))

    return MlflowEpochLogger()


def callbacks(
    wd: Workdir, name: str, patience: int, backup_key: str | None = None, epoch_offset: int = 0
) -> list[Any]:
    """Early stopping (best weights), TensorBoard, best checkpoint, MLflow; backup to resume."""
    import keras

    out = wd.models / name
    out.mkdir(parents=True, exist_ok=True)
    cbs = [
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=patience, restore_best_weights=True
        ),
        keras.callbacks.TensorBoard(log_dir=str(out / "tensorboard")),
        keras.callbacks.ModelCheckpoint(str(out / "best.keras"), save_best_only=True),
        make_mlflow_callback(offset=epoch_offset),
    ]
    if backup_key:
        # An interrupted fit resumes from its last finished epoch (Keras removes the backup on
        # success). Keyed by data + settings, so a changed run never restores a stale backup.
        cbs.append(keras.callbacks.BackupAndRestore(str(out / f"backup_{backup_key}")))
    return cbs


def run_key(settings: Settings, wd: Workdir, family: str) -> str:
    """Short hash of the data and the settings a training depends on."""
    dumped = settings.model_dump(by_alias=True)
    parts = [
        tracking.data_hash(split_files(wd)),
        family,
        json.dumps({s: dumped[s] for s in families.get(family).sections}, sort_keys=True),
        str(settings.seed),
    ]
    return hashlib.md5("|".join(parts).encode()).hexdigest()[:10]


def _merge(histories: list[Any]) -> dict[str, list[float]]:
    merged: dict[str, list[float]] = {}
    for history in histories:
        for key, values in history.history.items():
            merged.setdefault(key, []).extend(float(v) for v in values)
    return merged


def family_inputs(settings: Settings, family: str) -> tuple[int, int]:
    """(image_size, batch_size) of a classifier family."""
    declared = families.get(family)
    if declared.kind != "classifier":
        raise ModelError(
            f"{family!r} is not a classifier family",
            f"choose one of: {', '.join(families.names('classifier'))}",
        )
    return declared.image_size(settings), declared.batch_size(settings)


def load_data(settings: Settings, wd: Workdir, image_size: int, batch_size: int) -> dict[str, Any]:
    labels = tfdata.read_labels(wd)
    n = len(labels)
    train = tfdata.dataset(
        wd,
        "train",
        image_size,
        batch_size,
        n,
        training=True,
        augment=settings.augment,
        seed=settings.seed,
    )
    val = tfdata.dataset(wd, "val", image_size, batch_size, n, seed=settings.seed)
    tfdata.read_split(wd, "test")  # fail before training, not after, when the test split is missing
    return {
        "labels": labels,
        "train": train,
        "val": val,
        "class_weight": tfdata.read_class_weights(wd, n),
    }


def split_files(wd: Workdir) -> list[Path]:
    return [wd.split_csv(s) for s in tfdata.SPLITS] + [wd.labels]


def train_classifier(
    settings: Settings, wd: Workdir, family: str = "cnn", register: bool = True, verbose: int = 2
) -> dict[str, Any]:
    """Train, evaluate (val + test), log and register one classifier; returns run/model/metrics.

    `training.workers` > 1 launches that many workers (local processes, or a TFJob inside a
    cluster) and returns the chief's result. Each worker (TF_CONFIG names its task), and
    `training.distribute: multiworker`, trains with a custom step instead
    (artflow.classify.distributed): Keras 3's `fit` fails under MultiWorkerMirroredStrategy.
    """
    workers = runtime.task().workers
    if settings.training.workers > 1 and workers == 1:  # not yet a worker: launch them
        from artflow.classify.distributed import train_on_workers

        return train_on_workers(settings, wd, family, register=register)
    if settings.training.distribute == "multiworker" or workers > 1:
        from artflow.classify.distributed import train_multiworker

        return train_multiworker(settings, wd, family, register=register, verbose=verbose)
    image_size, batch_size = family_inputs(settings, family)
    data = load_data(settings, wd, image_size, batch_size)
    n = len(data["labels"])
    strategy = runtime.configure(settings.training, settings.seed)
    data["run_key"] = run_key(settings, wd, family)
    with open_run(settings, wd, family, data, image_size, strategy) as run:
        start = time.perf_counter()
        with strategy.scope():
            model, histories = families.get(family).fitter()(settings, wd, data, n, verbose)
        seconds = time.perf_counter() - start
        result = conclude(
            model, histories, settings, wd, family, data, image_size, seconds, register
        )
        result["run_id"] = run.info.run_id
    write_metrics(wd, family, result)
    return result


def open_run(
    settings: Settings,
    wd: Workdir,
    family: str,
    data: dict[str, Any],
    image_size: int,
    strategy: Any,
    **extra: Any,
) -> Any:
    """The training's MLflow run (a context manager): params, lineage tags, settings."""
    params = {
        "family": family,
        "image_size": image_size,
        "n_classes": len(data["labels"]),
        "n_train": len(data["train"].frame),
        "n_val": len(data["val"].frame),
        **families.get(family).mlflow_params(settings),
        **{f"augment.{k}": v for k, v in settings.augment.model_dump().items()},
        "seed": settings.seed,
        "strategy": type(strategy).__name__,
        **extra,
    }
    tags = {"artflow.family": family, "artflow.stage": "train"}
    return tracking.start_run(
        EXPERIMENT,
        f"train-{family}",
        settings,
        params=params,
        data_files=split_files(wd),
        tags=tags,
    )


def conclude(
    model: Any,
    histories: list[Any],
    settings: Settings,
    wd: Workdir,
    family: str,
    data: dict[str, Any],
    image_size: int,
    seconds: float,
    register: bool = True,
) -> dict[str, Any]:
    """Inside the active run, after the fit: learning curves, evaluation, registration.

    `histories` are Keras History objects (or anything with a `.history` dict of lists).
    """
    import mlflow

    from artflow import plots

    mlflow.log_metric("train_seconds", seconds)
    history = _merge(histories)
    phase_starts = np.cumsum([len(h.history.get("loss", [])) for h in histories])[:-1]
    out = wd.reports / "classifier" / family
    curves = plots.learning_curves(history, out / "learning_curves.png", list(phase_starts))
    plots.history_csv(history, out / "history.csv")  # `dvc plots show` (dvc.yaml)
    mlflow.log_artifact(str(curves), artifact_path="plots")
    result = finalize(
        model, settings, wd, family, data["labels"], image_size, out, register=register
    )
    result.update(epochs=len(history["loss"]), train_seconds=seconds)
    return result


def finalize(
    model: Any,
    settings: Settings,
    wd: Workdir,
    family: str,
    labels: list[str],
    image_size: int,
    out: Path,
    register: bool = True,
) -> dict[str, Any]:
    """Evaluate on val and test, log reports, register, and check the registered copy agrees.

    Runs inside the active MLflow run. Returns metrics plus model_name/version when registered.
    """
    import mlflow

    metrics: dict[str, float] = {}
    confusion: dict[str, list[list[int]]] = {}  # per split, rows = true labels
    test_probs = None
    for split in ("val", "test"):
        probs, data, shown = predict_split(model, wd, split, image_size, len(labels))
        result = score(data.labels, probs, labels)
        for path in write_report(out, split, result, labels, data.frame, shown):
            mlflow.log_artifact(str(path), artifact_path="evaluation")
        confusion[split] = result["confusion_matrix"]
        metrics[f"{split}_accuracy"] = result["accuracy"]
        metrics[f"{split}_macro_f1"] = result["macro_f1"]
        test_probs, test_frame, test_predicted = probs, data.frame, result["predicted"]
    mlflow.log_metrics(metrics)
    mlflow.log_dict(labels, "labels.json")
    output: dict[str, Any] = {
        "family": family,
        "metrics": metrics,
        "labels": list(labels),
        "confusion": confusion,
        "model_name": None,
        "test_predicted": test_predicted,  # in test CSV order, from the in-memory model
    }
    if register:
        from artflow.classify.io import load_classifier, register_classifier

        example = _input_example(wd, test_frame, image_size)
        reg = register_classifier(model, labels, image_size, family, input_example=example)
        # The registered copy must predict exactly what the trained model predicted.
        loaded = load_classifier(reg.uri)
        again, _, _ = predict_split(loaded.model, wd, "test", image_size, len(labels))
        agreement = float(np.mean(again.argmax(1) == test_probs.argmax(1)))
        mlflow.log_metric("registry_roundtrip_agreement", agreement)
        if agreement < 1.0:
            raise ModelError(
                f"registered {reg.uri} disagrees with the trained model on the test split"
            )
        output.update(
            model_name=reg.name,
            version=reg.version,
            model_uri=reg.uri,
            model_size_mb=loaded.size_mb,
        )
    return output


def _input_example(wd: Workdir, frame: Any, image_size: int) -> np.ndarray:
    """One real test image at the model's input size (float32 0..255), for the signature."""
    from artflow.classify.io import resize_batch
    from artflow.imageio import load_rgb

    image = load_rgb(wd.abs(frame["path"].iloc[0]))
    return resize_batch([image], image_size)


def write_metrics(wd: Workdir, family: str, result: dict[str, Any]) -> Path:
    """wd.metrics/<family>.json for `dvc metrics show`."""
    wd.metrics.mkdir(parents=True, exist_ok=True)
    path = wd.metrics / f"{family}.json"
    keep = {k: result.get(k) for k in ("model_name", "version", "run_id", "epochs")}
    keep["train_seconds"] = round(float(result.get("train_seconds", 0.0)), 1)
    keep.update({k: round(v, 4) for k, v in result["metrics"].items()})
    path.write_text(json.dumps(keep, indent=2) + "\n")
    return path
