"""Image sizing shared by every style method: working sizes, size checks, resizing back."""

from __future__ import annotations

import numpy as np
from PIL import Image

from artflow.errors import DataError


def working_size(height: int, width: int, longest: int, min_side: int) -> tuple[int, int]:
    """(h, w) with the longer side `longest`, aspect kept, the shorter side at least `min_side`."""
    scale = longest / max(height, width)
    h, w = round(height * scale), round(width * scale)
    if min(h, w) < min_side:
        grow = min_side / min(h, w)
        h, w = round(h * grow), round(w * grow)
    return max(h, min_side), max(w, min_side)


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 HxWx3 resized with a high-quality filter (no-op when the size already matches)."""
    if image.shape[:2] == (height, width):
        return image
    pil = Image.fromarray(image).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(pil, dtype=np.uint8)


def check_image(image: np.ndarray, min_side: int, what: str, network: str) -> None:
    """A DataError naming the image when it is not RGB or too small for `network`."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise DataError(f"{what} must be an RGB image (H, W, 3), got shape {image.shape}")
    h, w = image.shape[:2]
    if min(h, w) < min_side:
        raise DataError(
            f"{what} is {w}x{h} px, too small for {network} (needs at least {min_side} px a side)",
            "use a larger image",
        )


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Float pixels in 0..255 -> uint8, rounded and clipped."""
    return np.clip(np.asarray(pixels, dtype=np.float32) + 0.5, 0, 255).astype(np.uint8)
