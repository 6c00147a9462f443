"""Evaluate an artist classifier on a split: metrics, per-image correctness, plots, MLflow.

`score` and `write_report` are shared by training (the in-memory model, before registering)
and by `evaluate` (a registered version, e.g. for the promotion gate on the frozen test split).
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from artflow import plots
from artflow.classify import slices
from artflow.config import Settings
from artflow.data import tfdata
from artflow.data.layout import Workdir
from artflow.registry import tracking

EXPERIMENT = "artflow-classifier"
GRID_IMAGES = 16


def score(y_true: Sequence[int], probs: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """accuracy, macro-F1, per-class precision/recall/F1/support, confusion matrix, correctness."""
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score

    y_true = np.asarray(y_true, dtype=int)
    y_pred = probs.argmax(axis=1)
    classes = list(range(len(labels)))
    report = classification_report(
        y_true, y_pred, labels=classes, target_names=list(labels), output_dict=True, zero_division=0
    )
    per_class = {
        name: {
            "precision": float(report[name]["precision"]),
            "recall": float(report[name]["recall"]),
            "f1": float(report[name]["f1-score"]),
            "support": int(report[name]["support"]),
        }
        for name in labels
    }
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        # Macro-F1 over the classes present in the split (absent ones would count as 0).
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=sorted(set(y_true)), average="macro", zero_division=0)
        ),
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=classes).tolist(),
        "correct": [bool(c) for c in y_true == y_pred],
        "predicted": [labels[i] for i in y_pred],
        "confidence": [float(c) for c in probs.max(axis=1)],
    }


def predict_split(
    model: Any, wd: Workdir, split: str, image_size: int, n_classes: int, batch_size: int = 32
) -> tuple[np.ndarray, tfdata.Split, list[np.ndarray]]:
    """Probabilities in CSV order, the split, and the first GRID_IMAGES input images."""
    data = tfdata.dataset(wd, split, image_size, batch_size, n_classes, training=False, cache=None)
    probs, shown = [], []
    for x, _ in data.dataset:
        probs.append(np.asarray(model(x, training=False)))
        shown.extend(x.numpy()[: max(0, GRID_IMAGES - len(shown))])
    return np.concatenate(probs).astype("float32"), data, shown


def classification_report(
    true: Sequence[str], predicted: Sequence[str], labels: Sequence[str]
) -> str:
    """scikit-learn's per-class text report (precision, recall, F1, support) over every class."""
    from sklearn.metrics import classification_report as report

    return report(true, predicted, labels=list(labels), digits=3, zero_division=0)


def write_report(
    out: Path,
    split: str,
    result: dict[str, Any],
    labels: Sequence[str],
    frame: Any,
    shown: Sequence[np.ndarray],
) -> list[Path]:
    """Confusion matrix PNG, prediction grid PNG, predictions CSV, text + JSON report."""
    out.mkdir(parents=True, exist_ok=True)
    title = f"{split}: accuracy {result['accuracy']:.1%}, macro-F1 {result['macro_f1']:.3f}"
    true = [labels[i] for i in frame["label"].to_numpy()[: len(shown)]]
    paths = [
        plots.confusion_matrix(
            np.array(result["confusion_matrix"]), labels, out / f"confusion_{split}.png", title
        ),
        plots.prediction_grid(
            shown, true, result["predicted"], result["confidence"], out / f"samples_{split}.png"
        ),
    ]
    # (actual, predicted) per image: the data of `dvc plots show`'s confusion matrix (dvc.yaml)
    predictions = out / f"predictions_{split}.csv"
    with predictions.open("w", newline="", encoding="utf-8") as fh:
        rows = zip(frame["label"].to_numpy(), result["predicted"], strict=True)
        csv.writer(fh).writerows([("actual", "predicted"), *((labels[a], p) for a, p in rows)])
    report = out / f"classification_report_{split}.txt"
    every_true = [labels[i] for i in frame["label"].to_numpy()]
    report.write_text(classification_report(every_true, result["predicted"], labels))
    summary = out / f"metrics_{split}.json"
    keep = {k: result[k] for k in ("n", "accuracy", "macro_f1", "per_class", "confusion_matrix")}
    summary.write_text(json.dumps(keep, indent=2))
    return [*paths, predictions, report, summary]


def latency_ms_per_image(loaded: Any, images: Sequence[np.ndarray], repeats: int = 20) -> float:
    """Median wall time of one single-image `predict` call (after a warm-up), in ms."""
    if not len(images):
        return float("nan")
    loaded.predict([images[0]])
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        loaded.predict([images[i % len(images)]])
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times))


def evaluate(
    settings: Settings, wd: Workdir, model_ref: str, split: str = "test", log: bool = True
) -> dict[str, Any]:
    """Score a registered classifier on `split`; files under wd.reports, an MLflow run if `log`.

    Returns accuracy, macro_f1, per_class, confusion_matrix, per-image `correct` (bools in
    split CSV order), `paths`, `predicted`, `slices` (artflow.classify.slices),
    latency_ms_per_image and model_size_mb.
    """
    from artflow.classify.io import load_classifier

    loaded = load_classifier(model_ref)
    file_labels = tfdata.read_labels(wd)
    if file_labels != loaded.labels:
        from artflow.errors import DataError

        raise DataError(
            f"{wd.labels} does not match the label map of {loaded.uri}",
            "evaluate on the data version the model was trained on",
        )
    probs, data, shown = predict_split(
        loaded.model, wd, split, loaded.image_size, len(loaded.labels)
    )
    result = score(data.labels, probs, loaded.labels)
    result["slices"] = slices.split_slices(loaded, wd, data.frame, result["predicted"])
    out = wd.reports / "evaluate" / f"{loaded.name}-v{loaded.version}-{split}"
    files = write_report(out, split, result, loaded.labels, data.frame, shown)
    table = out / f"slices_{split}.md"
    table.write_text(slices.markdown(result["slices"], result["per_class"]))
    files.append(table)
    result.update(
        model_uri=loaded.uri,
        version=loaded.version,
        family=loaded.family,
        split=split,
        paths=data.frame["path"].tolist(),
        latency_ms_per_image=latency_ms_per_image(loaded, [s.astype("uint8") for s in shown]),
        model_size_mb=loaded.size_mb,
        report_dir=str(out),
    )
    if log:
        _log(settings, wd, split, result, files, loaded)
    return result


def _log(
    settings: Settings,
    wd: Workdir,
    split: str,
    result: dict[str, Any],
    files: list[Path],
    loaded: Any,
) -> None:
    import mlflow

    params = {"model_uri": loaded.uri, "split": split, "family": loaded.family}
    tags = {"artflow.model_version": loaded.version, "artflow.stage": "evaluate"}
    with tracking.start_run(
        EXPERIMENT,
        f"evaluate-v{loaded.version}-{split}",
        settings,
        params=params,
        data_files=[wd.split_csv(split), wd.labels],
        tags=tags,
    ):
        mlflow.log_metrics(
            {
                f"{split}_accuracy": result["accuracy"],
                f"{split}_macro_f1": result["macro_f1"],
                "latency_ms_per_image": result["latency_ms_per_image"],
                "model_size_mb": result["model_size_mb"],
                **slices.mlflow_metrics(split, result["slices"], result["per_class"]),
            }
        )
        for path in files:
            mlflow.log_artifact(str(path), artifact_path="evaluation")
