"""The style models' training steps under the GPU runtime configuration, run on CPU.

Same code path as a GPU run: a MirroredStrategy (one CPU replica here), the mixed_float16
policy with loss scaling, then the float32 export that is registered and served.
"""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def mixed_strategy(style_settings):
    import keras

    from artflow import runtime

    cfg = style_settings.training.model_copy(
        update={"mixed_precision": "on", "distribute": "mirrored"}
    )
    strategy = runtime.configure(cfg, seed=0)
    assert keras.mixed_precision.global_policy().name == "mixed_float16"
    yield strategy
    keras.mixed_precision.set_global_policy("float32")


def _changed(before: list[np.ndarray], variables: list) -> bool:
    return any(not np.allclose(b, v.numpy()) for b, v in zip(before, variables, strict=True))


def _all_float32(model) -> bool:
    import keras

    def walk(m):
        for layer in m.layers:
            yield layer
            if isinstance(layer, keras.Model):
                yield from walk(layer)

    return all(layer.dtype_policy.name == "float32" for layer in walk(model))


def test_stylizer_step_mixed_precision_under_a_strategy(mixed_strategy, style_settings) -> None:
    import keras
    import tensorflow as tf

    from artflow.style.adain.train import _export, _train_step_fn, build_nets

    cfg = style_settings.stylizer.model_copy(update={"encoder": "distilled", "decoder_width": 0.25})
    with mixed_strategy.scope():
        nets = build_nets(cfg, seed=0)
        step = _train_step_fn(nets, cfg, mixed_strategy, xla=False)
    assert isinstance(nets.optimizer, keras.optimizers.LossScaleOptimizer)
    pixels = tf.random.uniform((2, 32, 32, 3), 0.0, 255.0, seed=1)
    feats = nets.encoder(pixels)
    assert feats[-1].dtype == tf.float16  # the convs run in half precision
    assert nets.decoder(tf.cast(feats[-1], tf.float32)).dtype == tf.float32  # pixels do not
    before = [v.numpy() for v in nets.trainable]
    losses = step(pixels, tf.reverse(pixels, axis=[1]))
    assert set(losses) == {"loss", "content", "style", "distill"}
    assert all(v.dtype == tf.float32 and np.isfinite(float(v)) for v in losses.values())
    assert _changed(before, nets.trainable)
    model = _export(nets, cfg, seed=0)  # what gets registered: float32 throughout
    assert _all_float32(model)
    out = model([pixels[:1], pixels[1:], tf.ones((1, 1))])
    assert out.dtype == tf.float32 and out.shape == (1, 32, 32, 3)
    # The serving path takes the thin (128-channel) features and fuses the decoder's
    # upsampling into its convs: same pixels as the Keras model, up to rounding.
    from artflow.style.inference import Stylizer

    content = np.asarray(pixels[0]).astype(np.uint8)
    style = np.asarray(pixels[1]).astype(np.uint8)
    served = Stylizer(model).stylize(content, style)
    assert served.shape == content.shape
    batch = [tf.constant(x[None].astype("float32")) for x in (content, style)]
    direct = model([*batch, tf.ones((1, 1))])
    expected = np.clip(np.asarray(direct[0]), 0, 255)
    assert np.abs(served.astype(float) - expected).max() <= 1.0


def test_cyclegan_step_mixed_precision_under_a_strategy(mixed_strategy, style_settings) -> None:
    import keras
    import tensorflow as tf

    from artflow.style.cyclegan.train import build_nets, export_float32, train_step_fn

    cfg = style_settings.cyclegan
    with mixed_strategy.scope():
        nets = build_nets(cfg)
        step = train_step_fn(nets, cfg.lambda_cycle, mixed_strategy, xla=False)
    assert isinstance(nets.g_opt, keras.optimizers.LossScaleOptimizer)
    photo = tf.random.uniform((1, 32, 32, 3), -1.0, 1.0, seed=2)
    assert nets.g(photo).dtype == tf.float32 and nets.d_monet(photo).dtype == tf.float32
    before = [v.numpy() for v in nets.gen_vars + nets.disc_vars]
    losses = step(photo, tf.reverse(photo, axis=[2]))
    assert all(v.dtype == tf.float32 and np.isfinite(float(v)) for v in losses.values())
    assert _changed(before, nets.gen_vars + nets.disc_vars) and int(nets.step.numpy()) == 1
    model = export_float32(nets, cfg)
    assert _all_float32(model)
    out = model(tf.fill((1, 32, 32, 3), 128.0))
    assert out.dtype == tf.float32 and float(tf.reduce_min(out)) >= 0.0


def test_style_input_decodes_once_and_reports_its_rate(style_workdir, tmp_path) -> None:
    import shutil
    from pathlib import Path

    from artflow.style.data import augmented, input_rate, style_images

    paths = [shutil.copy(p, tmp_path) for p in style_images(style_workdir, "train", "monet")]
    assert input_rate(augmented(paths, 32, 2, seed=0), 3) > 0
    batches = iter(augmented(paths, 32, 2, seed=0, scale="unit", cache=True))
    first = [next(batches) for _ in range(len(paths))]  # more than one pass: cache complete
    assert first[0].shape == (2, 32, 32, 3) and first[0].dtype.name == "float32"
    assert all(-1.0 <= float(b.numpy().min()) <= float(b.numpy().max()) <= 1.0 for b in first)
    for path in paths:
        Path(path).unlink()  # later epochs come from memory, not from the files
    assert all(next(batches).shape == (2, 32, 32, 3) for _ in range(len(paths)))
