"""Assertions shared by the style tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from artflow.imageio import load_rgb


def assert_stylized(out: Path, content: Path, style: Path, check_style_loss: bool = True) -> None:
    """Output has the content's size, differs measurably, and (optionally) is closer in style."""
    from artflow.style.metrics import style_metrics

    result, original, style_img = load_rgb(out), load_rgb(content), load_rgb(style)
    assert result.shape == original.shape
    diff = np.abs(result.astype(np.float32) - original.astype(np.float32)).mean()
    assert diff > 3.0, f"output differs from the content by only {diff:.2f} levels"
    if check_style_loss:
        stylized = style_metrics(result, original, style_img)["style_loss"]
        unstyled = style_metrics(original, original, style_img)["style_loss"]
        assert stylized < unstyled


def falls(values: list[float]) -> bool:
    """The mean of the last third is below the mean of the first third (noisy losses)."""
    k = max(1, len(values) // 3)
    return float(np.mean(values[-k:])) < float(np.mean(values[:k]))
