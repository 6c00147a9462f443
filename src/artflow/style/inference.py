"""Inference API for style transfer, shared by the CLI and the BentoML service.

    load_stylizer(ref).stylize(content_u8, style_u8, strength=1.0, size=None) -> u8
    load_monet(ref).translate(photo_u8, size=None) -> u8
    stylize_gatys(content_u8, style_u8, nst_cfg, steps=None, size=None, backbone=None) -> u8

`ref` is a `models:/...` URI, an alias (champion, challenger), a version number, or a path
to a `.keras` file. A missing `champion` alias falls back to `challenger` with a note, so a
freshly trained model is usable before the gate promotes it. Outputs always have the input
image's size. TensorFlow and MLflow are imported only when a model is loaded.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from artflow.config import NstCfg
from artflow.errors import ModelError
from artflow.style.images import check_image, resize, to_uint8, working_size

MIN_SIDE = 32  # the encoders pool 3-5 times; smaller inputs leave nothing to stylize
STYLE_SIDE = 256  # AdaIN needs only channel statistics of the style: encode it small (fast)
MAX_SIDE = 2048  # larger content is stylized at this side and resized back


@dataclass
class ResolvedModel:
    uri: str
    version: str | None
    tags: dict[str, str]
    note: str = ""


@dataclass
class Stylizer:
    """The AdaIN stylizer (VGG19 or distilled encoder): one graph, style features cached."""

    model: Any
    name: str = ""
    version: str | None = None
    note: str = ""
    _fn: Any = field(default=None, repr=False)
    _style_cache: OrderedDict[str, Any] = field(default_factory=OrderedDict, repr=False)

    def __post_init__(self) -> None:
        import tensorflow as tf

        encoder = self.model.get_layer("encoder")
        decoder = self.model.get_layer("decoder")
        adain = self.model.get_layer("adain")
        spec = tf.TensorSpec([1, None, None, 3], tf.float32)
        channels = int(encoder.outputs[-1].shape[-1])  # 512 for VGG19, fewer when distilled

        # Fixed signatures: one trace serves every image size (no retracing per request).
        @tf.function(input_signature=[spec])
        def encode(pixels: Any) -> Any:
            return encoder(pixels)[-1]

        decode = _decoder_fn(decoder)

        @tf.function(
            input_signature=[
                spec,
                tf.TensorSpec([1, None, None, channels]),
                tf.TensorSpec([1, 1]),
            ]
        )
        def stylize(content: Any, style_feat: Any, alpha: Any) -> Any:
            t = adain([encoder(content)[-1], style_feat, alpha])
            return tf.clip_by_value(decode(t), 0.0, 255.0)

        self._encode, self._fn = encode, stylize

    def _style_features(self, style: np.ndarray) -> Any:
        key = hashlib.sha1(style.tobytes() + str(style.shape).encode()).hexdigest()
        if key not in self._style_cache:
            h, w = working_size(*style.shape[:2], min(STYLE_SIDE, max(style.shape[:2])), MIN_SIDE)
            small = resize(style, h, w)[None].astype(np.float32)
            self._style_cache[key] = self._encode(small)
            while len(self._style_cache) > 16:
                self._style_cache.popitem(last=False)
        return self._style_cache[key]

    def stylize(
        self, content: np.ndarray, style: np.ndarray, strength: float = 1.0, size: int | None = None
    ) -> np.ndarray:
        check_image(content, MIN_SIDE, "content image", "the stylizer")
        check_image(style, MIN_SIDE, "style image", "the stylizer")
        if not 0.0 <= strength <= 1.0:
            raise ModelError(f"strength must be within 0..1, got {strength}")
        longest = min(size or max(content.shape[:2]), MAX_SIDE)
        h, w = (_multiple(x, 8) for x in working_size(*content.shape[:2], longest, MIN_SIDE))
        pixels = resize(content, h, w)[None].astype(np.float32)
        alpha = np.array([[strength]], np.float32)
        out = self._fn(pixels, self._style_features(style), alpha).numpy()[0]
        return resize(to_uint8(out), *content.shape[:2])


@dataclass
class MonetTranslator:
    """The CycleGAN photo -> Monet generator (a Keras model on 0..255 pixels)."""

    model: Any
    image_size: int = 256
    name: str = ""
    version: str | None = None
    note: str = ""
    reference: dict[str, Any] | None = None  # the Monet set's statistics (monet_distance)
    _fn: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        import tensorflow as tf

        model = self.model

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        def translate(pixels: Any) -> Any:
            return tf.clip_by_value(model(pixels), 0.0, 255.0)

        self._fn = translate

    def translate(self, photo: np.ndarray, size: int | None = None) -> np.ndarray:
        check_image(photo, MIN_SIDE, "photo", "the Monet generator")
        longest = min(size or self.image_size, MAX_SIDE)
        h, w = (_multiple(x, 4) for x in working_size(*photo.shape[:2], longest, MIN_SIDE))
        out = self._fn(resize(photo, h, w)[None].astype(np.float32)).numpy()[0]
        return resize(to_uint8(out), *photo.shape[:2])


# Nearest 2x upsampling then a 3x3 "same" conv: output row 2i+a reads upsampled rows
# 2i+a-1..2i+a+1, i.e. only low-res rows (i-1, i) for a=0 and (i, i+1) for a=1. Summing the
# kernel taps that land on the same low-res pixel turns it into four 2x2 convs on the low-res
# map (2.25x fewer multiply-adds, no upsampled copy), interleaved by depth_to_space.
_PHASE_TAPS = (
    np.array([[1, 0, 0], [0, 1, 1]], np.float32),
    np.array([[1, 1, 0], [0, 0, 1]], np.float32),
)


def _fusable(up: Any, conv: Any) -> bool:
    from keras import layers

    return (
        isinstance(up, layers.UpSampling2D)
        and tuple(up.size) == (2, 2)
        and up.interpolation == "nearest"
        and up.data_format == "channels_last"
        and isinstance(conv, layers.Conv2D)
        and tuple(conv.kernel_size) == (3, 3)
        and conv.padding == "same"
        and tuple(conv.strides) == (1, 1)
        and tuple(conv.dilation_rate) == (1, 1)
        and conv.groups == 1
        and conv.data_format == "channels_last"
    )


def _upsample_conv(conv: Any) -> Any:
    """conv(UpSampling2D(2, nearest)(x)) on x directly (same result, see above).

    The kernel is read once here: build a new Stylizer after changing the model's weights.
    """
    import tensorflow as tf

    kernel = np.asarray(conv.kernel.numpy(), np.float32)
    # All four phases' 2x2 kernels as one conv with 4x the output channels.
    phases = tf.constant(
        np.concatenate(
            [
                np.einsum("pk,ql,klio->pqio", ra, rb, kernel)
                for ra in _PHASE_TAPS
                for rb in _PHASE_TAPS
            ],
            axis=-1,
        )
    )
    bias = tf.constant(np.tile(conv.bias.numpy(), 4)) if conv.use_bias else None
    activation, n = conv.activation, kernel.shape[-1]

    def call(x: Any) -> Any:
        h, w = tf.shape(x)[1], tf.shape(x)[2]
        y = tf.nn.conv2d(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]), phases, 1, "VALID")
        if bias is not None:
            y = tf.nn.bias_add(y, bias)
        y = activation(y)  # (h+1, w+1): phase (a, b) is its channel block shifted by (a, b)
        blocks = [
            y[:, a : a + h, b : b + w, (2 * a + b) * n : (2 * a + b + 1) * n]
            for a in (0, 1)
            for b in (0, 1)
        ]
        return tf.nn.depth_to_space(tf.concat(blocks, axis=-1), 2)

    return call


def _decoder_fn(decoder: Any) -> Any:
    """The decoder's layers in order, each upsample+conv pair fused (see _upsample_conv)."""
    steps, layers_ = [], decoder.layers[1:]
    i = 0
    while i < len(layers_):
        if i + 1 < len(layers_) and _fusable(layers_[i], layers_[i + 1]):
            steps.append(_upsample_conv(layers_[i + 1]))
            i += 2
        else:
            steps.append(layers_[i])
            i += 1

    def decode(x: Any) -> Any:
        for step in steps:
            x = step(x)
        return x

    return decode


