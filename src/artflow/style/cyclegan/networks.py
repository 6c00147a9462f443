"""CycleGAN networks (Zhu et al. 2017) as the seed (docs/conventions.md) describes them.

generator      encoder (7x7 conv, two stride-2 convs; instance norm + ReLU), a transformer of
               residual blocks, and a decoder of transposed convs that concatenates the
               encoder's feature maps of the same resolution (skip connections); tanh output
discriminator  70x70-style PatchGAN: 4x4 stride-2 convs with LeakyReLU(0.2), one logit per patch

Instance normalisation is Keras' GroupNormalization with one group per channel. Networks
work in [-1, 1]; `export_generator` wraps one to take and return 0..255 pixels with
standard Rescaling layers, which is the form that gets registered and served.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers


def _norm(name: str) -> layers.Layer:
    return layers.GroupNormalization(groups=-1, epsilon=1e-5, name=name)  # instance norm


def _conv_block(x: Any, filters: int, kernel: int, stride: int, name: str) -> Any:
    conv = layers.Conv2D(filters, kernel, stride, "same", use_bias=False, name=f"{name}_conv")
    x = conv(x)
    return layers.ReLU(name=f"{name}_relu")(_norm(f"{name}_in")(x))


def _res_block(x: Any, filters: int, name: str) -> Any:
    y = _conv_block(x, filters, 3, 1, f"{name}_a")
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_b_conv")(y)
    y = _norm(f"{name}_b_in")(y)
    return layers.Add(name=f"{name}_add")([x, y])


def build_generator(res_blocks: int = 9, filters: int = 64, name: str = "generator") -> keras.Model:
    """[-1, 1] image -> [-1, 1] image of the same size (sides divisible by 4)."""
    inp = keras.Input((None, None, 3), name="image")
    e1 = _conv_block(inp, filters, 7, 1, "enc1")
    e2 = _conv_block(e1, filters * 2, 3, 2, "enc2")
    x = _conv_block(e2, filters * 4, 3, 2, "enc3")
    for i in range(res_blocks):
        x = _res_block(x, filters * 4, f"res{i}")
    for skip, f, tag in ((e2, filters * 2, "dec2"), (e1, filters, "dec1")):
        x = layers.Conv2DTranspose(f, 3, 2, padding="same", use_bias=False, name=f"{tag}_up")(x)
        x = layers.ReLU(name=f"{tag}_relu")(_norm(f"{tag}_in")(x))
        x = layers.Concatenate(name=f"{tag}_skip")([x, skip])
    # float32 even under a mixed-precision policy: losses and exports read it.
    to_rgb = layers.Conv2D(3, 7, padding="same", activation="tanh", name="to_rgb", dtype="float32")
    out = to_rgb(x)
    return keras.Model(inp, out, name=name)


def build_discriminator(filters: int = 64, name: str = "discriminator") -> keras.Model:
    """[-1, 1] image -> (H/8, W/8, 1) patch logits (LSGAN: compared by MSE to 1 / 0)."""
    inp = keras.Input((None, None, 3), name="image")
    x = layers.Conv2D(filters, 4, 2, padding="same", name="d1_conv")(inp)
    x = layers.LeakyReLU(0.2, name="d1_lrelu")(x)
    for i, (mult, stride) in enumerate(((2, 2), (4, 2), (8, 1)), start=2):
        conv = layers.Conv2D(filters * mult, 4, stride, "same", use_bias=False, name=f"d{i}_conv")
        x = conv(x)
        x = layers.LeakyReLU(0.2, name=f"d{i}_lrelu")(_norm(f"d{i}_in")(x))
    out = layers.Conv2D(1, 4, padding="same", name="patch_logits", dtype="float32")(x)
    return keras.Model(inp, out, name=name)


def export_generator(generator: keras.Model) -> keras.Model:
    """0..255 pixels in and out: the registered, served form of a [-1, 1] generator."""
    inp = keras.Input((None, None, 3), name="pixels")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="to_unit")(inp)
    x = generator(x)
    out = layers.Rescaling(127.5, offset=127.5, name="to_pixels")(x)
    return keras.Model(inp, out, name="monet_generator")
