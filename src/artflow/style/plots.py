"""Pictures a person would rather look at than read: loss curves and before/after grids."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from artflow.style.images import resize


def loss_curve(history: Sequence[dict[str, float]], path: Path, title: str) -> Path:
    """One line per loss term over the steps, log scale (terms differ by orders of magnitude)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key in history[0] if history else []:
        values = [max(h[key], 1e-12) for h in history]
        ax.plot(range(1, len(values) + 1), values, label=key)
    ax.set(xlabel="step", ylabel="loss", title=title, yscale="log")
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def image_grid(rows: Sequence[Sequence[np.ndarray]], cell: int = 128, gap: int = 4) -> np.ndarray:
    """Rows of uint8 images tiled at `cell` px on a white background (e.g. photo|Monet|cycled)."""
    n_cols = max(len(r) for r in rows)
    height = len(rows) * cell + (len(rows) - 1) * gap
    width = n_cols * cell + (n_cols - 1) * gap
    grid = np.full((height, width, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            y, x = i * (cell + gap), j * (cell + gap)
            grid[y : y + cell, x : x + cell] = resize(img, cell, cell)
    return grid
