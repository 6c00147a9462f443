"""Real-time arbitrary style transfer (AdaIN, Huang & Belongie 2017).

encoder  `vgg19`: VGG19 up to block4_conv1 (relu1_1 .. relu4_1 taps), frozen; or
         `distilled`: the same topology with `encoder_width` x the channels (1/4: ~16x fewer
         multiply-adds), trained to match VGG19's taps through 1x1 linear embeddings
         (collaborative distillation, Wang et al. 2020) and end to end with the decoder
AdaIN    re-normalise content features to the style features' channel mean/std, blended
         with the content features by a strength alpha in 0..1
decoder  the encoder mirrored, nearest-neighbour upsampling instead of pooling; trained

The whole stylizer is one Keras model of standard layers plus two small registered layers
(`VggPreprocess`, `AdaIN`), so the `.keras` file loads back with safe_mode on (no Lambda,
no pickled code). Inputs: content and style as float32 RGB 0..255 (N, H, W, 3) and alpha
(N, 1); output: RGB 0..255 float32 (unclipped; callers clip). Under a mixed-precision policy
AdaIN and the last conv stay float32 (feature variances overflow float16).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import layers, ops

from artflow.style.backbone import build_backbone

ENCODER_TAPS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1")
_BGR_MEAN = np.array([103.939, 116.779, 123.68], dtype=np.float32)
# Decoder: the encoder's convs in reverse, (filters per conv) per stage from relu4_1 back to
# pixels, 2x upsampling between stages (as in the AdaIN paper's decoder).
DECODER_STAGES = ((256,), (256, 256, 256, 128), (128, 64), (64,))
# VGG19's convs up to block4_conv1, (filters per conv) per block; a max-pool between blocks.
VGG_STAGES = ((64, 64), (128, 128), (256, 256, 256, 256), (512,))
DOWNSCALE = 8  # the encoder pools three times: inputs should be multiples of this


@keras.saving.register_keras_serializable(package="artflow")
class VggPreprocess(layers.Layer):
    """RGB 0..255 -> BGR minus the ImageNet mean (Keras' caffe mode) inside the model."""

    def call(self, x: Any) -> Any:
        return ops.flip(x, axis=-1) - ops.convert_to_tensor(_BGR_MEAN, dtype=x.dtype)


@keras.saving.register_keras_serializable(package="artflow")
class AdaIN(layers.Layer):
    """alpha * (std_s * (c - mean_c) / std_c + mean_s) + (1 - alpha) * c, per channel."""

    def __init__(self, epsilon: float = 1e-5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, inputs: list[Any]) -> Any:
        content, style, alpha = inputs
        c_mean, c_var = ops.moments(content, axes=[1, 2], keepdims=True)
        s_mean, s_var = ops.moments(style, axes=[1, 2], keepdims=True)
        normed = (content - c_mean) * ops.rsqrt(c_var + self.epsilon)
        target = normed * ops.sqrt(s_var + self.epsilon) + s_mean
        a = ops.reshape(ops.cast(alpha, content.dtype), (-1, 1, 1, 1))
        return a * target + (1.0 - a) * content

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "epsilon": self.epsilon}


def build_encoder(weights: str, seed: int = 0) -> keras.Model:
    """VGG19 cut at block4_conv1, returning the four relu_1 taps; not trainable."""
    vgg = build_backbone("vgg19", weights, seed)
    inp = keras.Input((None, None, 3), name="pixels")
    x = VggPreprocess(name="vgg_preprocess")(inp)
    taps = []
    for layer in vgg.layers[1:]:
        x = layer(x)
        if layer.name in ENCODER_TAPS:
            taps.append(x)
        if layer.name == ENCODER_TAPS[-1]:
            break
    encoder = keras.Model(inp, taps, name="encoder")
    encoder.trainable = False
    return encoder


def _scaled(filters: int, width: float) -> int:
    return max(8, round(filters * width))


def build_student_encoder(width: float = 0.25) -> keras.Model:
    """VGG19's topology to block4_conv1 with `width` x the filters; taps named like VGG's.

    Trainable, randomly initialised (Keras' seeded global RNG): `train.stylizer` distils it.
    """
    inp = keras.Input((None, None, 3), name="pixels")
    x = VggPreprocess(name="vgg_preprocess")(inp)
    taps = []
    for i, stage in enumerate(VGG_STAGES, start=1):
        if i > 1:
            x = layers.MaxPooling2D(2, name=f"block{i - 1}_pool")(x)
        for j, filters in enumerate(stage, start=1):
            conv = layers.Conv2D(
                _scaled(filters, width),
                3,
                padding="same",
                activation="relu",
                name=f"block{i}_conv{j}",
            )
            x = conv(x)
            if j == 1:
                taps.append(x)
    return keras.Model(inp, taps, name="encoder")


