"""Losses shared by Gatys NST, the stylizer's training and the quality metrics.

Written by hand because they are a few lines each and Keras ships none of them: the Gram
matrix (normalised by the number of positions, as in the TF tutorial the seed followed:
docs/conventions.md), mean-squared feature distances and the per-pixel total variation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def gram(features: Any) -> Any:
    """(N, H, W, C) -> (N, C, C) Gram matrices divided by H*W."""
    import tensorflow as tf

    shape = tf.shape(features)
    positions = tf.cast(shape[1] * shape[2], features.dtype)
    return tf.einsum("bijc,bijd->bcd", features, features) / positions


def content_loss(features: Any, target: Any) -> Any:
    import tensorflow as tf

    return tf.reduce_mean(tf.square(features - target))


def style_loss(
    features: Sequence[Any], target_grams: Sequence[Any], weights: Sequence[float]
) -> Any:
    """Weighted mean over layers of the mean squared Gram difference."""
    import tensorflow as tf

    terms = [
        w * tf.reduce_mean(tf.square(gram(f) - g))
        for f, g, w in zip(features, target_grams, weights, strict=True)
    ]
    return tf.add_n(terms) / float(len(terms))


def tv_loss(image: Any) -> Any:
    """Total variation per pixel of an (N, H, W, 3) image in 0..1."""
    import tensorflow as tf

    pixels = tf.cast(tf.reduce_prod(tf.shape(image)[1:3]), image.dtype)
    return tf.reduce_sum(tf.image.total_variation(image)) / pixels


def mean_std(features: Any, eps: float = 1e-5) -> tuple[Any, Any]:
    """Per-channel spatial mean and standard deviation (AdaIN statistics)."""
    import tensorflow as tf

    mean, var = tf.nn.moments(features, axes=[1, 2], keepdims=True)
    return mean, tf.sqrt(var + eps)
