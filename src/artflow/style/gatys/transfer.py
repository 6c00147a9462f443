"""Gatys neural style transfer: optimise the image itself with Adam against a fixed backbone.

Loss = content_weight * content + style_weight * weighted Gram style + tv_weight * TV,
as in the seed (docs/conventions.md) and the TF tutorial it followed: the image starts as the
content image, lives in 0..`pixel_range` (1 in the tutorial, 255 for the study's searched
presets) and is clipped after every step. `cfg` is the nst section: the backbone's preset
(`nst.presets.<backbone>`) is applied here, so every caller gets the same settings.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from artflow.config import NstCfg
from artflow.errors import ConfigError
from artflow.style.images import check_image, resize, to_uint8, working_size

LOSS_KEYS = ("total", "content", "style", "tv")
# Shorter runs (a preview, a smoke search trial) run eagerly: two ResNet50 steps at 48 px took
# 9 s eagerly and 49 s traced on two busy cores (the trace is the cost).
COMPILE_FROM_STEPS = 10


@dataclass
class GatysResult:
    image: np.ndarray  # uint8, the content image's size
    history: list[dict[str, float]] = field(default_factory=list)  # one dict of LOSS_KEYS per step
    seconds: float = 0.0
    work_size: tuple[int, int] = (0, 0)

    @property
    def final_loss(self) -> float:
        return self.history[-1]["total"] if self.history else float("nan")


def run_gatys(
    content: np.ndarray,
    style: np.ndarray,
    cfg: NstCfg,
    steps: int | None = None,
    size: int | None = None,
    backbone: str | None = None,
    seed: int = 0,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> GatysResult:
    """Stylize `content` (uint8 HxWx3) with `style`; returns the image at the content's size."""
    import tensorflow as tf

    from artflow.style.backbone import MIN_SIDE, build_extractor
    from artflow.style.losses import content_loss, gram, style_loss, tv_loss

    cfg = cfg.for_backbone(backbone)
    backbone = cfg.backbone
    steps = steps or cfg.steps
    longest = size or cfg.image_size
    need = MIN_SIDE.get(backbone, 32)
    check_image(content, need, "content image", backbone)
    check_image(style, need, "style image", backbone)
    extractor = build_extractor(backbone, cfg.weights, seed)
    if len(cfg.style_layer_weights) != extractor.n_style:
        raise ConfigError(
            f"nst.style_layer_weights has {len(cfg.style_layer_weights)} values, "
            f"{backbone} has {extractor.n_style} style layers",
            "give one weight per style layer",
        )
    h, w = working_size(*content.shape[:2], longest, need)
    sh, sw = working_size(*style.shape[:2], longest, need)
    content_px = tf.constant(resize(content, h, w)[None].astype(np.float32))
    style_px = tf.constant(resize(style, sh, sw)[None].astype(np.float32))
    content_target, _ = extractor(content_px)
    _, style_feats = extractor(style_px)
    style_targets = [gram(f) for f in style_feats]
    layer_w = [float(x) for x in cfg.style_layer_weights]

    scale = float(cfg.pixel_range)
    image = tf.Variable(content_px / 255.0 * scale)
    import keras

    opt = keras.optimizers.Adam(learning_rate=cfg.learning_rate, beta_1=0.99, epsilon=1e-1)

    def step() -> dict[str, Any]:
        with tf.GradientTape() as tape:
            c_feat, s_feats = extractor(image * (255.0 / scale))
            lc = content_loss(c_feat, content_target)
            ls = style_loss(s_feats, style_targets, layer_w)
            lt = tv_loss(image / scale)
            total = cfg.content_weight * lc + cfg.style_weight * ls + cfg.tv_weight * lt
        opt.apply_gradients([(tape.gradient(total, image), image)])
        image.assign(tf.clip_by_value(image, 0.0, scale))
        return {"total": total, "content": lc, "style": ls, "tv": lt}

    # Tracing the gradient step costs as much as many eager steps; it pays off on long runs.
    if steps >= COMPILE_FROM_STEPS:
        step = tf.function(step)
    result = GatysResult(image=content, work_size=(h, w))
    start = time.perf_counter()
    for i in range(steps):
        losses = {k: float(v) for k, v in step().items()}
        result.history.append(losses)
        if on_step:
            on_step(i, losses)
    result.seconds = time.perf_counter() - start
    out = to_uint8(image.numpy()[0] * (255.0 / scale))
    result.image = resize(out, *content.shape[:2])
    return result


def fixed_cost(
    image: np.ndarray, content: np.ndarray, style: np.ndarray, cfg: NstCfg, seed: int = 0
) -> float:
    """Total loss of a finished image under `cfg`'s weights with equal layer weights.

    Random-search candidates use different loss weights, so their own final totals are not
    comparable (a smaller style weight gives a smaller total); scoring every candidate with
    the same base weights picks the best image, not the cheapest objective.
    """
    import tensorflow as tf

    from artflow.style.backbone import build_extractor
    from artflow.style.losses import content_loss, gram, style_loss, tv_loss

    extractor = build_extractor(cfg.backbone, cfg.weights, seed)
    h, w = working_size(*content.shape[:2], cfg.image_size, 32)
    batch = [tf.constant(resize(x, h, w)[None].astype(np.float32)) for x in (image, content, style)]
    (r_c, r_s), (c_c, _), (_, s_s) = (extractor(b) for b in batch)
    ones = [1.0] * extractor.n_style
    total = (
        cfg.content_weight * content_loss(r_c, c_c)
        + cfg.style_weight * style_loss(r_s, [gram(f) for f in s_s], ones)
        + cfg.tv_weight * tv_loss(batch[0] / 255.0)
    )
    return float(total)
