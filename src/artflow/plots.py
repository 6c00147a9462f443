"""Plots a person would rather look at than read: confusion matrix, learning curves, samples.

matplotlib with the Agg backend (no display); every function writes one PNG and returns its path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def bare(ax: plt.Axes) -> None:
    """No frame and no ticks, for a thumbnail: hidden ticks would still be measured by every
    layout pass (about 1 s of a 16-thumbnail grid's 2 s; the picture is the same)."""
    ax.axis("off")
    ax.set_xticks([])
    ax.set_yticks([])


def confusion_matrix(
    cm: np.ndarray, labels: Sequence[str], path: str | Path, title: str = ""
) -> Path:
    """Row-normalised confusion matrix (true rows, predicted columns) with raw counts printed."""
    cm = np.asarray(cm)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm, dtype=float), where=rows > 0)
    side = max(5.0, 0.55 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(side + 1, side))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    for i, j in np.ndindex(cm.shape):
        if cm[i, j]:
            colour = "white" if norm[i, j] > 0.5 else "black"
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7, color=colour)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion matrix (row-normalised, counts shown)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, path)


def learning_curves(
    history: Mapping[str, Sequence[float]], path: str | Path, phase_starts: Sequence[int] = ()
) -> Path:
    """Loss and accuracy per epoch, train vs validation; dashed lines where a new phase starts."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for key, style in ((metric, "-o"), (f"val_{metric}", "-s")):
            values = history.get(key) or []
            if values:
                ax.plot(range(1, len(values) + 1), values, style, label=key, markersize=3)
        for start in phase_starts:
            ax.axvline(start + 0.5, color="grey", linestyle="--", linewidth=1)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, path)


def history_csv(history: Mapping[str, Sequence[float]], path: str | Path) -> Path:
    """The per-epoch history as CSV (epoch, loss, accuracy, val_...): `dvc plots` data."""
    import pandas as pd

    frame = pd.DataFrame({k: list(v) for k, v in history.items()})
    frame.insert(0, "epoch", range(1, len(frame) + 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, float_format="%.6g")
    return path


def prediction_grid(
    images: Sequence[np.ndarray],
    true: Sequence[str],
    predicted: Sequence[str],
    confidence: Sequence[float],
    path: str | Path,
    cols: int = 4,
) -> Path:
    """Thumbnails titled true / predicted (confidence); wrong predictions in red."""
    n = len(images)
    rows = max(1, -(-n // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat:
        bare(ax)
    for ax, img, t, p, c in zip(axes.flat, images, true, predicted, confidence, strict=False):
        ax.imshow(np.asarray(img).astype("uint8"))
        ax.set_title(
            f"true: {t}\npred: {p} ({c:.0%})", fontsize=8, color="black" if t == p else "red"
        )
    return _save(fig, path)