def _multiple(x: int, k: int) -> int:
    return max(k, int(round(x / k)) * k)


def resolve(model_name: str, ref: str) -> ResolvedModel:
    """Turn an alias/version/URI into a loadable URI with the version's tags."""
    from artflow.registry import tracking

    ref = ref.strip()
    m = re.fullmatch(r"models:/([^/@]+)(?:@([\w-]+)|/(\d+))", ref)
    if ref.startswith("models:/") and not m:
        raise ModelError(f"malformed model URI {ref!r}", "use models:/NAME@ALIAS or models:/NAME/N")
    name, alias, number = (m.group(1), m.group(2), m.group(3)) if m else (model_name, None, None)
    if not m:
        number, alias = (ref, None) if ref.isdigit() else (None, ref)
    note = ""
    if alias:
        mv = tracking.alias_version(name, alias)
        if mv is None and alias == tracking.CHAMPION:
            mv = tracking.alias_version(name, tracking.CHALLENGER)
            note = f"{name} has no champion yet: using the challenger"
        if mv is None:
            raise ModelError(
                f"{name} has no version with alias {alias!r}",
                "train one (artflow train ...) or pass --model-uri; see `artflow models list`",
            )
    else:
        mv = tracking.model_version(name, str(number))
        if mv is None:
            raise ModelError(f"{name} has no version {number}", "see `artflow models list`")
    return ResolvedModel(f"models:/{name}/{mv.version}", str(mv.version), dict(mv.tags or {}), note)