def build_embeddings(student: keras.Model, teacher: keras.Model) -> list[layers.Layer]:
    """One 1x1 linear conv per tap, student channels -> teacher channels (training only)."""
    return [
        layers.Conv2D(t.shape[-1], 1, name=f"embed{i}", dtype="float32")
        for i, t in enumerate(teacher.outputs, start=1)
    ]


def feature_channels(encoder: keras.Model) -> int:
    """Channels of the encoder's deepest tap (the features AdaIN and the decoder see)."""
    return int(encoder.outputs[-1].shape[-1])


def build_decoder(width: float = 1.0, channels: int = 512) -> keras.Model:
    """relu4_1-shaped features (`channels`) -> RGB 0..255; mirror of the encoder.

    `width` scales every conv's filters: most of the decoder's cost is in its full- and
    half-resolution convs, so 0.5 makes it about 4x cheaper for CPU serving.
    """
    inp = keras.Input((None, None, channels), name="features")
    x = inp
    for i, stage in enumerate(DECODER_STAGES):
        if i > 0:
            x = layers.UpSampling2D(2, interpolation="nearest", name=f"up{i}")(x)
        for j, filters in enumerate(stage):
            n = _scaled(filters, width)
            x = layers.Conv2D(n, 3, padding="same", activation="relu", name=f"dec{i}_{j}")(x)
    # A pixel-space bias of 128 starts the decoder near mid-grey instead of black, which
    # speeds early training.
    grey = keras.initializers.Constant(128.0)
    rgb = layers.Conv2D(3, 3, padding="same", name="to_rgb", bias_initializer=grey, dtype="float32")
    out = rgb(x)
    return keras.Model(inp, out, name="decoder")


def build_stylizer(encoder: keras.Model, decoder: keras.Model) -> keras.Model:
    """content, style, alpha -> stylized pixels: decoder(AdaIN(enc(content), enc(style), alpha))."""
    content = keras.Input((None, None, 3), name="content")
    style = keras.Input((None, None, 3), name="style")
    alpha = keras.Input((1,), name="alpha")
    c_feat = encoder(content)[-1]
    s_feat = encoder(style)[-1]
    t = AdaIN(name="adain", dtype="float32")([c_feat, s_feat, alpha])
    return keras.Model([content, style, alpha], decoder(t), name="adain_stylizer")


def _pre_activation(conv: layers.Conv2D, x: Any) -> Any:
    return ops.conv(x, conv.kernel, padding="same") + conv.bias


def select_channels(
    src: keras.Model,
    dst: keras.Model,
    src_x: Any,
    dst_x: Any,
    keep_in: np.ndarray | None = None,
) -> tuple[np.ndarray, Any, Any]:
    """Initialise the thin `dst` from the wide `src` of the same topology (channel selection,
    then calibration on a batch).

    Each conv keeps the output filters of `src` with the largest kernel norms (all of them
    where `dst` is as wide) and the input channels the previous conv kept (`keep_in` for the
    first: None = all), scaled by sqrt(inputs / kept) (the spread of a sum of independent
    terms). Each conv is then calibrated layer by layer on `src_x` / `dst_x` (the two
    networks' inputs, e.g. one training batch): a per-channel shift gives the thin channel
    the mean its wide original has there (data-dependent init, as after pruning), and the
    last conv also gets its spread, so a decoder's pixels start with the teacher's colours
    and contrast.
    Returns the last conv's kept channels and both networks' outputs.
    """
    for s, d in zip(src.layers[1:], dst.layers[1:], strict=True):
        if not isinstance(s, layers.Conv2D):
            src_x, dst_x = s(src_x), d(dst_x)
            continue
        kernel, bias = (np.asarray(w) for w in s.get_weights())
        norms = np.sqrt((kernel**2).sum(axis=(0, 1, 2)))
        keep = np.sort(np.argsort(-norms, kind="stable")[: d.filters])
        if keep_in is not None:
            kernel = kernel[:, :, keep_in] * np.sqrt(kernel.shape[2] / len(keep_in))
        d.set_weights([kernel[..., keep].astype(np.float32), bias[keep].astype(np.float32)])
        want = ops.take(_pre_activation(s, src_x), keep, axis=-1)
        got = _pre_activation(d, dst_x)
        w_mean, w_var = ops.moments(want, axes=[0, 1, 2])
        g_mean, g_var = ops.moments(got, axes=[0, 1, 2])
        # Inner convs: shift only (matching each one's spread too amplified the thin
        # channels' noise: SSIM 0.42 instead of 0.51 at the start); the last: shift and spread.
        last = d is dst.layers[-1]
        scale = ops.sqrt((w_var + 1e-6) / (g_var + 1e-6)) if last else 1.0
        d.set_weights(
            [
                np.asarray(d.kernel * scale, np.float32),
                np.asarray((d.bias - g_mean) * scale + w_mean, np.float32),
            ]
        )
        act = keras.activations.get(d.activation)
        src_x, dst_x = act(_pre_activation(s, src_x)), act(_pre_activation(d, dst_x))
        keep_in = keep
    assert keep_in is not None
    return keep_in, src_x, dst_x
