"""`dvc plots show` renders the classifiers' confusion matrix and learning curves from the files
evaluation and training write (dvc.yaml's `plots:`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from artflow import plots
from artflow.classify.evaluate import score, write_report
from artflow.config import PROJECT_ROOT

LABELS = ["Claude Monet", "Edgar Degas", "Frida Kahlo"]


def _write_classifier_outputs(out: Path) -> tuple[list[int], list[str]]:
    """What a training run writes for the plots, from the real writers on made-up results."""
    y_true = [0, 0, 1, 1, 2, 2]
    probs = np.eye(3, dtype="float32")[[0, 1, 1, 1, 2, 0]]  # two mistakes
    result = score(y_true, probs, LABELS)
    shown = [np.zeros((8, 8, 3), "uint8")] * 2
    write_report(out, "test", result, LABELS, pd.DataFrame({"label": y_true}), shown)
    history = {"loss": [2.0, 1.2, 0.9], "accuracy": [0.3, 0.5, 0.7]}
    history |= {"val_loss": [2.1, 1.5, 1.3], "val_accuracy": [0.2, 0.4, 0.5]}
    plots.history_csv(history, out / "history.csv")
    return y_true, result["predicted"]


def test_dvc_plots_show_renders_confusion_matrix_and_learning_curves(tmp_path: Path) -> None:
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy2(PROJECT_ROOT / name, tmp_path / name)
    y_true, predicted = _write_classifier_outputs(tmp_path / "data/reports/classifier/cnn")
    dvc = str(Path(sys.executable).parent / "dvc")
    subprocess.run([dvc, "init", "-q", "--no-scm"], cwd=tmp_path, check=True)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.run(
        [dvc, "plots", "show", "--json"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)["data"]

    (confusion,) = shown["confusion_matrix_cnn"]
    rows = [(v["actual"], v["predicted"]) for v in confusion["content"]["data"]["values"]]
    assert rows == [(LABELS[a], p) for a, p in zip(y_true, predicted, strict=True)]
    assert ("Claude Monet", "Edgar Degas") in rows  # a mistake is a cell off the diagonal
    assert "rect" in json.dumps(confusion["content"]["spec"])  # the confusion template's cells

    for plot_id, fields in (("loss_cnn", {"loss", "val_loss"}), ("accuracy_cnn", {"accuracy"})):
        (curve,) = shown[plot_id]
        values = curve["content"]["data"]["values"]
        assert fields <= {v["field"] for v in values}
        assert {v["epoch"] for v in values} == {"1", "2", "3"}


def test_per_class_report_is_scikit_learns(tmp_path: Path) -> None:
    _write_classifier_outputs(tmp_path)
    result = json.loads((tmp_path / "metrics_test.json").read_text())
    # Monet: 1 of 2 right, and one Kahlo taken for Monet; Degas: both right, one Monet taken
    assert result["per_class"]["Claude Monet"] == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    )
    assert result["per_class"]["Edgar Degas"]["f1"] == pytest.approx(0.8)
    text = (tmp_path / "classification_report_test.txt").read_text()
    assert "Claude Monet      0.500     0.500     0.500         2" in text
    assert "macro avg" in text and "weighted avg" in text