def _load(model_name: str, ref: str) -> tuple[Any, ResolvedModel]:
    from artflow.registry.safe_load import load_keras_file

    if ref.endswith(".keras"):  # a local file, e.g. a benchmark's or a pipeline step's output
        path = Path(ref).expanduser()
        if not path.is_file():
            raise ModelError(f"model file not found: {path}", "pass an existing .keras file")
        return load_keras_file(path), ResolvedModel(str(path), None, {})
    from artflow.registry import tracking

    resolved = resolve(model_name, ref)
    return tracking.load_keras_model(resolved.uri), resolved


def load_stylizer(ref: str = "champion") -> Stylizer:
    from artflow.registry.tracking import STYLIZER

    model, res = _load(STYLIZER, ref)
    return Stylizer(model, name=STYLIZER, version=res.version, note=res.note)


def load_monet(ref: str = "champion") -> MonetTranslator:
    from artflow.registry.tracking import CYCLEGAN

    model, res = _load(CYCLEGAN, ref)
    size = int(res.tags.get("image_size", 256))
    return MonetTranslator(
        model,
        size,
        name=CYCLEGAN,
        version=res.version,
        note=res.note,
        reference=monet_reference_of(res.tags),
    )


def stylizer_from_file(path: Path, meta: dict[str, Any]) -> Stylizer:
    """The stylizer in a `.keras` file carried by a Bento (`meta`: its name and version)."""
    from artflow.registry.safe_load import load_keras_file

    return Stylizer(load_keras_file(path), name=meta["name"], version=meta["version"])


def monet_from_file(path: Path, meta: dict[str, Any]) -> MonetTranslator:
    """The Monet generator in a `.keras` file carried by a Bento (its size in `meta`'s tags)."""
    from artflow.registry.safe_load import load_keras_file

    tags = meta.get("tags", {})
    size = int(tags.get("image_size", 256))
    return MonetTranslator(
        load_keras_file(path),
        size,
        name=meta["name"],
        version=meta["version"],
        reference=monet_reference_of(tags),
    )


def monet_reference_of(tags: dict[str, str]) -> dict[str, Any] | None:
    """The version's Monet statistics from its tag (None for a version trained before them,
    or a tag that does not parse: its answers then get no monet_distance)."""
    import json

    from artflow.style.metrics import REFERENCE_TAG

    try:
        found = json.loads(tags[REFERENCE_TAG])
        return found if len(found["mean"]) == len(found["var"]) else None
    except (KeyError, TypeError, ValueError):
        return None


def stylize_gatys(
    content: np.ndarray,
    style: np.ndarray,
    nst_cfg: NstCfg,
    steps: int | None = None,
    size: int | None = None,
    backbone: str | None = None,
) -> np.ndarray:
    """Gatys optimisation (slow: seconds per step on a CPU); uint8 at the content's size."""
    from artflow.style.gatys.transfer import run_gatys

    return run_gatys(content, style, nst_cfg, steps=steps, size=size, backbone=backbone).image
