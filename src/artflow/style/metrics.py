"""Quality metrics for style results, computed the same way for every method.

One fixed feature extractor (VGG19; with weights none its kernels come from a fixed seed,
so numbers are comparable across runs and processes) scores every result at one fixed size:
  content_loss  mean squared block3_conv4 feature distance to the content image
  style_loss    mean Gram-matrix distance to the style image over the five style layers
  ssim          structural similarity to the content image (tf.image.ssim)
and, for the CycleGAN, cycle_l1: mean |F(G(x)) - x| on held-out photos in 0..1 pixels, and
  monet_distance  how far an image's pooled style features lie from the Monet set's: the
                  mean over channels of (f - mean)^2 / variance, the variance of a diagonal
                  Gaussian fitted to the Monet paintings (floored, see VARIANCE_FLOOR); 1 is
                  "as far as a typical Monet painting", larger is less Monet-like.
The Monet set's statistics (`monet_reference`) are made by the CycleGAN's training, where the
Monet data is, and travel with the registered version as its `monet_reference` tag, so a
served generator is scored against the paintings it was trained on.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from artflow.style.images import resize

METRIC_SIZE = 128  # every image is scored at this side so numbers do not depend on input size
METRIC_SEED = 1234
METRIC_BACKBONE = "vgg19"
REFERENCE_TAG = "monet_reference"  # the model version tag holding monet_reference()'s JSON
VARIANCE_FLOOR = 0.1  # of the mean variance: a small Monet set leaves some channels ~constant
REFERENCE_DIGITS = 5  # significant digits kept in the tag (the 100 kB tag limit)


def _batch(image: np.ndarray, size: int) -> Any:
    import tensorflow as tf

    return tf.constant(resize(image, size, size)[None].astype(np.float32))


def style_metrics(
    result: np.ndarray,
    content: np.ndarray,
    style: np.ndarray,
    weights: str = "none",
    size: int = METRIC_SIZE,
) -> dict[str, float]:
    """content_loss, style_loss and ssim of `result` (all uint8 HxWx3)."""
    import tensorflow as tf

    from artflow.style.backbone import build_extractor
    from artflow.style.losses import content_loss, gram, style_loss

    extractor = build_extractor(METRIC_BACKBONE, weights, METRIC_SEED)
    res, con, sty = (_batch(x, size) for x in (result, content, style))
    r_content, r_style = extractor(res)
    c_content, _ = extractor(con)
    _, s_style = extractor(sty)
    ones = [1.0] * extractor.n_style
    return {
        "content_loss": float(content_loss(r_content, c_content)),
        "style_loss": float(style_loss(r_style, [gram(f) for f in s_style], ones)),
        "ssim": float(tf.image.ssim(res, con, max_val=255.0)[0]),
    }


def cycle_l1(photos: Iterable[np.ndarray], cycled: Iterable[np.ndarray]) -> float:
    """Mean absolute error between photos and their round trips, in 0..1 pixel units."""
    errors = [
        np.abs(p.astype(np.float32) - resize(c, *p.shape[:2]).astype(np.float32)).mean() / 255.0
        for p, c in zip(photos, cycled, strict=True)
    ]
    return float(np.mean(errors)) if errors else float("nan")


def mean_metrics(rows: list[dict[str, float]]) -> dict[str, float]:
    """Average a list of metric dicts key by key."""
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]} if rows else {}


def pooled_features(image: np.ndarray, weights: str = "none", size: int = METRIC_SIZE) -> Any:
    """Channel means of the five style layers of the metric extractor: (1472,) for VGG19."""
    import tensorflow as tf

    from artflow.style.backbone import build_extractor

    extractor = build_extractor(METRIC_BACKBONE, weights, METRIC_SEED)
    _, feats = extractor(_batch(image, size))
    return np.concatenate([tf.reduce_mean(f, axis=(1, 2)).numpy()[0] for f in feats])


def monet_reference(paintings: Iterable[np.ndarray], weights: str = "none") -> dict[str, Any]:
    """The Monet set's pooled-feature statistics (mean and variance per channel)."""
    feats = np.stack([pooled_features(p, weights) for p in paintings])
    mean, var = feats.mean(axis=0), feats.var(axis=0)
    return {
        "measure": "monet_distance",
        "n": int(len(feats)),
        "weights": weights,
        "mean": [float(f"{x:.{REFERENCE_DIGITS}g}") for x in mean],
        "var": [float(f"{x:.{REFERENCE_DIGITS}g}") for x in var],
    }


def monet_distance(image: np.ndarray, reference: dict[str, Any]) -> float:
    """The image's monet_distance to `reference` (monet_reference's statistics)."""
    mean, var = np.asarray(reference["mean"]), np.asarray(reference["var"])
    var = np.maximum(var, VARIANCE_FLOOR * float(var.mean()) + 1e-12)
    feats = pooled_features(image, reference.get("weights", "none"))
    return float(np.mean((feats - mean) ** 2 / var))
